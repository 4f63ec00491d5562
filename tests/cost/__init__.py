"""Cost tests: what a request, a sign-in, a worker's start-up and its garbage
collection cost (docs/performance.md)."""

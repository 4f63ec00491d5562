"""pfcore's benchmark harness (issue #9). Run it with ``python -m bench``;
docs/performance.md describes the measures, the method and the figures."""

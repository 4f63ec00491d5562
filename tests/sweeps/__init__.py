"""Sweeps: every route or form of the URL map checked for one property (access rules,
security headers, CSRF, input fuzzing)."""

"""The example's tests run with the example installed (``pip install
./examples/pfcore-example-plugin``) and from pfcore's project root, so that
they use pfcore's own test fixtures: an app on SQLite (and PostgreSQL when
PFCORE_TEST_DATABASE_URL is set), a real SMTP server, a browser-like client.
pfcore's tests/test_example_plugin.py runs them this way, in a process of
their own, after installing the example into a folder of its own.
"""

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["tests.conftest"]  # pfcore's fixtures (run from pfcore's project root)


def pytest_configure(config):
    if not [ep for ep in entry_points(group="pfcore.plugins") if ep.name == "example_notes"]:
        raise pytest.UsageError("install the example first: pip install ./examples/pfcore-example-plugin")

"""The example third-party plugin (examples/pfcore-example-plugin), installed
for real with pip, and its own tests (examples/pfcore-example-plugin/tests/).

pip installs it into a folder of its own. Its tests run in a pytest process
of their own with that folder on PYTHONPATH: there the plugin is found
through its ``pfcore.plugins`` entry point by every app, and its table is in
every test database. This process never imports it, so no other test here
sees the plugin or its table (``pfcore.api.Base``'s metadata is global).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "pfcore-example-plugin"
MODULE = "pfcore_example_notes"


@pytest.fixture(scope="session")
def example_installed(tmp_path_factory) -> Path:
    """pip install the example into a folder of its own (once per test session)."""
    folder = tmp_path_factory.mktemp("example-plugin")
    source, target = folder / "source", folder / "site-packages"
    # Build from a copy: setuptools leaves build/ and *.egg-info/ beside the sources.
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        "pip could not build the example plugin (the test extras need setuptools and wheel):\n"
        + result.stdout
        + result.stderr
    )
    return target


def test_pip_installed_the_package_with_its_entry_point_templates_static_files_and_migrations(example_installed):
    (distribution,) = distributions(path=[str(example_installed)])
    (entry_point,) = [ep for ep in distribution.entry_points if ep.group == "pfcore.plugins"]
    assert (entry_point.name, entry_point.value) == ("example_notes", MODULE)
    package = example_installed / MODULE
    assert (package / "templates" / "example_notes" / "pending.html").is_file()
    assert (package / "static" / "example_notes" / "example_notes.css").is_file()
    assert (package / "migrations" / "example_notes_0001_follow_ups.py").is_file()


def test_the_examples_own_tests_pass_with_it_installed(example_installed):
    """examples/pfcore-example-plugin/tests/, with pfcore's fixtures, on the same databases as this run."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(example_installed), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", str(EXAMPLE / "tests")],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert " passed" in result.stdout and " failed" not in result.stdout

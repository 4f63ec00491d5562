"""The import contracts in pyproject.toml ``[tool.importlinter]`` hold, and would
catch what they are there for (issue 17, "Tenancy in one place" and "one door
for plugins"):

- a page (``pfcore.web``, a plugin's ``views`` modules) never imports a
  ``jobs`` module, where the functions that read every practice live
  (``..._in_all_practices``): they are for ``pfcore jobs run`` and the CLI;
- a plugin imports another plugin only through its public ``api`` module
  (and a plugin's ``jobs`` module another's ``jobs`` module), never its
  models, views or other internals;
- a plugin imports the core only through ``pfcore.api``, ``pfcore.hookspecs``
  and ``pfcore.contrib``.

The first test runs ``lint-imports`` itself, as a developer would; the others
add one forbidden import to the real import graph and check that the same
contract, read from pyproject.toml, breaks.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter import configuration
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACT_TYPES = {"forbidden": ForbiddenContract, "independence": IndependenceContract}


def test_lint_imports_keeps_every_contract():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(CONFIG['contracts'])} kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def graph():
    configuration.configure()
    return grimp.build_graph(*CONFIG["root_packages"], cache_dir=None)


def kept(graph, contract_id: str, *extra_imports: tuple[str, str]) -> bool:
    """Whether the contract ``contract_id`` of pyproject.toml holds once ``extra_imports`` are added."""
    options = next(c for c in CONFIG["contracts"] if c["id"] == contract_id)
    graph = copy.deepcopy(graph)  # a check removes the ignored imports from the graph it is given
    for importer, imported in extra_imports:
        graph.add_import(importer=importer, imported=imported)
    contract = CONTRACT_TYPES[options["type"]](
        name=options["name"], session_options={"root_packages": CONFIG["root_packages"]},
        contract_options={key: str(value) if isinstance(value, bool) else value for key, value in options.items()
                          if key not in ("id", "name", "type")})
    return contract.check(graph, verbose=False).kept


@pytest.mark.parametrize("page", ["pfcore.web.users", "pfcore_plugins.licensing.views",
                                  "pfcore_plugins.patient_portal.staff_views"])
def test_a_page_that_imports_what_reads_every_practice_breaks_the_contract(graph, page):
    assert kept(graph, "pages-never-read-every-practice")
    assert not kept(graph, "pages-never-read-every-practice", (page, "pfcore_plugins.charts.jobs"))
    assert not kept(graph, "pages-never-read-every-practice", (page, "pfcore_plugins.emergency_access.jobs"))


def test_a_jobs_module_may_read_every_practice(graph):
    assert kept(graph, "pages-never-read-every-practice",
                ("pfcore_plugins.emergency_access.jobs", "pfcore_plugins.emergency_access.activations"))


@pytest.mark.parametrize("internal", ["pfcore_plugins.charts.models", "pfcore_plugins.charts.views",
                                      "pfcore_plugins.charts", "pfcore_plugins.charts.patients"])
def test_a_plugin_that_imports_another_plugins_internals_breaks_the_contract(graph, internal):
    assert kept(graph, "plugins-meet-through-public-modules")
    assert not kept(graph, "plugins-meet-through-public-modules",
                    ("pfcore_plugins.patient_portal.invitations", internal))


def test_a_plugin_may_import_another_plugins_api_and_a_jobs_module_another_jobs_module(graph):
    assert kept(graph, "plugins-meet-through-public-modules",
                ("pfcore_plugins.licensing.licenses", "pfcore_plugins.charts.api"),
                ("pfcore_plugins.emergency_access.jobs", "pfcore_plugins.charts.jobs"))
    assert not kept(graph, "plugins-meet-through-public-modules",
                    ("pfcore_plugins.licensing.licenses", "pfcore_plugins.charts.jobs"))


def test_what_reads_every_practice_says_so_in_its_name_and_lives_in_a_jobs_module():
    """Every public function of a plugin's ``jobs`` module is named ``..._in_all_practices``;
    charts' public ``api`` (which pages import) has none of them."""
    import ast

    from pfcore_plugins.charts import api

    jobs_modules = sorted((ROOT / "plugins").glob("*/jobs.py"))
    assert {path.parent.name for path in jobs_modules} >= {"charts", "emergency_access", "patient_portal"}
    for path in jobs_modules:
        names = [node.name for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
        assert names and all(name.endswith("_in_all_practices") for name in names), (path, names)
    assert not any(name.endswith("_in_all_practices") or name == "unsigned_encounters_before" for name in dir(api))
    assert "Patient" not in api.__all__ and "Encounter" not in api.__all__


@pytest.mark.parametrize("core_module", ["pfcore.db", "pfcore.models", "pfcore.security.mfa", "pfcore.web.rendering",
                                         "pfcore.accounts", "pfcore.audit"])
def test_a_plugin_that_imports_the_core_around_pfcore_api_breaks_the_contract(graph, core_module):
    """The one door (issue 17, item 2): plugins import pfcore.api, pfcore.hookspecs and pfcore.contrib only."""
    assert kept(graph, "plugins-use-the-public-api")
    assert kept(graph, "plugins-use-the-public-api", ("pfcore_plugins.licensing.views", "pfcore.api"))
    assert not kept(graph, "plugins-use-the-public-api", ("pfcore_plugins.licensing.views", core_module))
    assert not kept(graph, "plugins-use-the-public-api", ("pfcore_plugins.charts.migrations", core_module))

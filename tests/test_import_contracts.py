"""The import contracts in pyproject.toml ``[tool.importlinter]`` hold, and would
catch what they are there for (issue 17, "Layers in one direction", "Tenancy in
one place" and "one door for plugins"):

- the core's modules import only from their own layer or the layers below
  (db/models/contrib -> audit, messaging, metrics -> security -> accounts ->
  plugin registry -> web -> create_app/CLI), and every module is in a layer;
- no module imports itself round a circle, in ``pfcore`` or any plugin
  (``acyclic_siblings`` for the modules of one package, and a walk of the
  whole graph here for the rest, such as a package and its own views);
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
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract
from importlinter.contracts.layers import LayersContract

ROOT = Path(__file__).resolve().parent.parent
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACT_TYPES = {
    "forbidden": ForbiddenContract,
    "independence": IndependenceContract,
    "layers": LayersContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}


def test_lint_imports_keeps_every_contract():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
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
        name=options["name"],
        session_options={"root_packages": CONFIG["root_packages"]},
        contract_options={
            key: str(value) if isinstance(value, bool) else value
            for key, value in options.items()
            if key not in ("id", "name", "type")
        },
    )
    return contract.check(graph, verbose=False).kept


@pytest.mark.parametrize(
    "page", ["pfcore.web.users", "pfcore_plugins.licensing.views", "pfcore_plugins.patient_portal.staff_views"]
)
def test_a_page_that_imports_what_reads_every_practice_breaks_the_contract(graph, page):
    assert kept(graph, "pages-never-read-every-practice")
    assert not kept(graph, "pages-never-read-every-practice", (page, "pfcore_plugins.charts.jobs"))
    assert not kept(graph, "pages-never-read-every-practice", (page, "pfcore_plugins.emergency_access.jobs"))


def test_a_jobs_module_may_read_every_practice(graph):
    assert kept(
        graph,
        "pages-never-read-every-practice",
        ("pfcore_plugins.emergency_access.jobs", "pfcore_plugins.emergency_access.activations"),
    )


@pytest.mark.parametrize(
    "internal",
    [
        "pfcore_plugins.charts.models",
        "pfcore_plugins.charts.views",
        "pfcore_plugins.charts",
        "pfcore_plugins.charts.patients",
    ],
)
def test_a_plugin_that_imports_another_plugins_internals_breaks_the_contract(graph, internal):
    assert kept(graph, "plugins-meet-through-public-modules")
    assert not kept(
        graph, "plugins-meet-through-public-modules", ("pfcore_plugins.patient_portal.invitations", internal)
    )


def test_a_plugin_may_import_another_plugins_api_and_a_jobs_module_another_jobs_module(graph):
    assert kept(
        graph,
        "plugins-meet-through-public-modules",
        ("pfcore_plugins.licensing.licenses", "pfcore_plugins.charts.api"),
        ("pfcore_plugins.emergency_access.jobs", "pfcore_plugins.charts.jobs"),
    )
    assert not kept(
        graph,
        "plugins-meet-through-public-modules",
        ("pfcore_plugins.licensing.licenses", "pfcore_plugins.charts.jobs"),
    )


def test_what_reads_every_practice_says_so_in_its_name_and_lives_in_a_jobs_module():
    """Every public function of a plugin's ``jobs`` module is named ``..._in_all_practices``;
    charts' public ``api`` (which pages import) has none of them."""
    import ast

    from pfcore_plugins.charts import api

    jobs_modules = sorted((ROOT / "plugins").glob("*/jobs.py"))
    assert {path.parent.name for path in jobs_modules} >= {"charts", "emergency_access", "patient_portal"}
    for path in jobs_modules:
        names = [
            node.name
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
        ]
        assert names and all(name.endswith("_in_all_practices") for name in names), (path, names)
    assert not any(name.endswith("_in_all_practices") or name == "unsigned_encounters_before" for name in dir(api))
    assert "Patient" not in api.__all__ and "Encounter" not in api.__all__


@pytest.mark.parametrize(
    "core_module",
    ["pfcore.db", "pfcore.models", "pfcore.security.mfa", "pfcore.web.rendering", "pfcore.accounts", "pfcore.audit"],
)
def test_a_plugin_that_imports_the_core_around_pfcore_api_breaks_the_contract(graph, core_module):
    """The one door (issue 17, item 2): plugins import pfcore.api, pfcore.hookspecs and pfcore.contrib only."""
    assert kept(graph, "plugins-use-the-public-api")
    assert kept(graph, "plugins-use-the-public-api", ("pfcore_plugins.licensing.views", "pfcore.api"))
    assert not kept(graph, "plugins-use-the-public-api", ("pfcore_plugins.licensing.views", core_module))
    assert not kept(graph, "plugins-use-the-public-api", ("pfcore_plugins.charts.migrations", core_module))


# --- layers and cycles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "importer, imported",
    [
        ("pfcore.security.mfa", "pfcore.web.auth"),  # security asks a page for a constant
        ("pfcore.plugins", "pfcore.defaults"),  # the registry imports the core's hook implementations
        ("pfcore.security.mfa", "pfcore.accounts"),  # security reaches up to accounts
        ("pfcore.metrics", "pfcore.plugins"),  # metrics reaches up to the registry
        ("pfcore.accounts", "pfcore.web.rendering"),  # accounts renders a page
        ("pfcore.db", "pfcore.audit_verify"),  # the bottom layer reaches up (a name on a later line)
        ("pfcore.web.users", "pfcore.api"),  # the core uses the plugins' door
    ],
)
def test_a_lower_layer_that_imports_a_higher_one_breaks_the_layers(graph, importer, imported):
    assert kept(graph, "core-layers")
    assert not kept(graph, "core-layers", (importer, imported))


def test_a_module_may_import_the_layers_below_and_its_own_layer(graph):
    assert kept(
        graph,
        "core-layers",
        ("pfcore.web.users", "pfcore.security.mfa"),
        ("pfcore.jobs", "pfcore.accounts"),
        ("pfcore.audit", "pfcore.messaging"),
        ("pfcore.api", "pfcore.cli"),
    )


def test_every_module_of_the_core_is_in_a_layer(graph):
    """A new module of ``pfcore`` is placed in a layer, so the layers contract checks it."""
    options = next(c for c in CONFIG["contracts"] if c["id"] == "core-layers")
    placed = {name.strip() for layer in options["layers"] for name in layer.replace("|", ":").split(":")}
    assert placed <= graph.find_children("pfcore"), placed - graph.find_children("pfcore")
    assert graph.find_children("pfcore") <= placed, graph.find_children("pfcore") - placed


def import_cycles(graph) -> list[list[str]]:
    """Every circle of imports in the graph (its strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []
    for start in sorted(graph.modules):
        if start in index:
            continue
        # Tarjan's algorithm without recursion: (module, the modules it imports still to visit)
        work = [(start, None)]
        while work:
            module, pending = work.pop()
            if pending is None:
                index[module] = low[module] = len(index)
                stack.append(module)
                pending = iter(sorted(graph.find_modules_directly_imported_by(module)))
            for imported in pending:
                if imported not in index:
                    work.append((module, pending))
                    work.append((imported, None))
                    break
                if imported in stack:
                    low[module] = min(low[module], index[imported])
            else:
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
    return cycles


def test_no_module_imports_itself_round_a_circle(graph):
    """No import cycle anywhere in ``pfcore`` or ``pfcore_plugins``: not among a package's
    modules (the ``no-import-cycles`` contract) nor between a package and its own modules."""
    assert import_cycles(graph) == []
    assert kept(graph, "no-import-cycles")


@pytest.mark.parametrize(
    "importer, imported",
    [
        ("pfcore.security.mfa", "pfcore.security.signin"),  # mfa calling back into the sign-in that asks it
        ("pfcore.plugins", "pfcore.defaults"),  # the registry importing what create_app hands it
        (
            "pfcore_plugins.charts.views",
            "pfcore_plugins.charts",
        ),  # a view importing its package (the package imports it)
        ("pfcore_plugins.patient_portal.public", "pfcore_plugins.patient_portal.account_views"),
    ],
)
def test_an_import_that_closes_a_circle_is_found(graph, importer, imported):
    graph = copy.deepcopy(graph)
    graph.add_import(importer=importer, imported=imported)
    assert any(importer in cycle and imported in cycle for cycle in import_cycles(graph))


def test_a_circle_among_a_packages_modules_breaks_the_contract(graph):
    assert not kept(graph, "no-import-cycles", ("pfcore.security.sessions", "pfcore.security.signin"))
    assert not kept(graph, "no-import-cycles", ("pfcore_plugins.charts.api", "pfcore_plugins.charts.views"))


def test_the_core_imports_its_own_modules_at_the_top_except_in_the_cli():
    """An import of a core module inside a function hid a cycle (grimp sees it all the same);
    only the CLI's commands import what they use when they run (start-up time)."""
    import ast

    inside_functions = []
    for path in sorted((ROOT / "pfcore").rglob("*.py")):
        if path.name == "cli.py" and path.parent.name == "pfcore":
            continue
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside_functions += [
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                    for node in ast.walk(function)
                    if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("pfcore"))
                ]
    assert inside_functions == []

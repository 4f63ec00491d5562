"""Every first-party plugin has one shape (issue 17, "One plugin shape"), so a
newcomer finds the same things in the same places in each:

- ``__init__.py``: ``PLUGIN = PluginInfo(...)`` and thin hook implementations,
  nothing else (no helpers, no classes, no routes), each a few statements that ask a named module;
- the domain rules in named modules (``licenses.py``, ``activations.py``, ...);
- routes only in ``views.py`` (or ``<part>_views.py`` when there are several);
- templates under ``templates/<name>/``, static files under ``static/<name>/``,
  migrations under ``migrations/``;
- hooks a plugin offers others in its own ``hookspecs.py`` (``PluginInfo.hookspecs``),
  never in the core's ``pfcore/hookspecs.py``.

The checks read the source (``ast``), so they hold for code paths no test runs.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from pfcore import hookspecs as core_hookspecs

PLUGINS_DIR = Path(__file__).resolve().parent.parent / "plugins"
FIRST_PARTY = sorted(path.name for path in PLUGINS_DIR.iterdir() if (path / "__init__.py").is_file())
# Plugins allowed to miss the shape for now (strict: an entry that has it fails).
NOT_YET: dict[str, str] = {}
# A hook implementation in __init__.py is thin: it asks a named module. Counted in
# statements (not lines, which the formatter changes), its docstring aside.
MAX_HOOK_STATEMENTS = 8
ROUTE_DECORATORS = {"route", "get", "post", "put", "patch", "delete"}


def plugins():
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=NOT_YET[name])) if name in NOT_YET else name
        for name in FIRST_PARTY
    ]


def modules(name: str) -> list[Path]:
    """The plugin's Python modules, its migrations left out."""
    return sorted(path for path in (PLUGINS_DIR / name).rglob("*.py") if "migrations" not in path.parts)


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def decorator_name(decorator: ast.expr) -> str:
    """``hookimpl`` for ``@hookimpl`` and ``@hookimpl(trylast=True)``; ``blueprint.get`` for a route."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return ast.unparse(target)


def blueprint_names(module: ast.Module) -> set[str]:
    """Names bound to ``Blueprint(...)`` in the module."""
    return {
        target.id
        for node in ast.walk(module)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func).endswith("Blueprint")
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def routes(path: Path) -> list[str]:
    """The view functions a module routes (``@<blueprint>.get(...)`` and the like, ``add_url_rule``)."""
    module = tree(path)
    found = []
    for node in ast.walk(module):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                owner, _, method = decorator_name(decorator).rpartition(".")
                if method in ROUTE_DECORATORS and (owner in blueprint_names(module) or owner.endswith("blueprint")):
                    found.append(node.name)
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(".add_url_rule"):
            found.append(ast.unparse(node))
    return found


def test_every_first_party_plugin_is_checked():
    assert {
        "licensing",
        "emergency_access",
        "charts",
        "patient_portal",
        "mfa_sms",
        "mfa_totp",
        "mfa_webauthn",
        "mfa_recovery",
    } <= set(FIRST_PARTY)
    assert set(NOT_YET) <= set(FIRST_PARTY), "a plugin in NOT_YET no longer exists: take it out"


@pytest.mark.parametrize("name", plugins())
def test_init_holds_the_plugin_info_and_thin_hook_implementations_only(name):
    path = PLUGINS_DIR / name / "__init__.py"
    module = tree(path)
    assigned = {
        target.id
        for node in module.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert "PLUGIN" in assigned, f"{name}/__init__.py declares PLUGIN = PluginInfo(...)"
    helpers = [
        node.name
        for node in module.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and not any(decorator_name(d) == "hookimpl" for d in node.decorator_list)
    ]
    assert helpers == [], f"{name}/__init__.py: functions that are not hook implementations belong in a module"
    classes = [node.name for node in module.body if isinstance(node, ast.ClassDef)]
    assert classes == [], f"{name}/__init__.py: classes belong in a module"
    assert not blueprint_names(module) and routes(path) == [], f"{name}/__init__.py: routes belong in views.py"
    thick = {
        node.name: statements
        for node in module.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and (statements := statement_count(node)) > MAX_HOOK_STATEMENTS
    }
    assert thick == {}, f"{name}/__init__.py: hook implementations this long belong in a named module"


def statement_count(function: ast.FunctionDef) -> int:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    return sum(1 for statement in body for node in ast.walk(statement) if isinstance(node, ast.stmt))


@pytest.mark.parametrize("name", plugins())
def test_routes_live_only_in_views_modules(name):
    elsewhere = {
        str(path.relative_to(PLUGINS_DIR)): routes(path)
        for path in modules(name)
        if not (path.name == "views.py" or path.name.endswith("_views.py")) and routes(path)
    }
    assert elsewhere == {}


@pytest.mark.parametrize("name", FIRST_PARTY)
def test_templates_static_files_and_migrations_live_in_their_folders(name):
    root = PLUGINS_DIR / name
    for folder in ("templates", "static"):
        if (root / folder).is_dir():
            entries = sorted(entry.name for entry in (root / folder).iterdir())
            assert entries == [name], f"{name}/{folder}/ holds only {name}/"
    stray = [
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.suffix in {".html", ".css", ".js", ".svg"}
        and path.relative_to(root).parts[0] not in ("templates", "static")
    ]
    assert stray == [], f"{name}: templates and static files outside templates/{name}/ and static/{name}/"
    migrations = [
        str(path.relative_to(root))
        for path in modules(name)
        if "down_revision" in path.read_text()
        and "revision"
        in {
            t.id
            for n in ast.walk(tree(path))
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
    ]
    assert migrations == [], f"{name}: migrations outside migrations/"


@pytest.mark.parametrize("name", FIRST_PARTY)
def test_a_plugins_hookspecs_live_in_its_own_hookspecs_module(name):
    declaring = [
        str(path.relative_to(PLUGINS_DIR))
        for path in modules(name)
        if any(
            decorator_name(d) == "hookspec"
            for node in ast.walk(tree(path))
            if isinstance(node, ast.FunctionDef)
            for d in node.decorator_list
        )
    ]
    assert all(path == f"{name}/hookspecs.py" for path in declaring), declaring
    if declaring:
        plugin = importlib.import_module(f"pfcore_plugins.{name}")
        assert plugin.PLUGIN.hookspecs is importlib.import_module(f"pfcore_plugins.{name}.hookspecs")


def test_the_core_declares_no_hook_only_one_plugin_offers():
    assert not hasattr(core_hookspecs, "license_purchase")
    from pfcore_plugins.licensing import hookspecs as licensing_hookspecs

    assert hasattr(licensing_hookspecs, "license_purchase")

"""The plugin manager: one per app, discovery, checks, per-practice enablement.

Installed is not enabled. A plugin is *installed* when its package declares
an entry point in the group ``pfcore.plugins``; *available* when the
deployment's ``plugins_available`` setting lists it; *enabled* for a practice
when that practice's administrator switched it on (Settings > Plugins).
Hooks that answer for a practice are called only for the plugins it enabled.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from collections.abc import Iterable
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy
from flask import g

from . import hookspecs
from .contrib import AuditDimension, PluginError, PluginInfo, flatten
from .db import Base, scoped_select, session
from .models import PracticePlugin
from .plugin_settings import deployment_values, enabled_plugin_names

# Names other modules import from here (the registry's own vocabulary), kept where they were.
__all__ = ["CORE_PLUGIN_NAME", "ENTRY_POINT_GROUP", "PluginError", "PluginRegistry", "enabled_plugin_names", "flatten"]

ENTRY_POINT_GROUP = "pfcore.plugins"
CORE_PLUGIN_NAME = "core"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,40}$")
# PFCORE_TRACE_HOOKS=1 (setting trace_hooks): one INFO line here per hook implementation call.
hook_log = logging.getLogger("pfcore.hooks")


class PluginRegistry:
    """Everything the app knows about its plugins."""

    def __init__(self, settings: dict, extra_plugins: Iterable[ModuleType] = (), *, core: ModuleType | None = None):
        """``core``: the core's own hook implementations (``pfcore.defaults``), registered as the
        plugin ``core`` by ``create_app`` and the CLI: they render pages, so they sit above the
        registry, which does not import them."""
        self.pm = pluggy.PluginManager("pfcore")
        self.pm.add_hookspecs(hookspecs)
        self.core = core
        if core is not None:
            self.pm.register(core, name=CORE_PLUGIN_NAME)
        self.modules: dict[str, ModuleType] = {}
        self.infos: dict[str, PluginInfo] = {}
        self.public_blueprints: dict[str, str] = {}  # blueprint name -> plugin
        for module in list(_entry_point_modules()) + list(extra_plugins):
            self._register(module)
        self.pm.check_pending()
        self._check_dependencies()
        available = settings.get("plugins_available", ["*"])
        self.available = set(self.infos) if "*" in available else set(available) & set(self.infos)
        self._check_available_dependencies()
        self._check_public_prefixes()
        self.audit_dimensions = self._collect_audit_dimensions()
        if settings.get("trace_hooks"):
            _trace_hook_calls(self.pm)
        # Each plugin's declared settings as the deployment sets them (checked: a bad value stops here).
        self.setting_values = deployment_values(self.infos, settings.get("plugins"))

    def _register(self, module: ModuleType) -> None:
        info = getattr(module, "PLUGIN", None)
        if not isinstance(info, PluginInfo):
            raise PluginError(f"{module.__name__} has no PLUGIN = PluginInfo(...) declaration")
        if not _NAME_RE.match(info.name) or info.name == CORE_PLUGIN_NAME:
            raise PluginError(f"plugin name {info.name!r} must be lower-case letters, digits and _")
        if info.name in self.infos:
            raise PluginError(f"two plugins are named {info.name!r}")
        self.modules[info.name] = module
        self.infos[info.name] = info
        if info.hookspecs is not None:
            self.pm.add_hookspecs(info.hookspecs)
        self.pm.register(module, name=info.name)
        _check_tables(info.name, module)
        _check_templates(info.name, module)

    def _check_dependencies(self) -> None:
        for info in self.infos.values():
            for dependency in info.depends:
                if dependency not in self.infos:
                    raise PluginError(f"plugin {info.name!r} needs {dependency!r}, which is not installed")

    def _check_available_dependencies(self) -> None:
        """A practice could never switch on an available plugin whose dependency is not available."""
        for name in sorted(self.available):
            for dependency in self.infos[name].depends:
                if dependency not in self.available:
                    raise PluginError(f"plugin {name!r} needs {dependency!r}, which plugins_available does not list")

    def _check_public_prefixes(self) -> None:
        claimed: dict[str, str] = {}
        for name, info in self.infos.items():
            for prefix in info.public_prefixes:
                if not re.match(r"^/[a-z][a-z0-9-]*$", prefix) or prefix in claimed:
                    raise PluginError(f"plugin {name!r} cannot claim the public prefix {prefix!r}")
                claimed[prefix] = name

    def _collect_audit_dimensions(self) -> dict[str, tuple[str, AuditDimension]]:
        """Every installed plugin's audit dimensions, by name: {name: (plugin, dimension)}."""
        found: dict[str, tuple[str, AuditDimension]] = {}
        for impl in self.pm.hook.audit_dimensions.get_hookimpls():
            answer = impl.function() or []
            for dimension in answer if isinstance(answer, (list, tuple)) else [answer]:
                if not isinstance(dimension, AuditDimension) or not _NAME_RE.match(dimension.name):
                    raise PluginError(
                        f"plugin {impl.plugin_name!r} declares an audit dimension that is not an "
                        "AuditDimension with a lower-case name"
                    )
                if dimension.shown not in ("badge", "column"):
                    raise PluginError(f"audit dimension {dimension.name!r} must be shown as 'badge' or 'column'")
                if dimension.name in found:
                    raise PluginError(f"two plugins declare the audit dimension {dimension.name!r}")
                found[dimension.name] = (impl.plugin_name, dimension)
        return found

    def audit_dimensions_for(self, practice) -> list[AuditDimension]:
        """The audit dimensions of the plugins ``practice`` switched on, in order."""
        enabled = self.enabled_names(practice)
        return sorted(
            (d for plugin, d in self.audit_dimensions.values() if plugin in enabled), key=lambda d: (d.order, d.name)
        )

    # --- folders found by convention --------------------------------------

    def plugin_dir(self, name: str) -> Path:
        return Path(self.modules[name].__file__).resolve().parent

    def template_dirs(self) -> list[Path]:
        dirs = [self.plugin_dir(name) / "templates" for name in self.infos]
        return [d for d in dirs if d.is_dir()]

    def static_dir(self, name: str) -> Path:
        return self.plugin_dir(name) / "static" / name

    def migration_dirs(self) -> dict[str, Path]:
        dirs = {name: self.plugin_dir(name) / "migrations" for name in self.infos}
        return {name: d for name, d in dirs.items() if d.is_dir()}

    # --- enablement -------------------------------------------------------

    def enabled_names(self, practice) -> frozenset[str]:
        """Names of the plugins ``practice`` switched on (cached for the request)."""
        if practice is None:
            return frozenset()
        cache = g.setdefault("_pfcore_enabled_plugins", {})
        if practice.id not in cache:
            rows = session().scalars(scoped_select(PracticePlugin, practice.id, PracticePlugin.plugin_name))
            cache[practice.id] = frozenset(rows) & self.available
        return cache[practice.id]

    def remember_enabled(self, practice_id: int, names: str | None) -> None:
        """The answer of ``enabled_names`` for this request, read by another query:
        ``names`` is the value of an ``enabled_plugin_names(...)`` column."""
        found = frozenset((names or "").split(",")) & self.available
        g.setdefault("_pfcore_enabled_plugins", {})[practice_id] = found

    def forget_enabled(self) -> None:
        g.pop("_pfcore_enabled_plugins", None)

    def default_enabled(self) -> list[str]:
        """Plugins a new practice starts with: on by default, and so is everything they need."""
        names = {n for n in self.available if self.infos[n].enabled_by_default}
        while blocked := {n for n in names if not set(self.infos[n].depends) <= names}:
            names -= blocked
        return sorted(names)

    def hook(self, practice):
        """The hooks as seen by ``practice``: only core and its enabled plugins answer."""
        enabled = self.enabled_names(practice)
        return _SubsetHooks(self.pm, [m for n, m in self.modules.items() if n not in enabled])

    @property
    def hook_all(self):
        """Deployment-level hooks, answered by every available plugin."""
        return _SubsetHooks(self.pm, [m for n, m in self.modules.items() if n not in self.available])

    def check_blueprint(self, blueprint) -> None:
        """Namespaces: blueprint ``<name>`` at ``/<name-with-hyphens>``, or a
        blueprint ``<name>_...`` at one of the plugin's ``public_prefixes``."""
        if blueprint.name in self.infos:
            prefix = "/" + blueprint.name.replace("_", "-")
            if blueprint.url_prefix != prefix:
                raise PluginError(f"blueprint {blueprint.name!r} must use url_prefix {prefix!r}")
            return
        for name, info in self.infos.items():
            if blueprint.name.startswith(name + "_") and blueprint.url_prefix in info.public_prefixes:
                self.public_blueprints[blueprint.name] = name
                return
        raise PluginError(
            f"blueprint {blueprint.name!r} must be named after its plugin "
            "(or <plugin>_... at one of the plugin's public_prefixes)"
        )

    def owner_of_blueprint(self, blueprint_name: str | None) -> str | None:
        if not blueprint_name:
            return None
        root = blueprint_name.split(".", 1)[0]
        return root if root in self.infos else self.public_blueprints.get(root)

    def is_public_blueprint(self, blueprint_name: str | None) -> bool:
        """Pages for people who are not practice users: no staff session, no per-practice switch."""
        return bool(blueprint_name) and blueprint_name.split(".", 1)[0] in self.public_blueprints

    def hook_names_of(self, name: str) -> list[str]:
        plugin = self.core if name == CORE_PLUGIN_NAME else self.modules[name]
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])


class _SubsetHooks:
    """``hooks.nav_items(...)`` calling only the plugins not removed."""

    def __init__(self, pm: pluggy.PluginManager, removed: list[ModuleType]):
        self._pm = pm
        self._removed = removed

    def __getattr__(self, name: str):
        if not self._removed:
            return getattr(self._pm.hook, name)
        return self._pm.subset_hook_caller(name, remove_plugins=self._removed)


def _trace_hook_calls(pm: pluggy.PluginManager) -> None:
    """Log each hook implementation call on ``pfcore.hooks`` (INFO): the hook, the
    plugin that answered and how long it took, for a plugin author asking "who
    answers this hook, and what does it cost?".

    pluggy's hook-call monitoring sees one call of a hook with all its
    implementations at once. Its ``before`` step gives each implementation it
    meets a timed copy of its function (once); pluggy then calls them as always
    (same order, ``firstresult`` still stops at the first answer), and each
    implementation that runs logs its own line.
    """
    if not hook_log.hasHandlers():  # under gunicorn nothing else shows INFO lines: standard error
        hook_log.addHandler(logging.StreamHandler())
    hook_log.setLevel(logging.INFO)

    def time_each_implementation(hook_name, hook_impls, _kwargs) -> None:
        for impl in hook_impls:
            if not (impl.wrapper or impl.hookwrapper or getattr(impl.function, "pfcore_timed", False)):
                impl.function = _timed(hook_name, impl.plugin_name, impl.function)

    pm.add_hookcall_monitoring(time_each_implementation, lambda *_: None)


def _timed(hook_name: str, plugin_name: str, function):
    """``function`` (a hook implementation), logging its duration at each call."""

    @functools.wraps(function)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            duration_ms = (time.perf_counter() - started) * 1000
            hook_log.info(
                "hook %s by %s: %.3f ms",
                hook_name,
                plugin_name,
                duration_ms,
                extra={"hook": hook_name, "plugin": plugin_name, "duration_ms": duration_ms},
            )

    timed.pfcore_timed = True
    return timed


def _entry_point_modules() -> Iterable[ModuleType]:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            module = entry_point.load()
        except Exception as exc:  # refuse to start with a broken plugin
            raise PluginError(f"plugin {entry_point.name!r} failed to load: {exc}") from exc
        info = getattr(module, "PLUGIN", None)
        if info is not None and info.name != entry_point.name:
            raise PluginError(f"entry point {entry_point.name!r} declares PLUGIN.name {info.name!r}")
        yield module


def _check_tables(name: str, module: ModuleType) -> None:
    package = module.__name__
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if cls.__module__ == package or cls.__module__.startswith(package + "."):
            table = mapper.local_table.name
            if not table.startswith(name + "_"):
                raise PluginError(f"plugin {name!r} table {table!r} must be named {name}_...")


def _check_templates(name: str, module: ModuleType) -> None:
    templates = Path(module.__file__).resolve().parent / "templates"
    if templates.is_dir():
        for entry in templates.iterdir():
            if entry.name != name:
                raise PluginError(f"plugin {name!r} templates must live under templates/{name}/, found {entry.name}")

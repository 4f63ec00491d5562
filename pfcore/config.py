"""Configuration: config/default.toml <- file in PFCORE_CONFIG <- PFCORE_* env.

Every setting has a default in ``config/default.toml``; its type there decides
how an environment variable is read (``PFCORE_SMTP_PORT=2525`` becomes an int,
``PFCORE_PLUGINS_AVAILABLE=a,b`` a list).

A plugin's settings are declared by the plugin (``PluginInfo.settings``), not
here: the file's ``[plugins.<name>]`` table holds them, and an environment
variable ``PFCORE_PLUGINS__<NAME>__<SETTING>`` (two underscores between the
parts) overrides one, e.g. ``PFCORE_PLUGINS__EXAMPLE__HOURS=8``. Both
land in ``settings["plugins"]``; the plugin registry checks them against the
declarations when the app starts (``pfcore.plugin_settings``).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .resources import resource_path

ENV_PREFIX = "PFCORE_"
PLUGIN_ENV_PREFIX = ENV_PREFIX + "PLUGINS__"


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says what to change."""


class FromEnvironment(str):
    """A plugin setting's value as an environment variable gave it: text, read by
    the setting's declared type later. ``variable`` names it for error messages."""

    variable: str = ""


def _plugin_from_environment(settings: dict, name: str, raw: str) -> None:
    parts = name[len(PLUGIN_ENV_PREFIX) :].lower().split("__")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"{name}: a plugin setting's variable is {PLUGIN_ENV_PREFIX}<PLUGIN>__<SETTING>")
    value = FromEnvironment(raw)
    value.variable = name
    plugins = settings["plugins"] = dict(settings.get("plugins") or {})
    plugins[parts[0]] = {**(plugins.get(parts[0]) or {}), parts[1]: value}


def _coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{ENV_PREFIX}{key.upper()} must be true or false, not {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{key.upper()} must be a whole number, not {raw!r}") from None
    if isinstance(default, list):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def load_settings(environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None) -> dict:
    """Read the layered configuration and return a flat dict of settings."""
    environ = os.environ if environ is None else environ
    with open(resource_path("config") / "default.toml", "rb") as f:
        settings: dict[str, Any] = tomllib.load(f)
    defaults = dict(settings)
    extra_file = environ.get(ENV_PREFIX + "CONFIG")
    if extra_file:
        try:
            with open(extra_file, "rb") as f:
                settings.update(tomllib.load(f))
        except OSError as exc:
            raise ConfigError(f"cannot read {ENV_PREFIX}CONFIG file {extra_file}: {exc}") from None
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        if name.startswith(PLUGIN_ENV_PREFIX):
            _plugin_from_environment(settings, name, raw)
            continue
        key = name[len(ENV_PREFIX) :].lower()
        settings[key] = _coerce(key, raw, defaults.get(key, ""))
    overrides = dict(overrides or {})
    for plugin, values in (overrides.pop("plugins", None) or {}).items():  # merged, one setting at a time
        settings["plugins"] = dict(settings.get("plugins") or {})
        settings["plugins"][plugin] = {**(settings["plugins"].get(plugin) or {}), **values}
    settings.update(overrides)
    return settings


def finish_settings(settings: dict) -> dict:
    """Fill in the derived settings: instance folder, database URL, secret key."""
    instance = Path(settings["instance_path"]).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    settings["instance_path"] = str(instance)
    if not settings.get("database_url"):
        settings["database_url"] = f"sqlite:///{instance / 'pfcore.db'}"
    if not settings.get("secret_key"):
        if settings["env"] == "production":
            raise ConfigError(
                "production mode needs a secret key: set PFCORE_SECRET_KEY "
                "(for example to the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        settings["secret_key"] = _development_secret(instance)
    settings["base_url"] = settings["base_url"].rstrip("/")
    return settings


def _development_secret(instance: Path) -> str:
    """Generate a secret once into instance/secret_key and reuse it.

    The file appears with its content or not at all (written aside, then
    hard-linked into place), so processes starting at the same moment, like
    gunicorn's workers, never read a half-written, empty key.
    """
    path = instance / "secret_key"
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=instance, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made it first: use theirs
        finally:
            os.unlink(temporary)
    secret = path.read_text().strip()
    if not secret:
        raise ConfigError(f"{path} is empty: delete it to generate a new development secret")
    return secret

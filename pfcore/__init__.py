"""pfcore: practice administration and access server.

``create_app()`` builds one independent application: its own configuration,
database engine and plugin manager (tests build several in one process).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from jinja2 import ChoiceLoader, FileSystemLoader

from . import audit, audit_keys, db, defaults, metrics, request_log
from .config import finish_settings, load_settings
from .plugins import PluginRegistry
from .resources import resource_path
from .security import phone_sends, throttling
from .web import install

__version__ = "0.1.0"


def create_app(
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    extra_plugins: Iterable[ModuleType] = (),
) -> Flask:
    """Build the app. ``overrides`` replace settings; ``extra_plugins`` are
    registered beside the installed ones (used by tests)."""
    settings = finish_settings(load_settings(environ, overrides))
    app = Flask(
        __name__,
        static_folder=str(resource_path("static")),
        template_folder=str(resource_path("templates")),
        instance_path=settings["instance_path"],
    )
    production = settings["env"] == "production"
    app.config.update(
        PFCORE=settings,
        SECRET_KEY=settings["secret_key"],
        SESSION_COOKIE_NAME="__Host-pfcore_csrf" if production else "pfcore_csrf",
        SESSION_COOKIE_SECURE=production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=not production,
    )
    db.init_app(app)
    app.extensions[audit.KEYRING_EXTENSION] = audit_keys.keyring(settings)  # a bad key stops start-up
    phone_sends.init_app(app)
    registry = PluginRegistry(settings, extra_plugins, core=defaults)
    app.extensions["pfcore.plugins"] = registry
    app.jinja_loader = ChoiceLoader(
        [FileSystemLoader(str(resource_path("templates")))]
        + [FileSystemLoader(str(d)) for d in registry.template_dirs()]
    )
    Htmx(app)
    CSRFProtect(app)
    throttling.init_app(app)
    metrics.init_app(app)  # first before_request: times the whole request
    login_manager = LoginManager(app)
    login_manager.login_view = "core.signin"

    install(app, login_manager)
    for blueprints in registry.hook_all.register_blueprints(app=app):
        for blueprint in blueprints or []:
            registry.check_blueprint(blueprint)
            app.register_blueprint(blueprint)
    throttling.apply_marked_limits(app)
    request_log.init_app(app)  # inside ProxyFix: logs the forwarded client address
    if settings["trusted_proxies"] > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix  # only behind trusted proxies

        hops = settings["trusted_proxies"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
    return app

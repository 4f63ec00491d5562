"""The core's web layer: one blueprint (``core``) split into view modules by area."""

from __future__ import annotations

from flask import current_app, g, request, send_from_directory
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException, NotFound

from ..contrib import flatten
from ..db import close_session
from ..security.mfa import proving_old_factor
from ..security.permissions import can
from ..security.phone_sends import SendRefused, record_refusal
from ..security.phones import country_names
from ..security.phones import display as phone_display
from ..security.sessions import idle_minutes
from ..security.throttling import lock_description

# The view modules add their routes to the blueprint ``core`` as they are imported.
from . import (  # noqa: F401  (routes)
    account,
    audit_report,
    auth,
    browsers,
    dashboard,
    email_change,
    lock,
    mfa,
    operator,
    password_reset,
    phone,
    request_hooks,
    security_settings,
    settings,
    users,
)
from .auth import login_strategies
from .blueprint import core
from .rendering import render
from .urls import template_url_for


def install(app, login_manager) -> None:
    app.register_blueprint(core)
    app.request_class = request_hooks.NamedFieldsRequest
    app.before_request(request_hooks.refuse_bodies_no_form_takes)
    app.before_request(request_hooks.load_signed_in_user)
    app.before_request(request_hooks.enforce_idle_lock)
    app.before_request(request_hooks.hide_disabled_plugin_pages)
    app.after_request(request_hooks.security_headers)
    app.teardown_request(request_hooks.deliver_outbox)
    login_manager.request_loader(lambda _request: g.get("pfcore_user"))
    login_manager.unauthorized_handler(_unauthorized)
    app.context_processor(_layout_context)
    app.jinja_env.globals["url_for"] = template_url_for
    app.jinja_env.globals["pfcore_login_strategies"] = login_strategies
    app.jinja_env.globals["lock_description"] = lock_description
    app.jinja_env.globals["phone_display"] = phone_display
    # The factor pages leave out "Trust this browser" while an old factor only opens a set-up.
    app.jinja_env.globals["proving_old_factor"] = proving_old_factor
    # "the United States or Canada": where codes by text or call may go (setting phone_countries).
    app.jinja_env.globals["phone_code_countries"] = lambda: country_names(
        current_app.config["PFCORE"]["phone_countries"]
    )
    # ``can("action")`` in templates: may the signed-in user do it?
    app.jinja_env.globals["can"] = lambda action, target=None: can(g.get("pfcore_user"), action, target)
    # Form macros as globals: a block rendered alone (htmx partial) does not
    # run the template's top-level imports.
    macros = app.jinja_env.get_template("macros.html").module
    app.jinja_env.globals.update(
        {name: getattr(macros, name) for name in ("field", "checkbox", "form_errors", "alert")}
    )
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    # Connection-level failures only; a bug such as an IntegrityError stays a 500.
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(InterfaceError, _database_error)
    app.register_error_handler(SendRefused, _send_refused)
    app.add_url_rule("/static/plugins/<name>/<path:filename>", "core.plugin_static", _plugin_static)


def _send_refused(refused: SendRefused):
    """A flow that did not catch a refused text or call still answers 422 with the message, not 500."""
    record_refusal(refused)
    return render("error.html", status=422, title="No code was sent", message=refused.message)


def _plugin_static(name: str, filename: str):
    registry = current_app.extensions["pfcore.plugins"]
    if name not in registry.infos:
        raise NotFound()
    return send_from_directory(registry.static_dir(name), filename)


def _unauthorized():
    from flask import redirect, url_for

    if request.headers.get("HX-Request") == "true":
        response = current_app.response_class("", status=401)
        response.headers["HX-Redirect"] = url_for("core.signin")
        return response
    return redirect(url_for("core.signin", next=request.full_path.rstrip("?") if request.method == "GET" else None))


def _layout_context() -> dict:
    """The signed-in frame of every page; a locked screen shows none of it."""
    user = g.get("pfcore_user")
    if user is None or g.get("pfcore_session_locked"):
        return {"current_user": None, "nav": [], "notices": [], "stylesheets": []}
    registry = current_app.extensions["pfcore.plugins"]
    hooks = registry.hook(user.practice)
    login_session = g.pfcore_login_session
    # Asked of the plugins only when the template shows them: an htmx partial
    # (one block of a page) has no navigation or notices (docs/performance.md, P2).
    return {
        "current_user": user,
        "idle_seconds": idle_minutes(user.practice) * 60,
        "nav": _Lazy(lambda: flatten(hooks.nav_items(practice=user.practice, user=user))),
        "notices": _Lazy(
            lambda: flatten(hooks.signin_notices(practice=user.practice, user=user, login_session=login_session))
        ),
        "stylesheets": _Lazy(lambda: flatten(hooks.stylesheets(practice=user.practice, user=user))),
    }


class _Lazy:
    """A list worked out the first time a template reads it."""

    def __init__(self, compute):
        self._compute = compute
        self._items = None

    def _get(self) -> list:
        if self._items is None:
            self._items = self._compute()
        return self._items

    def __iter__(self):
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())

    def __bool__(self) -> bool:
        return bool(self._get())

    def __getitem__(self, index):
        return self._get()[index]


def _csrf_error(error):
    return render(
        "error.html",
        status=400,
        title="Form expired",
        message="This form expired or did not come from pfcore. Reload the page and try again.",
    )


_MESSAGES = {
    403: ("Not allowed", "You do not have permission to do that. Ask a practice administrator."),
    404: ("Not found", "There is nothing here. Check the address or go back."),
    405: ("Not allowed", "That action is not available here."),
    413: ("Too large", "What you sent is too large."),
    415: ("Not a form", "Send the page's own form: this address takes no JSON and no files."),
    429: ("Slow down", "Too many attempts. Wait a minute and try again."),
}


def _http_error(error: HTTPException):
    title, message = _MESSAGES.get(error.code, (error.name, error.description))
    return render("error.html", status=error.code, title=title, message=message)


def _database_error(error: OperationalError | InterfaceError):
    """The database is not answering (restart, failover, network): 503, not a traceback."""
    current_app.logger.error("database error: %s", error)
    try:
        close_session()
    except Exception:  # the connection is gone; nothing to roll back
        pass
    # Draw the page without the signed-in frame: it would ask the database again.
    g.pfcore_user = None
    g.pfcore_login_session = None
    response = render(
        "error.html",
        status=503,
        title="Database unavailable",
        message="The database is not answering. Try again in a moment.",
    )
    response.headers["Retry-After"] = "10"
    return response

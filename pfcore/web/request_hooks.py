"""What happens around every request: who is signed in, which plugin pages
the practice may see, security headers, cookies and outbox delivery."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Request, abort, current_app, g, redirect, request

from ..background_delivery import deliver_queued_after_request
from ..security import sessions
from ..security.signin import request_audit_dimensions
from .lock import lock_url
from .rendering import render

# What a locked session may still reach: the lock screen and Log out.
OPEN_WHILE_LOCKED = frozenset({"core.lock_screen", "core.unlock", "core.signout", "static", "core.plugin_static"})


def refuse_bodies_no_form_takes() -> None:
    """pfcore's routes take HTML forms of text fields: a JSON body or a file part is refused (415).

    Flask-WTF fills a form from a JSON body, and from uploaded files too,
    whose values need not be text (a number, a list, an object, a file, a
    lone surrogate): any form then failed with a 500, before any sign-in
    (found by tests/sweeps/test_fuzz_forms.py).
    """
    if request.method not in ("GET", "HEAD", "OPTIONS") and (request.is_json or request.files):
        abort(415)


def load_signed_in_user() -> None:
    g.pfcore_user = None
    g.pfcore_login_session = None
    g.pfcore_session_locked = False
    g.pfcore_audit_dimensions = {}
    g.csp_nonce = secrets.token_urlsafe(16)
    if request.endpoint in ("static", "core.plugin_static", "core.healthz", "core.metrics"):
        return  # no session needed (and the health check must not fail on one)
    if current_app.extensions["pfcore.plugins"].is_public_blueprint(request.blueprint):
        return  # pages for people who are not practice users never see a staff session
    found = sessions.load_from_request()
    if found:
        user, login_session = found
        g.pfcore_user = user
        g.pfcore_login_session = login_session
        g.pfcore_audit_dimensions = request_audit_dimensions(user, login_session)
        g.pfcore_session_locked = sessions.lock_if_idle(user, login_session)


def enforce_idle_lock():
    """While the screen is locked every request gets the lock answer, never data.

    A page load goes to the lock screen; an htmx request gets 401 with
    HX-Redirect so the whole page turns into the lock screen; anything else
    gets 401.
    """
    if not g.get("pfcore_session_locked") or request.endpoint in OPEN_WHILE_LOCKED:
        return None
    if request.headers.get("HX-Request") == "true":
        response = current_app.response_class("", status=401)
        response.headers["HX-Redirect"] = lock_url(_htmx_page())
        return response
    if request.method in ("GET", "HEAD"):
        return redirect(lock_url(request.full_path.rstrip("?")))
    return render(
        "error.html",
        status=401,
        title="Screen locked",
        message="Your screen is locked. Unlock it with your password and try again.",
    )


def _htmx_page() -> str | None:
    """The page an htmx request came from (HX-Current-URL), if it is on this site."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if current.netloc != request.host:
        return None
    return current.path + (f"?{current.query}" if current.query else "")


def hide_disabled_plugin_pages() -> None:
    """A plugin's pages answer 404 for practices that switched it off."""
    registry = current_app.extensions["pfcore.plugins"]
    owner = registry.owner_of_blueprint(request.blueprint)
    if owner is None:
        return
    if owner not in registry.available:
        abort(404)
    if registry.is_public_blueprint(request.blueprint):
        return  # the plugin checks each practice itself
    user = g.get("pfcore_user")
    if user is not None and owner not in registry.enabled_names(user.practice):
        abort(404)


def security_headers(response):
    csp = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )
    response.headers.setdefault("Content-Security-Policy", csp)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint not in ("static", "core.plugin_static"):
        response.headers["Cache-Control"] = "no-store"
        # Not only render() answers htmx differently: the sign-in, lock-screen, step-up and public
        # plugins' sign-in answers are a 302 for a page load and a 401 with HX-Redirect for htmx (found by
        # the header walk of tests/sweeps/test_access_matrix.py).
        response.vary.add("HX-Request")
    if current_app.config["PFCORE"]["env"] == "production":
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return sessions.apply_cookie(response)


def deliver_outbox(_exc) -> None:
    deliver_queued_after_request()


class NamedFieldsRequest(Request):
    """Flask's request without the form parts that have no name.

    A multipart part whose Content-Disposition carries no name (or one the
    parser cannot read) comes out of werkzeug's parser under the key None,
    and Flask-WTF's CSRF check, which looks at every key, then fails with a
    500 on every POST route, before any sign-in (found by
    tests/sweeps/test_fuzz_forms.py). Such a part is no field of any form: dropped.
    """

    def _load_form_data(self) -> None:
        super()._load_form_data()
        for name in ("form", "files"):
            fields = self.__dict__.get(name)
            if fields is not None and None in fields:
                self.__dict__[name] = type(fields)(
                    [(key, value) for key, value in fields.items(multi=True) if key is not None]
                )

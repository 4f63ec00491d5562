"""The patient's side of the portal, under ``/portal``: registration, sign-in,
records. A public blueprint: the core never loads a staff session here
(``g.pfcore_user`` is always None), and this module loads the portal's own
session instead. The routes live in ``registration_views``,
``account_views`` and ``record_views``, which the package imports with this
module when it registers the blueprint (they import it, not the other way round).
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, g, redirect, request, url_for

from . import accounts, portal_sessions

blueprint = Blueprint("patient_portal_public", __name__, url_prefix="/portal")


@blueprint.before_request
def load_portal_session() -> None:
    """Who is signed in to the portal; their audit events name the patient."""
    g.portal_account = None
    g.portal_session = None
    g.portal_session_ended = None
    found = portal_sessions.load()
    if isinstance(found, tuple):
        g.portal_account, g.portal_session = found
        g.pfcore_audit_actor = accounts.actor(g.portal_account)
    else:
        g.portal_session_ended = found


def _to_signin():
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    location = url_for("patient_portal_public.signin", next=target, ended=g.portal_session_ended)
    if request.headers.get("HX-Request") == "true":
        response = redirect(location)
        response.status_code = 401
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location)


def portal_login_required(view):
    """The page needs a complete portal session (password, and the app code when set up)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.portal_account is None:
            return _to_signin()
        if g.portal_session.second_factor_pending:
            return redirect(url_for("patient_portal_public.signin_code"))
        return view(*args, **kwargs)

    return wrapped

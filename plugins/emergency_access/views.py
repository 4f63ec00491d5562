"""Settings > Emergency access: the pages (activate, deactivate, allow, settings)."""

from __future__ import annotations

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_login import login_required
from sqlalchemy import select

from pfcore.api import (
    CONTROL_CHARACTERS,
    Practice,
    User,
    audit,
    can,
    for_update,
    get_in_practice,
    has_control_characters,
    privilege_change_refused,
    render,
    require,
    safe_next,
    scoped_select,
    session,
)

from .activations import (
    HOW,
    REASON_MAX,
    SETTINGS_KEY,
    activate,
    elevation,
    end_activation,
    expire_due,
    hours,
    is_open,
    open_activation,
    open_activations,
    reason_required,
    set_designation,
)
from .designees import MANAGE, designated_ids, is_designated
from .models import Activation
from .summary import when

blueprint = Blueprint("emergency_access", __name__, url_prefix="/emergency-access")


def _viewer():
    return g.pfcore_user


def _index(*, status: int = 200, message: str | None = None, error: str | None = None):
    viewer = _viewer()
    practice = viewer.practice
    expire_due(practice.id)
    session().commit()
    designated = is_designated(viewer)
    manage = can(viewer, MANAGE)
    if not (designated or manage):
        abort(403)
    context = {
        "designated": designated,
        "manage": manage,
        "mine": open_activation(viewer),
        "elevated": elevation(viewer, g.get("pfcore_login_session")) is not None,
        "reason_required": reason_required(practice),
        "hours": hours(),
        "message": message,
        "error": error,
        "when": when,
        "how": HOW,
        "may_set_reason": can(viewer, "practice.manage"),
    }
    if manage:
        users = {
            u.id: u
            for u in session().scalars(scoped_select(User, practice.id).order_by(User.last_name, User.first_name))
        }
        ids = designated_ids(practice.id)
        active = {a.user_id: a for a in open_activations(practice.id)}
        history = (
            session()
            .scalars(
                scoped_select(Activation, practice.id)
                .order_by(Activation.activated_at.desc(), Activation.id.desc())
                .limit(200)
            )
            .all()
        )
        context.update(
            members=[(u, active.get(u.id)) for u in users.values() if u.id in ids],
            candidates=[u for u in users.values() if u.id not in ids and u.status != "inactive"],
            history=history,
            users=users,
        )
    return render("emergency_access/index.html", status=status, **context)


@blueprint.get("/")
@login_required
def index():
    return _index(
        message={"deactivated": "Emergency access mode is off.", "saved": "Settings saved."}.get(
            request.args.get("done", "")
        )
    )


@blueprint.get("/activate")
@login_required
def confirm():
    if not is_designated(_viewer()):
        abort(403)
    return render(
        "emergency_access/activate.html",
        reason_required=reason_required(_viewer().practice),
        hours=hours(),
        error=None,
        reason="",
    )


@blueprint.post("/activate")
@login_required
def activate_view():
    user = _viewer()
    # The user's row, locked: two activations at once cannot both start.
    session().execute(for_update(select(User.id).where(User.id == user.id))).scalar_one()
    if not is_designated(user) or user.status != "active":
        audit.record(
            "emergency_access.activation_refused",
            practice_id=user.practice_id,
            outcome="failure",
            object_type="user",
            object_id=user.id,
            details={"reason": "not allowed"},
        )
        session().commit()
        abort(403)
    if open_activation(user) is not None:
        return redirect(url_for("emergency_access.index"))
    reason = (request.form.get("reason") or "").strip()
    error = None
    if len(reason) > REASON_MAX:
        error = f"Keep the reason under {REASON_MAX} characters."
    elif has_control_characters(reason, multiline=True):
        error = CONTROL_CHARACTERS
    elif not reason and reason_required(user.practice):
        error = "Enter the reason for emergency access."
    if error:
        return render(
            "emergency_access/activate.html",
            reason_required=reason_required(user.practice),
            hours=hours(),
            error=error,
            reason=reason,
            status=422,
        )
    activate(user, reason)
    session().commit()
    response = redirect(url_for("core.signin"))
    response.headers["HX-Redirect"] = url_for("core.signin")
    return response


def _after_end(activation: Activation):
    """Back to the settings page, or to sign-in when the viewer's own session just ended."""
    login_session = g.get("pfcore_login_session")
    if login_session is not None and login_session.ended_at is not None:
        target = url_for("core.signin")
    else:
        target = url_for("emergency_access.index", done="deactivated")
    response = redirect(target)
    response.headers["HX-Redirect"] = target
    return response


@blueprint.post("/deactivate")
@login_required
def deactivate_own():
    activation = open_activation(_viewer())
    if activation is None:
        return redirect(url_for("emergency_access.index"))
    end_activation(activation, how="user", by=_viewer())
    session().commit()
    return _after_end(activation)


@blueprint.post("/activations/<activation_id>/deactivate")
@login_required
@require(MANAGE)
def deactivate_other(activation_id):
    activation = get_in_practice(Activation, activation_id, _viewer().practice_id)
    if not is_open(activation):
        return redirect(url_for("emergency_access.index"))
    own = activation.user_id == _viewer().id
    end_activation(activation, how="user" if own else "administrator", by=_viewer())
    session().commit()
    return _after_end(activation)


def _designation_refused(user: User):
    """The settings page with the reason (403) when the viewer may not change ``user``'s
    designation (``privilege_change_refused``: in emergency mode, their own or an
    administrator's); ``None`` when they may."""
    reason = privilege_change_refused(_viewer(), user, "emergency_designation")
    if reason is None:
        return None
    session().commit()
    return _index(status=403, error=reason)


@blueprint.post("/users/<user_id>/allow")
@login_required
@require(MANAGE)
def allow(user_id):
    user = get_in_practice(User, user_id, _viewer().practice_id)
    refused = _designation_refused(user)
    if refused:
        return refused
    set_designation(user, request.form.get("allow") == "1", _viewer())
    session().commit()
    target = safe_next(request.form.get("return_to"), url_for("emergency_access.index"))
    login_session = g.get("pfcore_login_session")
    if login_session is not None and login_session.ended_at is not None:
        target = url_for("core.signin")
    return redirect(target)


@blueprint.post("/grant")
@login_required
@require(MANAGE)
def grant():
    """Settings > Emergency access: allow one more member (chosen from a list)."""
    user_id = request.form.get("user_id", "")
    user = get_in_practice(User, user_id if user_id.isdigit() else 0, _viewer().practice_id)
    refused = _designation_refused(user)
    if refused:
        return refused
    set_designation(user, True, _viewer())
    session().commit()
    return redirect(url_for("emergency_access.index"))


@blueprint.post("/settings")
@login_required
@require("practice.manage")
def save_settings():
    session().execute(for_update(select(Practice.id).where(Practice.id == _viewer().practice_id))).scalar_one()
    practice = session().get(Practice, _viewer().practice_id)
    required = request.form.get("reason_required") == "1"
    if required != reason_required(practice):
        settings = dict(practice.settings or {})
        settings[SETTINGS_KEY] = {**(settings.get(SETTINGS_KEY) or {}), "reason_required": required}
        practice.settings = settings
        audit.record(
            "emergency_access.settings_changed",
            practice_id=practice.id,
            object_type="practice",
            object_id=practice.id,
            details={"reason_required": required},
        )
        session().commit()
    return redirect(url_for("emergency_access.index", done="saved"))

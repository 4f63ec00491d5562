"""An invitation step: the invitee accepts the practice's terms of use before
choosing a password. The acceptance is an audit event, which is also how the
step knows it is done."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from sqlalchemy import select

from pfcore import audit
from pfcore.contrib import PluginInfo, SetupStep
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import AuditEvent, User
from pfcore.web.auth import invitation_step
from pfcore.web.rendering import render

PLUGIN = PluginInfo(name="terms_step", title="Terms of use on invitation", enabled_by_default=False)
ACCEPTED = "terms_step.accepted"

blueprint = Blueprint("terms_step", __name__, url_prefix="/terms-step")


def accepted(user: User) -> bool:
    return (
        session().scalar(
            select(AuditEvent.id)
            .where(
                AuditEvent.practice_id == user.practice_id,
                AuditEvent.action == ACCEPTED,
                AuditEvent.object_type == "user",
                AuditEvent.object_id == str(user.id),
            )
            .limit(1)
        )
        is not None
    )


@blueprint.route("/<token>", methods=["GET", "POST"])
@invitation_step
def step(token, user):
    if request.method == "GET":
        session().rollback()
        return render("terms_step/step.html", token=token)
    if request.form.get("accept") != "yes":
        session().rollback()
        return render("terms_step/step.html", token=token, error="Tick the box to accept the terms.", status=422)
    audit.record(ACCEPTED, practice_id=user.practice_id, actor=user, object_type="user", object_id=user.id)
    session().commit()
    return redirect(url_for("core.invitation_account", token=token))


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def invitation_steps(practice, user):
    return [SetupStep(name="terms", title="Terms of use", endpoint="terms_step.step", is_done=accepted, order=20)]

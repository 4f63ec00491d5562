"""Nothing records a password, a code or a link token: not the audit log, not the logs."""

from __future__ import annotations

import logging

from argon2 import PasswordHasher
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import AuditEvent, User

from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link, sign_in_email
from .test_users import NEW_USER, PASSWORD, _practice, add_user, complete_reset, latest_code


def test_flows_leave_no_secret_in_the_audit_log_or_the_logs(app, admin_web, inbox, caplog):
    caplog.set_level(logging.DEBUG)
    add_user(admin_web)
    link = last_link(inbox, NEW_USER["email"], "/invitation/")
    invitee = Browserless(app.test_client())
    invitee.post(link, {"pac": _practice(app).pac})
    invitee.post(link + "/phone", {"phone": "+14155550123", "channel": "sms"})
    code = latest_code(app, "+14155550123")
    invitee.post(link + "/phone/code", {"code": "000001" if code != "000001" else "000002"})
    invitee.post(link + "/phone/code", {"code": code})
    invitee.post(link + "/account", {"username": "nnurse", "password": PASSWORD, "confirm": PASSWORD})
    sign_in_email(invitee, NEW_USER["email"], "a wrong password guess")
    with app.app_context():
        user = session().scalars(select(User).where(User.email == NEW_USER["email"])).one()
    detail = f"/settings/users/{user.id}"
    admin_web.htmx_post(f"{detail}/reset-password", page=detail)
    reset_link = last_link(inbox, NEW_USER["email"], "/password-reset/")
    reset_code_phone = "+14155550123"
    complete_reset(app, invitee, reset_link, reset_code_phone, "an entirely new phrase to remember")
    reset_code = latest_code(app, reset_code_phone)
    secrets = [
        SIGNUP["password"],
        PASSWORD,
        "a wrong password guess",
        "an entirely new phrase to remember",
        code,
        reset_code,
        link.rsplit("/", 1)[1],
        reset_link.rsplit("/", 1)[1],
        _practice(app).pac,
    ]
    with app.app_context():
        recorded = " ".join(f"{e.details} {e.object_id} {e.actor_label}" for e in session().scalars(select(AuditEvent)))
        assert len(recorded) > 500
    # The test's own SMTP server (aiosmtpd, logger "mail.log") logs the mail it receives; pfcore must not.
    logged = " ".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail"))
    for secret in secrets:
        assert secret not in recorded, secret
        assert secret not in logged, secret


def test_sign_in_rehashes_when_the_configured_parameters_grow(app, admin_web):
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    with app.app_context():
        admin = session().scalars(select(User)).one()
        admin.password_hash = weak.hash(SIGNUP["password"])
        session().commit()
    web = Browserless(app.test_client())
    assert sign_in_email(web, SIGNUP["email"], SIGNUP["password"]).status_code == 302
    with app.app_context():
        rehashed = session().scalars(select(User)).one().password_hash
    assert "m=19456,t=2" in rehashed

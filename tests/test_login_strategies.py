"""Login strategies own their switches: which strategies a practice allows is each
strategy plugin's per-practice setting ``allowed`` (Settings > Plugins), and the
per-user switch ("Upgrade to email login" turns Practice ID sign-in off) is kept
in the strategy plugins' own tables, asked through ``login_strategy_allows``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select, text

from pfcore.db import session
from pfcore.models import Practice
from pfcore.schema import differences, downgrade, upgrade

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email, sign_in_pac
from .support.records import add_active_user, audit_rows
from .test_migrations import _user_sql

REPO = Path(__file__).resolve().parent.parent
EMAIL = "kim@sunrise.example.com"
PASSWORD = "tulips under the april rain"


def _pac(app) -> str:
    with app.app_context():
        return session().scalars(select(Practice)).one().pac


def _how_you_log_in(web) -> str:
    html = web.get("/account").get_data(as_text=True)
    return re.search(r'<section class="panel" aria-labelledby="login-heading">(.*?)</section>', html, re.S).group(1)


def test_a_practice_that_switches_practice_id_sign_in_off_no_longer_shows_or_accepts_it(app, admin_web):
    add_active_user(
        app, first_name="Kim", last_name="Lee", email=EMAIL, username="klee", password=PASSWORD, phone="+14155550177"
    )
    kim = Browserless(app.test_client())
    assert sign_in_pac(kim, _pac(app), "klee", PASSWORD).status_code == 302
    before = _how_you_log_in(kim)
    assert "You log in with your Practice ID and username, or with your email." in before
    assert "Upgrade to email login" in before

    form = admin_web.get("/settings/plugins").get_data(as_text=True)
    assert "Practice ID sign-in: settings for your practice" in form and "Allow Practice ID sign-in" in form
    # The box left unticked: off.
    response = admin_web.post("/settings/plugins/login_pac/settings", {}, page="/settings/plugins")
    assert response.status_code == 200
    (changed,) = audit_rows(app, "plugin.setting_changed")
    assert changed.object_id == "login_pac"
    assert json.loads(changed.details) == {"setting": "allowed", "old": True, "new": False}

    after = _how_you_log_in(kim)
    assert "You log in with your email." in after
    assert "Practice ID" not in after, "neither offered, nor the upgrade away from it"
    refused = sign_in_pac(Browserless(app.test_client()), _pac(app), "klee", PASSWORD)
    assert refused.status_code == 422 and "Those sign-in details did not work" in refused.get_data(as_text=True)
    failure = audit_rows(app, "signin.failure")[-1]
    assert json.loads(failure.details)["reason"] == "practice_id sign-in is off for this practice"
    assert sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD).status_code == 302

    admin_web.post("/settings/plugins/login_pac/settings", {"allowed": "1"}, page="/settings/plugins")
    assert sign_in_pac(Browserless(app.test_client()), _pac(app), "klee", PASSWORD).status_code == 302


def test_a_practice_that_switches_email_sign_in_off_refuses_it_and_offers_no_upgrade(app, admin_web):
    add_active_user(
        app, first_name="Kim", last_name="Lee", email=EMAIL, username="klee", password=PASSWORD, phone="+14155550177"
    )
    admin_web.post("/settings/plugins/login_email/settings", {}, page="/settings/plugins")
    refused = sign_in_email(Browserless(app.test_client()), EMAIL, PASSWORD)
    assert refused.status_code == 422
    assert (
        json.loads(audit_rows(app, "signin.failure")[-1].details)["reason"] == "email sign-in is off for this practice"
    )
    kim = Browserless(app.test_client())
    assert sign_in_pac(kim, _pac(app), "klee", PASSWORD).status_code == 302
    shown = _how_you_log_in(kim)
    assert "You log in with your Practice ID and username." in shown and "Upgrade to email login" not in shown
    assert kim.post("/login-email/upgrade", {"email": EMAIL, "current": PASSWORD}, page="/account").status_code == 422


def test_the_other_practice_keeps_its_strategies(app, admin_web):
    admin_web.post("/settings/plugins/login_email/settings", {}, page="/settings/plugins")
    other = Browserless(app.test_client())
    data = dict(SIGNUP, practice_name="Other Clinic", email="admin@other.example.com")
    assert other.post("/signup", data).status_code == 302
    assert (
        sign_in_email(Browserless(app.test_client()), "admin@other.example.com", SIGNUP["password"]).status_code == 302
    )


def test_the_migration_moves_the_old_per_user_switches_into_the_strategy_plugins(fresh_app):  # noqa: F811
    upgrade(fresh_app, "0010_outbox_phone_caps")
    engine = fresh_app.extensions["pfcore.engine"]
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO practices (id, name, pac, pac_rotated_at, specialty, phone, email, timezone, "
                "subscription_status, created_at, settings) "
                "VALUES (1, 'Clinic', 'PAC0000001', '2026-12-01 10:00:00', '', "
                "'', '', 'UTC', 'trial', '2026-12-01 10:00:00', '{}')"
            )
        )
        for user_id, email in ((1, "upgraded@example.org"), (2, "both@example.org"), (3, "no-email@example.org")):
            connection.execute(text(_user_sql(user_id, 1, email, "active")))
        connection.execute(text("UPDATE users SET pac_login_enabled = :off WHERE id = 1"), {"off": False})
        connection.execute(text("UPDATE users SET email_login_enabled = :off WHERE id = 3"), {"off": False})
    upgrade(fresh_app)
    assert differences(fresh_app) == []
    with engine.begin() as connection:
        assert connection.execute(text("SELECT user_id, practice_id FROM login_pac_users_off")).all() == [(1, 1)]
        assert connection.execute(text("SELECT user_id, practice_id FROM login_email_users_off")).all() == [(3, 1)]
        columns = (
            {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(users)")}
            if engine.dialect.name == "sqlite"
            else set(
                connection.scalars(
                    text("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")
                )
            )
        )
        assert not {"pac_login_enabled", "email_login_enabled"} & columns
    downgrade(fresh_app, "0011_plugin_settings")  # and back: the columns again, with the switches
    with engine.begin() as connection:
        assert connection.execute(
            text("SELECT id, pac_login_enabled, email_login_enabled FROM users ORDER BY id")
        ).all() == [(1, False, True), (2, True, True), (3, True, False)]


def test_the_core_names_no_login_strategy():
    for path in ("pfcore/security/signin.py", "pfcore/accounts.py", "pfcore/models.py"):
        source = (REPO / path).read_text()
        assert "pac_login" not in source and "email_login" not in source, path
    assert not (REPO / "pfcore/web/login_email.py").exists(), "the email sign-in pages live in plugins/login_email"

"""Every hook, shown working through the app with the small plugins in
tests/fixture_plugins/.

Each test names the hooks it demonstrates with ``@covers(...)``;
``test_every_hook_has_a_test`` fails when a hook in pfcore/hookspecs.py has
none. Hooks that answer for a practice are asked only while that practice has
the plugin switched on (Settings > Plugins), so most tests also switch the
plugin off and see its contribution go.
"""

from __future__ import annotations

import re

import click
import pytest
from flask.cli import FlaskGroup
from sqlalchemy import select

import pfcore.cli
import pfcore.plugins
from pfcore import audit, create_app, messaging
from pfcore.db import session
from pfcore.models import AuditEvent, LoginSession, OutboxMessage, Practice, User
from pfcore.plugins import PluginRegistry

from .fixture_plugins import (
    badge_pin,
    break_glass,
    card_billing,
    chart_extras,
    deny_audit,
    events_log,
    frozen_admins,
    gauges,
    grant_audit,
    hello_cli,
    login_badge,
    sms_backup,
    sms_primary,
    terms_step,
    ui_parts,
)
from .support.apps import Browserless
from .support.journeys import SIGNUP, last_link, pass_second_factor, sign_in_email, signup
from .support.records import audit_rows

FIXTURE_PLUGINS = [
    ui_parts,
    grant_audit,
    deny_audit,
    sms_primary,
    sms_backup,
    break_glass,
    events_log,
    hello_cli,
    terms_step,
    login_badge,
    badge_pin,
    chart_extras,
    frozen_admins,
]
NURSE = {"first_name": "Nora", "last_name": "Nurse", "email": "nora@sunrise.example.com", "access_level": "2"}
NURSE_PASSWORD = "violet kettle marching quietly"
NURSE_PHONE = "+14155550123"


def covers(*hooks: str):
    """Mark a test as the demonstration of ``hooks``."""

    def mark(test):
        test.covers_hooks = hooks
        return test

    return mark


def hook_names() -> set[str]:
    from .test_docs import hook_specs

    return set(hook_specs())


@pytest.fixture
def extra_plugins() -> list:
    return list(FIXTURE_PLUGINS)


@pytest.fixture(autouse=True)
def _fresh_records():
    for log in (events_log.EVENTS, sms_primary.SENT, sms_backup.SENT, badge_pin.DEMANDED):
        log.clear()


# --- helpers ------------------------------------------------------------------


def switch(web: Browserless, name: str, on: bool):
    """Switch a plugin on or off in Settings > Plugins, as an administrator does."""
    return web.post(f"/settings/plugins/{name}", {"enabled": "1" if on else "0"}, page="/settings/plugins")


def switched(web: Browserless, name: str, on: bool) -> None:
    response = switch(web, name, on)
    assert response.status_code == 200, response.get_data(as_text=True)


def page(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def one(app, model, *where):
    with app.app_context():
        return session().scalars(select(model).where(*where)).one()


def invite(web: Browserless, **changes) -> dict:
    data = dict(NURSE, **changes)
    response = web.post("/settings/users/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return data


def open_invitation(app, inbox, email: str) -> tuple[Browserless, str]:
    """A new browser that opened the invitation link and gave the PAC."""
    link = last_link(inbox, email, "/invitation/")
    invitee = Browserless(app.test_client())
    pac = one(app, Practice).pac
    assert invitee.post(link, {"pac": pac}).status_code == 302
    return invitee, link


def verify_phone(app, invitee: Browserless, link: str, phone: str = NURSE_PHONE) -> None:
    """The core's own invitation step: a phone, and the code texted to it (read from the outbox)."""
    response = invitee.post(link + "/phone", {"phone": phone, "channel": "sms"})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        text = (
            session()
            .scalars(select(OutboxMessage).where(OutboxMessage.recipient == phone).order_by(OutboxMessage.id.desc()))
            .first()
        )
    code = re.search(r"\b(\d{6})\b", text.body).group(1)
    assert invitee.post(link + "/phone/code", {"code": code}).status_code == 302


def choose_password(invitee: Browserless, link: str, username: str = "nnurse", csrf_page: str | None = None):
    return invitee.post(
        link + "/account", {"username": username, "password": NURSE_PASSWORD, "confirm": NURSE_PASSWORD}, page=csrf_page
    )


def active_nurse(app, admin_web, inbox) -> Browserless:
    """A signed-in non-administrator of the administrator's practice."""
    invite(admin_web)
    invitee, link = open_invitation(app, inbox, NURSE["email"])
    verify_phone(app, invitee, link)
    assert choose_password(invitee, link).status_code == 302
    return invitee


# --- the UI shell -------------------------------------------------------------


@covers("nav_items")
def test_nav_items_show_in_the_top_navigation_only_while_the_plugin_is_on(app, admin_web):
    assert '<a href="/ui-parts/">Parts</a>' in page(admin_web, "/dashboard")
    switched(admin_web, "ui_parts", False)
    assert "/ui-parts/" not in page(admin_web, "/dashboard")
    switched(admin_web, "ui_parts", True)
    assert '<a href="/ui-parts/">Parts</a>' in page(admin_web, "/settings")


@covers("settings_tiles")
def test_settings_tiles_show_on_settings_beside_the_core_tiles_only_while_on(app, admin_web):
    html = page(admin_web, "/settings")
    assert "Parts settings" in html and "Settings contributed by a plugin." in html
    assert html.index(">Users</a>") < html.index(">Parts settings</a>") < html.index(">Plugins</a>"), "ordered by order"
    switched(admin_web, "ui_parts", False)
    html = page(admin_web, "/settings")
    assert "Parts settings" not in html and ">Users</a>" in html


@covers("dashboard_tiles")
def test_dashboard_tiles_show_on_the_dashboard_only_while_on(app, admin_web):
    html = page(admin_web, "/dashboard")
    assert "Parts dashboard" in html
    assert "<p class=parts-body>Sunrise Family Clinic</p>" in html
    switched(admin_web, "ui_parts", False)
    html = page(admin_web, "/dashboard")
    assert "Parts dashboard" not in html and "EHR Users" in html


@covers("user_table_columns")
def test_user_table_columns_add_a_column_to_settings_users_only_while_on(app, admin_web):
    html = page(admin_web, "/settings/users")
    assert '<th scope="col">Initials</th>' in html and "<td>GH</td>" in html
    switched(admin_web, "ui_parts", False)
    html = page(admin_web, "/settings/users")
    assert "Initials" not in html and "<td>GH</td>" not in html


@covers("user_detail_sections")
def test_user_detail_sections_show_on_a_users_page_only_while_on(app, admin_web):
    admin = one(app, User, User.email == SIGNUP["email"])
    html = page(admin_web, f"/settings/users/{admin.id}")
    assert "Parts section" in html and "Grace is looking at Grace Hopper." in html
    assert "Login info" in html
    switched(admin_web, "ui_parts", False)
    html = page(admin_web, f"/settings/users/{admin.id}")
    assert "Parts section" not in html and "Login info" in html


@covers("login_info_items")
def test_login_info_items_add_lines_to_the_login_info_section_only_while_on(app, admin_web):
    admin = one(app, User, User.email == SIGNUP["email"])
    html = page(admin_web, f"/settings/users/{admin.id}")
    login_info = html[html.index(">Login info</h2>") :]
    login_info = login_info[: login_info.index("</section>")]
    assert f"<dt>Parts badge</dt><dd><code>badge-{admin.id}</code></dd>" in login_info
    switched(admin_web, "ui_parts", False)
    assert "Parts badge" not in page(admin_web, f"/settings/users/{admin.id}")


@covers("signin_notices")
def test_signin_notices_show_as_a_banner_on_every_page_only_while_on(app, admin_web):
    for path in ("/dashboard", "/settings", "/settings/users"):
        html = page(admin_web, path)
        assert '<div class="banner warning" role="status">Parts notice for Sunrise Family Clinic' in html
        assert '<a href="/ui-parts/">Open parts</a>' in html
    switched(admin_web, "ui_parts", False)
    assert "Parts notice" not in page(admin_web, "/dashboard")


@covers("stylesheets")
def test_stylesheets_link_a_plugins_own_css_on_every_page_only_while_on(app, admin_web):
    """The chart and emergency-access styles come from the plugins' static/<name>/, not the core's CSS."""
    charts_css = '<link rel="stylesheet" href="/static/plugins/charts/charts.css">'
    emergency_css = '<link rel="stylesheet" href="/static/plugins/emergency_access/emergency_access.css">'
    html = page(admin_web, "/dashboard")
    assert charts_css in html and emergency_css not in html  # emergency access is off by default
    switched(admin_web, "emergency_access", True)
    assert emergency_css in page(admin_web, "/settings")
    assert "tr.audit-flag-emergency" in page(admin_web, "/static/plugins/emergency_access/emergency_access.css")
    assert ".chart-header" in page(admin_web, "/static/plugins/charts/charts.css")
    switched(admin_web, "patient_portal", False)  # it needs charts
    switched(admin_web, "charts", False)
    assert charts_css not in page(admin_web, "/dashboard")
    core_css = page(admin_web, "/static/css/pfcore.css")
    assert "chart" not in core_css and "emergency" not in core_css


@covers("register_blueprints")
def test_register_blueprints_serves_the_plugins_pages_only_to_practices_that_switched_it_on(app, admin_web):
    html = page(admin_web, "/ui-parts/")
    assert "The parts page" in html and "Sunrise Family Clinic" in html
    assert '<link rel="stylesheet" href="/static/plugins/ui_parts/parts.css">' in html
    assert b".parts-body" in admin_web.get("/static/plugins/ui_parts/parts.css").data
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="ada@other.example.com")
    switched(admin_web, "ui_parts", False)
    assert admin_web.get("/ui-parts/").status_code == 404
    assert "The parts page" in page(other, "/ui-parts/"), "switched off for one practice, not for the other"


@covers("register_blueprints")
def test_register_blueprints_pages_keep_their_own_sign_in_rules(app, web):
    response = web.get("/ui-parts/")
    assert response.status_code == 302 and "/signin" in response.headers["Location"]


# --- signing in ---------------------------------------------------------------


@covers("login_strategies")
def test_login_strategies_offer_a_way_in_that_works_while_the_practice_has_it_on(app, admin_web):
    web = admin_web
    web.post("/signout", page="/dashboard")
    response = web.get("/signin")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login-badge/"), (
        "lowest order first"
    )
    html = page(web, "/login-email/")
    assert '<a href="/login-badge/">Staff badge</a>' in html
    credentials = {"email": SIGNUP["email"], "password": SIGNUP["password"]}
    response = pass_second_factor(web, web.post("/login-badge/", credentials))
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    switched(web, "login_badge", False)
    web.post("/signout", page="/dashboard")
    response = web.post("/login-badge/", credentials)
    assert response.status_code == 422
    assert "Those sign-in details did not work" in response.get_data(as_text=True)
    failure = audit_rows(app, "signin.failure")[-1]
    assert "badge sign-in is off for this practice" in failure.details
    assert sign_in_email(web, SIGNUP["email"], SIGNUP["password"]).status_code == 302


@covers("login_strategy_allows", "login_method_sections", "user_login_upgraded")
def test_a_login_strategy_keeps_its_own_switch_and_its_part_of_my_account(app, admin_web):
    """A third-party strategy needs no core change: My account lists it (its ``how``) with its
    section, the upgrade to email login tells it (it turns itself off), and its refusal holds."""
    from pfcore import accounts
    from pfcore.models import UserToken

    login_badge.OFF.clear()
    account = page(admin_web, "/account")
    assert "You log in with your staff badge, or with your Practice ID and username, or with your email." in account
    assert "Your badge also opens the front door." in account
    with app.test_request_context():
        admin = session().scalars(select(User)).one()
        accounts.request_email_change(admin, "grace.new@example.com", by_admin=False, upgrade=True)
        row = session().scalars(select(UserToken).where(UserToken.purpose == "email_change")).one()
        accounts.complete_new_email(row)
        session().commit()
        admin_id = admin.id
    assert login_badge.OFF == {admin_id}
    account = page(admin_web, "/account")
    assert "You log in with your email. Staff badge login is off for your account." in " ".join(account.split())
    admin_web.post("/signout", page="/dashboard")
    response = admin_web.post("/login-badge/", {"email": "grace.new@example.com", "password": SIGNUP["password"]})
    assert response.status_code == 422
    assert "badge sign-in is off for this user" in audit_rows(app, "signin.failure")[-1].details
    login_badge.OFF.clear()


@covers("second_factors")
def test_second_factors_are_offered_at_sign_in_and_finish_it_only_while_on(app, admin_web):
    web = admin_web
    switched(web, "badge_pin", True)
    web.post("/signout", page="/dashboard")
    response = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.headers["Location"].endswith("/signin/verify")
    assert web.get("/dashboard").status_code == 302, "no session before the second factor"
    assert '<a class="button primary" href="/badge-pin/">Use my badge PIN</a>' in page(web, "/signin/verify")
    wrong = web.post("/badge-pin/", {"pin": "0000"})
    assert wrong.status_code == 422 and audit_rows(app, "mfa.failure")
    done = web.post("/badge-pin/", {"pin": badge_pin.PIN, "trust_browser": "1"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/dashboard")
    assert web.get("/dashboard").status_code == 200
    assert '"factor":"badge_pin"' in audit_rows(app, "mfa.success")[-1].details
    # Trusted: the next sign-in from this browser skips the second factor.
    web.post("/signout", page="/dashboard")
    again = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert again.headers["Location"].endswith("/dashboard")
    # Switched off, the factor is gone: a user with no other factor must set one up.
    switched(web, "badge_pin", False)
    web.post("/signout", page="/dashboard")
    response = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.headers["Location"].endswith("/signin/enroll")
    assert "Use my badge PIN" not in page(web, "/signin/enroll")


@covers("second_factor_required")
def test_second_factor_required_demands_a_factor_even_on_a_trusted_browser(app, admin_web):
    web = admin_web
    switched(web, "badge_pin", True)
    web.post("/signout", page="/dashboard")
    sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    web.post("/badge-pin/", {"pin": badge_pin.PIN, "trust_browser": "1"})
    web.post("/signout", page="/dashboard")
    badge_pin.DEMANDED.add(SIGNUP["email"])
    response = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.headers["Location"].endswith("/signin/verify")
    switched_off_web = web
    switched_off_web.post("/badge-pin/", {"pin": badge_pin.PIN})
    switched(switched_off_web, "badge_pin", False)
    switched_off_web.post("/signout", page="/dashboard")
    response = sign_in_email(web, SIGNUP["email"], SIGNUP["password"], second_factor=False)
    assert response.headers["Location"].endswith("/signin/enroll"), "the plugin is off: nothing demands it"


@covers("account_sections")
def test_account_sections_show_on_my_account_only_while_on(app, admin_web):
    assert "Badge PIN" not in page(admin_web, "/account")
    switched(admin_web, "badge_pin", True)
    html = page(admin_web, "/account")
    assert "<h2" in html and "Badge PIN" in html and "Your badge PIN works as a second factor." in html
    assert html.index("Second factors") < html.index("Signed-in browsers") < html.index("Badge PIN")


@covers("invitation_steps")
def test_invitation_steps_come_after_the_pac_and_before_the_password_in_order(app, admin_web, inbox):
    invite(admin_web, email="before@sunrise.example.com")
    invitee, link = open_invitation(app, inbox, "before@sunrise.example.com")
    verify_phone(app, invitee, link, phone="+14155550177")
    assert 'name="password"' in page(invitee, link + "/account"), "only the core's step while the plugin is off"

    switched(admin_web, "terms_step", True)
    invite(admin_web)
    invitee, link = open_invitation(app, inbox, NURSE["email"])
    token = link.rsplit("/", 1)[1]
    response = invitee.get(link + "/account")
    assert response.status_code == 302 and response.headers["Location"] == link + "/phone", "the core's step (10)"
    verify_phone(app, invitee, link)
    response = invitee.get(link + "/account")
    assert response.status_code == 302 and response.headers["Location"] == f"/terms-step/{token}", "then ours (20)"
    skipping = choose_password(invitee, link, csrf_page=f"/terms-step/{token}")
    assert skipping.status_code == 302 and skipping.headers["Location"] == f"/terms-step/{token}", "no skipping"
    assert one(app, User, User.email == NURSE["email"]).status == "invited"
    assert "I accept the practice's terms of use" in page(invitee, f"/terms-step/{token}")
    assert invitee.post(f"/terms-step/{token}", {}).status_code == 422
    response = invitee.post(f"/terms-step/{token}", {"accept": "yes"})
    assert response.status_code == 302 and response.headers["Location"] == link + "/account"
    assert 'name="password"' in page(invitee, link + "/account")
    response = choose_password(invitee, link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    assert one(app, User, User.email == NURSE["email"]).status == "active"
    assert len(audit_rows(app, "terms_step.accepted")) == 1


@covers("invitation_steps")
def test_invitation_steps_pages_need_the_pac_entered_in_the_same_browser(app, admin_web, inbox):
    switched(admin_web, "terms_step", True)
    invite(admin_web)
    link = last_link(inbox, NURSE["email"], "/invitation/")
    token = link.rsplit("/", 1)[1]
    stranger = Browserless(app.test_client())
    response = stranger.get(f"/terms-step/{token}")
    assert response.status_code == 302 and response.headers["Location"] == link
    assert stranger.get("/terms-step/not-a-token").status_code == 410


@covers("user_signed_in")
def test_user_signed_in_is_told_of_every_new_session(app, web):
    signup(web)
    assert ("user_signed_in", SIGNUP["email"], True) in events_log.EVENTS
    events_log.EVENTS.clear()
    web.post("/signout", page="/dashboard")
    sign_in_email(web, SIGNUP["email"], SIGNUP["password"])
    assert events_log.EVENTS == [("user_signed_in", SIGNUP["email"], True)]
    sign_in_email(web, SIGNUP["email"], "a wrong password")
    assert len(events_log.EVENTS) == 1, "not for a failed sign-in"


@covers("user_signed_in")
def test_user_signed_in_may_set_flags_on_the_session(app, admin_web):
    switched(admin_web, "break_glass", True)
    admin_web.post("/signout", page="/dashboard")
    sign_in_email(admin_web, SIGNUP["email"], SIGNUP["password"])
    with app.app_context():
        sessions = session().scalars(select(LoginSession).order_by(LoginSession.id)).all()
    assert [s.flags.get("elevated") for s in sessions] == [None, True]


# --- permissions --------------------------------------------------------------


@covers("permission_allowed")
def test_permission_allowed_any_deny_wins_even_over_the_core_default(app, admin_web):
    assert '<a href="/reports/audit">Reports</a>' in page(admin_web, "/dashboard")
    assert admin_web.get("/reports/audit").status_code == 200
    switched(admin_web, "deny_audit", True)
    assert admin_web.get("/reports/audit").status_code == 403
    assert "/reports/audit" not in page(admin_web, "/dashboard")
    switched(admin_web, "deny_audit", False)
    assert admin_web.get("/reports/audit").status_code == 200


@covers("permission_allowed")
def test_permission_allowed_a_plugin_can_allow_what_the_core_does_not_and_a_deny_still_wins(app, admin_web, inbox):
    nurse = active_nurse(app, admin_web, inbox)
    assert nurse.get("/reports/audit").status_code == 403
    switched(admin_web, "grant_audit", True)
    assert nurse.get("/reports/audit").status_code == 200
    assert nurse.get("/settings/users").status_code == 403, "only the action the plugin answers for"
    switched(admin_web, "deny_audit", True)
    assert nurse.get("/reports/audit").status_code == 403
    assert admin_web.get("/reports/audit").status_code == 403


@covers("permission_allowed", "permission_denied_reason")
def test_permission_allowed_can_refuse_a_change_of_one_users_privileges(app, admin_web, inbox):
    """``users.change_privileges`` is asked with the user as target (admin flag, access
    level, status): a plugin refuses it for some users, the page says why (403), audited."""
    invite(admin_web)
    nurse = one(app, User, User.email == NURSE["email"])
    grace = one(app, User, User.email == SIGNUP["email"])
    switched(admin_web, "frozen_admins", True)
    mine = f"/settings/users/{grace.id}"
    refused = admin_web.htmx_post(f"{mine}/access-level", {"access_level": "3"}, page=mine)
    assert refused.status_code == 403 and "Administrators are frozen" in refused.get_data(as_text=True)
    theirs = f"/settings/users/{nurse.id}"
    assert admin_web.htmx_post(f"{theirs}/access-level", {"access_level": "3"}, page=theirs).status_code == 200
    assert (
        one(app, User, User.id == grace.id).access_level == 4 and one(app, User, User.id == nurse.id).access_level == 3
    )
    [event] = audit_rows(app, "user.change_refused")
    assert event.outcome == "failure" and event.object_id == str(grace.id)


# --- lifecycle events ---------------------------------------------------------


@covers("practice_created")
def test_practice_created_is_told_of_the_new_practice_and_its_administrator(app, web):
    signup(web)
    assert events_log.EVENTS[0] == ("practice_created", SIGNUP["practice_name"], SIGNUP["email"])


@covers("user_created")
def test_user_created_is_told_of_an_added_user_only_while_on(app, admin_web):
    invite(admin_web)
    assert events_log.EVENTS[-1] == ("user_created", NURSE["email"], "invited", SIGNUP["email"])
    switched(admin_web, "events_log", False)
    count = len(events_log.EVENTS)
    invite(admin_web, email="other@sunrise.example.com")
    assert len(events_log.EVENTS) == count


@covers("user_status_changed")
def test_user_status_changed_on_accepting_deactivating_and_reactivating(app, admin_web, inbox):
    active_nurse(app, admin_web, inbox)
    nurse = one(app, User, User.email == NURSE["email"])
    admin_web.post(f"/settings/users/{nurse.id}/deactivate", page=f"/settings/users/{nurse.id}")
    admin_web.post(f"/settings/users/{nurse.id}/reactivate", page=f"/settings/users/{nurse.id}")
    changes = [e for e in events_log.EVENTS if e[0] == "user_status_changed"]
    assert changes == [
        ("user_status_changed", NURSE["email"], "invited", "active", NURSE["email"]),
        ("user_status_changed", NURSE["email"], "active", "inactive", SIGNUP["email"]),
        ("user_status_changed", NURSE["email"], "inactive", "active", SIGNUP["email"]),
    ]


# --- audit and messaging ------------------------------------------------------


def glass_broken(event) -> bool:
    return audit.event_dimensions(event).get("break_glass", False)


@covers("audit_event_dimensions", "audit_dimensions")
def test_audit_event_dimensions_land_on_the_audit_rows_of_the_request(app, admin_web):
    admin_web.post("/settings/users/pac", page="/settings/users")
    switched(admin_web, "break_glass", True)
    admin_web.post("/signout", page="/dashboard")
    sign_in_email(admin_web, SIGNUP["email"], SIGNUP["password"])
    admin_web.post("/settings/users/pac", page="/settings/users")
    rotations = audit_rows(app, "practice.pac_rotated")
    assert [glass_broken(r) for r in rotations] == [False, True]
    assert [glass_broken(r) for r in audit_rows(app, "signin.success")] == [False, True]
    # The declared dimension is a badge in the report, a column in the CSV, and a filter
    # through the index (pfcore.audit.with_dimension).
    page = admin_web.get("/reports/audit?action=practice.pac_rotated").get_data(as_text=True)
    assert page.count('<span class="badge">Glass broken</span>') == 1
    assert 'class="audit-flag-break_glass' in page
    csv_text = admin_web.get("/reports/audit.csv?action=practice.pac_rotated").get_data(as_text=True)
    header, *lines = csv_text.strip().splitlines()
    assert header.endswith(",break_glass") and sorted(line.endswith(",true") for line in lines) == [False, True]
    with app.app_context():
        flagged = (
            session()
            .scalars(
                select(AuditEvent.action).where(audit.with_dimension(rotations[0].practice_id, "break_glass", (True,)))
            )
            .all()
        )
    assert {"practice.pac_rotated", "signin.success"} <= set(flagged) and flagged.count("practice.pac_rotated") == 1
    switched(admin_web, "break_glass", False)
    admin_web.post("/settings/users/pac", page="/settings/users")
    assert glass_broken(audit_rows(app, "practice.pac_rotated")[-1]) is False, "only while the plugin is on"


def _queue_admitted(channel: str, to: str, body: str) -> None:
    """A text or call queued as if ``phone_sends.admit`` had let it through: these
    tests are about delivering it (the caps: tests/test_phone_sends.py)."""
    from pfcore.security.phone_sends import Permit

    messaging.queue(channel, to, body, permit=Permit(channel, to, None))


@covers("deliver_message")
def test_deliver_message_the_first_sender_that_answers_delivers(app, inbox, texts):
    with app.app_context():
        _queue_admitted("sms", "+14155550101", "Your code is 123456")
        _queue_admitted("sms", "+447700900123", "Your code is 654321")
        _queue_admitted("voice", "+14155550101", "Your code is 1 2 3")
        messaging.queue("email", "someone@example.com", "Hello by email", subject="Hello")
        messaging.queue("fax", "+14155550101", "Nobody sends faxes")
        session().commit()
    counts = messaging.deliver_due(app)
    assert counts == {"sent": 4, "failed": 1}
    assert sms_primary.SENT == [("+14155550101", "Your code is 123456")], "tryfirst, and it answered"
    assert sms_backup.SENT == [("+447700900123", "Your code is 654321")], "asked only when the first said None"
    assert [(m["channel"], m["to"]) for m in texts.messages] == [("voice", "+14155550101")], (
        "both plugins said None: the core's sender (trylast) delivered"
    )
    assert inbox.wait_for("someone@example.com"), "and the core's SMTP sender still delivers email"
    with app.app_context():
        messages = session().scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.status for m in messages] == ["sent", "sent", "sent", "sent", "pending"]
    assert messages[-1].last_error == "RuntimeError: no sender delivers fax messages"


@covers("deliver_message")
def test_deliver_message_a_sender_that_raises_fails_the_attempt_to_be_retried(app, monkeypatch):
    monkeypatch.setattr(sms_backup, "FAILURE", ConnectionError("provider is down"))
    with app.app_context():
        _queue_admitted("sms", "+447700900123", "Your code is 654321")
        session().commit()
    assert messaging.deliver_due(app) == {"sent": 0, "failed": 1}
    with app.app_context():
        message = session().scalars(select(OutboxMessage)).one()
    assert message.status == "pending" and message.attempts == 1
    assert message.last_error == "ConnectionError: provider is down"
    assert message.next_attempt_at > message.created_at


# --- start-up -----------------------------------------------------------------


@pytest.fixture
def bare_app(tmp_path):
    """An app for what needs no database (commands)."""
    application = create_app({"instance_path": str(tmp_path), "secret_key": "test"}, extra_plugins=[hello_cli])
    yield application
    application.extensions["pfcore.engine"].dispose()


@covers("register_commands")
def test_register_commands_adds_a_command_to_the_pfcore_group(bare_app, monkeypatch):
    group = FlaskGroup(create_app=lambda: bare_app, add_default_commands=False)
    monkeypatch.setattr(pfcore.cli, "cli", group)
    real_registry = pfcore.plugins.PluginRegistry
    monkeypatch.setattr(pfcore.plugins, "PluginRegistry", lambda settings: real_registry(settings, [hello_cli]))
    pfcore.cli._add_plugin_commands()
    assert "hello-cli" in group.commands
    result = bare_app.test_cli_runner().invoke(group, ["hello-cli", "--name", "Ada"])
    assert result.exit_code == 0, result.output
    assert result.output == "Hello, Ada, from Hello command.\n"


@covers("run_jobs")
def test_run_jobs_runs_each_plugins_periodic_work_from_pfcore_jobs_run(app):
    hello_cli.RUNS.clear()
    result = app.test_cli_runner().invoke(pfcore.cli.cli, ["jobs", "run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Outbox: sent") and "Hello command: nothing to tidy." in lines
    assert hello_cli.RUNS == [app.config["PFCORE"]["base_url"]]


@covers("metrics_gauges")
@pytest.mark.parametrize("extra_plugins", [[gauges]])
def test_metrics_gauges_are_read_at_each_scrape_and_a_failing_one_is_left_out(
    app, settings, admin_web, extra_plugins, caplog
):
    from .fixture_plugins import bad_gauge

    def scrape() -> str:
        return app.test_client().get("/metrics").get_data(as_text=True)

    gauges.READING["rooms"] = 2
    first = scrape()
    assert "# HELP pfcore_gauges_waiting_rooms Waiting rooms open now." in first
    assert "pfcore_gauges_waiting_rooms 2.0" in first.splitlines()
    assert "pfcore_gauges_practices 1.0" in first.splitlines()  # read in an app context
    assert "pfcore_gauges_broken" not in first and "the sensor is unplugged" in caplog.text
    gauges.READING["rooms"] = 5
    assert "pfcore_gauges_waiting_rooms 5.0" in scrape().splitlines()
    # Deployment-level: a plugin the deployment did not make available contributes nothing.
    unavailable = create_app(dict(settings, plugins_available=["login_email", "mfa_sms"]), extra_plugins=[gauges])
    try:
        assert "pfcore_gauges" not in unavailable.test_client().get("/metrics").get_data(as_text=True)
    finally:
        unavailable.extensions["pfcore.engine"].dispose()
    # A gauge must be named pfcore_<plugin>_...: no plugin can pass for the core or another plugin.
    with pytest.raises(pfcore.plugins.PluginError, match="pfcore_bad_gauge_"):
        create_app(settings, extra_plugins=[bad_gauge])


@covers("register_commands")
def test_register_commands_is_not_asked_of_a_plugin_the_deployment_did_not_make_available():
    group = click.Group("pfcore")
    PluginRegistry({"plugins_available": ["login_pac"]}, [hello_cli]).hook_all.register_commands(cli=group)
    assert "hello-cli" not in group.commands


# --- the rule ------------------------------------------------------------------


@covers("license_purchase")
@pytest.mark.parametrize("extra_plugins", [[card_billing]])
def test_license_purchase_a_billing_plugin_charges_or_refuses_before_the_default_records(app, admin_web, extra_plugins):
    from pfcore_plugins.licensing.models import LicenseOrder, LicenseSlot

    def slot_count():
        with app.app_context():
            return len(session().scalars(select(LicenseSlot)).all())

    card_billing.CHARGED.clear()
    refused = admin_web.post("/licensing/purchase", {"quantity": "2"})
    assert refused.status_code == 422 and "Add a payment card first." in refused.get_data(as_text=True)
    assert slot_count() == 4 and audit_rows(app, "licensing.purchase_refused")
    with app.app_context():
        session().scalars(select(Practice)).one().settings = {"card": "tok_visa"}
        session().commit()
    assert admin_web.post("/licensing/purchase", {"quantity": "2"}).status_code == 302
    assert card_billing.CHARGED == [(1, 2)] and slot_count() == 4 + 2 * 4
    assert one(app, LicenseOrder, LicenseOrder.status == "paid").reference == "charge-1"
    # Without the billing plugin, the licensing plugin's trylast answer records the order unpaid.
    switched(admin_web, "card_billing", False)
    assert admin_web.post("/licensing/purchase", {"quantity": "1"}).status_code == 302
    assert card_billing.CHARGED == [(1, 2)] and slot_count() == 12 + 4
    assert one(app, LicenseOrder, LicenseOrder.status == "recorded").quantity == 1


# --- charts and the audit report ----------------------------------------------


def chart_with_encounter(app, admin_web) -> tuple[int, str]:
    from .support.records import add_patient

    switched(admin_web, "licensing", False)
    patient_id = add_patient(app, first_name="Maria", last_name="Garcia")
    chart = f"/charts/patients/{patient_id}"
    response = admin_web.post(f"{chart}/encounters", {"visit_date": "11/20/2026", "reason": "Cough"}, page=chart)
    assert response.status_code == 302
    return patient_id, response.headers["Location"]


@covers("chart_header_items", "chart_actions")
def test_chart_header_items_and_actions_show_only_while_on(app, admin_web):
    patient_id, _ = chart_with_encounter(app, admin_web)
    chart = f"/charts/patients/{patient_id}"
    assert "Preferred language" not in page(admin_web, chart)
    switched(admin_web, "chart_extras", True)
    html = page(admin_web, chart)
    assert '<dt>Preferred language</dt><dd><span class="language">Spanish</span></dd>' in html
    assert f'<a href="/chart-extras/face-sheet/{patient_id}">Print face sheet</a>' in html
    switched(admin_web, "chart_extras", False)
    assert "Print face sheet" not in page(admin_web, chart)


@covers("chart_note_signed")
def test_chart_note_signed_is_heard_in_the_signing_transaction(app, admin_web):
    switched(admin_web, "chart_extras", True)
    patient_id, encounter = chart_with_encounter(app, admin_web)
    assert admin_web.post(f"{encounter}/sign", {}, page=encounter).status_code == 200
    [heard] = audit_rows(app, "chart_extras.note_signed_heard")
    [signed] = audit_rows(app, "charts.note_signed")
    assert (
        audit.event_dimensions(heard)["patient_id"] == patient_id and heard.seq == signed.seq + 1
    )  # same transaction, right after


@covers("permission_denied_reason")
def test_permission_denied_reason_explains_a_refusal(app, admin_web, inbox):
    from pfcore.security.permissions import why_not

    switched(admin_web, "chart_extras", True)
    invite(admin_web)
    with app.test_request_context():
        from flask import g

        nurse = session().scalars(select(User).where(User.email == NURSE["email"])).one()
        admin = session().scalars(select(User).where(User.email == SIGNUP["email"])).one()
        g.pfcore_user = nurse
        assert why_not(nurse, "chart_extras.remind") == "Reminders are for level 3 and up."
        assert why_not(admin, "chart_extras.remind") is None  # allowed: nothing to explain
    patient_id, encounter = chart_with_encounter(app, admin_web)
    nurse_web = active_nurse_of_invitation(app, inbox)
    refused = nurse_web.post(f"{encounter}/sign", {}, page=encounter)
    assert refused.status_code == 403 and "access level 3 or higher" in refused.get_data(as_text=True)


def active_nurse_of_invitation(app, inbox) -> Browserless:
    invitee, link = open_invitation(app, inbox, NURSE["email"])
    verify_phone(app, invitee, link)
    assert choose_password(invitee, link).status_code == 302
    return invitee


@covers("audit_filters")
def test_audit_filters_add_fields_only_for_enabled_plugins(app, admin_web):
    assert 'name="emergency"' not in page(admin_web, "/reports/audit")
    switched(admin_web, "emergency_access", True)
    assert 'name="emergency"' in page(admin_web, "/reports/audit")
    assert 'name="patient"' in page(admin_web, "/reports/audit")
    switched(admin_web, "patient_portal", False)
    switched(admin_web, "charts", False)
    assert 'name="patient"' not in page(admin_web, "/reports/audit")


def headings(html: str) -> str:
    return html.split("<thead>")[1].split("</thead>")[0]


@covers("audit_dimensions")
def test_a_dimension_column_is_labelled_by_its_plugin_while_it_is_on(app, admin_web):
    """Charts' audit dimension: a Patient column whose cells its describe() names."""
    patient_id, _ = chart_with_encounter(app, admin_web)
    html = page(admin_web, "/reports/audit")
    assert "Garcia, Maria" in html and "Patient" in headings(html)
    csv_text = admin_web.get("/reports/audit.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].split(",")[-1] == "patient_id"
    switched(admin_web, "patient_portal", False)
    switched(admin_web, "charts", False)
    html = page(admin_web, "/reports/audit")
    assert "Garcia, Maria" not in html and "Patient" not in headings(html)


@covers("demo_data")
def test_demo_data_is_asked_for_the_demo_practice_only(app, web):
    from pfcore.demo import ensure_demo
    from pfcore_plugins.charts.models import Patient

    signup(web)
    with app.app_context():
        assert session().scalars(select(Patient)).all() == []  # a real practice gets no demo patients
    with app.test_request_context():
        ensure_demo()
        demo = session().scalars(select(Practice).where(Practice.name == "Demo Family Practice")).one()
        assert {p.practice_id for p in session().scalars(select(Patient))} == {demo.id}


def test_every_hook_has_a_test():
    covered = {hook for test in globals().values() for hook in getattr(test, "covers_hooks", ())}
    assert sorted(hook_names() - covered) == [], "hooks without a test"
    assert sorted(covered - hook_names()) == [], "tests that cover hooks that do not exist"

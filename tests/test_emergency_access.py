"""Emergency access (seed 002, plugin ``emergency_access``): designate, activate
and log out, a second factor at the next sign-in even on a trusted browser,
administrator permissions re-checked at every request, notices, deactivation,
the automatic end, and the emergency flag on every audited action."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
import time_machine
from sqlalchemy import select

from pfcore.db import session
from pfcore.models import LoginSession, OutboxMessage, Practice, User
from pfcore.security.permissions import ADMIN_ACTIONS
from pfcore_plugins.emergency_access.models import Activation, Designee

from .fixture_plugins import admin_extra
from .support.apps import Browserless
from .support.journeys import SIGNUP, latest_texted_code, sign_in_email
from .support.records import add_active_user
from .support.records import audit_rows as rows

NURSE_EMAIL = "nora@sunrise.example.com"
OTHER_EMAIL = "otto@sunrise.example.com"
PASSWORD = "violet kettle marching quietly"
ADMIN_ONLY_PAGES = {
    "users.manage": "/settings/users",
    "practice.manage": "/settings/security",
    "plugins.manage": "/settings/plugins",
    "audit.view": "/reports/audit",
}


@pytest.fixture
def extra_plugins() -> list:
    return [admin_extra]


class Practice_:
    def __init__(self, app, admin: Browserless, nurse_id: int, other_id: int):
        self.app, self.admin, self.nurse_id, self.other_id = app, admin, nurse_id, other_id


@pytest.fixture
def practice(app, admin_web) -> Practice_:
    response = admin_web.post("/settings/plugins/emergency_access", {"enabled": "1"}, page="/settings/plugins")
    assert response.status_code == 200, response.get_data(as_text=True)
    nurse_id = add_active_user(
        app,
        first_name="Nora",
        last_name="Nurse",
        email=NURSE_EMAIL,
        username="nnurse",
        password=PASSWORD,
        access_level=2,
        phone="+14155550123",
    )
    other_id = add_active_user(
        app,
        first_name="Otto",
        last_name="Other",
        email=OTHER_EMAIL,
        username="oother",
        password=PASSWORD,
        access_level=1,
        phone="+14155550124",
    )
    return Practice_(app, admin_web, nurse_id, other_id)


# --- helpers ------------------------------------------------------------------


def browser(app) -> Browserless:
    return Browserless(app.test_client())


def signed_in(app, email: str = NURSE_EMAIL, password: str = PASSWORD) -> Browserless:
    web = browser(app)
    response = sign_in_email(web, email, password)
    assert response.status_code == 302 and "/signin" not in response.headers["Location"], response.headers
    return web


def allow(web: Browserless, user_id: int, on: bool = True):
    response = web.post(
        f"/emergency-access/users/{user_id}/allow", {"allow": "1" if on else "0"}, page="/emergency-access/"
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def activate(web: Browserless, reason: str = "Flood in the server room; Dr. Hopper unreachable"):
    return web.post("/emergency-access/activate", {"reason": reason}, page="/emergency-access/activate")


def text(web: Browserless, path: str) -> str:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return html.unescape(response.get_data(as_text=True))


def activations(app) -> list[Activation]:
    with app.app_context():
        return session().scalars(select(Activation).order_by(Activation.id)).all()


def in_emergency(practice: Practice_) -> Browserless:
    """The nurse, allowed, activated, and signed in again with a second factor."""
    allow(practice.admin, practice.nurse_id)
    nurse = signed_in(practice.app)
    response = activate(nurse)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    return signed_in(practice.app)


def admin_pages_status(web: Browserless) -> dict[str, int]:
    return {action: web.get(path).status_code for action, path in ADMIN_ONLY_PAGES.items()}


# --- designating --------------------------------------------------------------


def test_an_administrator_allows_a_user_on_their_page_and_the_users_list_shows_a_check_mark(app, practice):
    admin = practice.admin
    page = text(admin, f"/settings/users/{practice.nurse_id}")
    login_info = page[page.index(">Login info</h2>") :]
    login_info = login_info[: login_info.index("</section>")]
    assert "Allow emergency access" in login_info, "PF: ticked in the user's Login info"
    response = admin.post(
        f"/emergency-access/users/{practice.nurse_id}/allow",
        {"allow": "1", "return_to": f"/settings/users/{practice.nurse_id}"},
        page=f"/settings/users/{practice.nurse_id}",
    )
    assert response.headers["Location"].endswith(f"/settings/users/{practice.nurse_id}")
    assert re.search(r'name="allow" value="1" checked', text(admin, f"/settings/users/{practice.nurse_id}"))
    users = text(admin, "/settings/users")
    assert "Emergency access" in users
    nurse_row = next(r for r in users.split("<tr") if NURSE_EMAIL in r)
    other_row = next(r for r in users.split("<tr") if OTHER_EMAIL in r)
    assert "✓" in nurse_row and "✓" not in other_row
    allowed = rows(app, "emergency_access.allowed")
    assert [r.object_id for r in allowed] == [str(practice.nurse_id)] and allowed[0].actor_label.startswith("Grace")
    allow(admin, practice.nurse_id, on=False)
    assert [r.object_id for r in rows(app, "emergency_access.disallowed")] == [str(practice.nurse_id)]
    assert "✓" not in next(r for r in text(admin, "/settings/users").split("<tr") if NURSE_EMAIL in r)


def test_an_administrator_can_designate_themselves_and_grant_or_remove_on_the_settings_page(app, practice):
    admin = practice.admin
    with app.app_context():
        grace_id = session().scalars(select(User.id).where(User.email == SIGNUP["email"])).one()
    page = text(admin, "/emergency-access/")
    assert "Members with emergency access" in page and "Nobody may activate emergency access yet." in page
    admin.post("/emergency-access/grant", {"user_id": str(grace_id)}, page="/emergency-access/")
    admin.post("/emergency-access/grant", {"user_id": str(practice.other_id)}, page="/emergency-access/")
    page = text(admin, "/emergency-access/")
    assert "Activate emergency access mode" in page, "a designated administrator may activate it too"
    members = page.split("Members with emergency access")[1].split("</table>")[0]
    assert "Grace Hopper" in members and "Otto Other" in members and "Nora Nurse" not in members
    allow(admin, practice.other_id, on=False)
    with app.app_context():
        assert set(session().scalars(select(Designee.user_id))) == {grace_id}


def test_only_administrators_designate(app, practice):
    allow(practice.admin, practice.nurse_id)
    nurse = signed_in(app)
    response = nurse.post(
        f"/emergency-access/users/{practice.other_id}/allow", {"allow": "1"}, page="/emergency-access/"
    )
    assert response.status_code == 403
    assert (
        nurse.post(
            "/emergency-access/grant", {"user_id": str(practice.other_id)}, page="/emergency-access/"
        ).status_code
        == 403
    )
    page = text(nurse, "/emergency-access/")
    assert "Activate emergency access mode" in page and "Members with emergency access" not in page


# --- activating ---------------------------------------------------------------


def test_a_user_who_is_not_designated_cannot_activate_not_even_by_forging_the_post(app, practice):
    nurse = signed_in(app)
    assert nurse.get("/emergency-access/").status_code == 403
    assert nurse.get("/emergency-access/activate").status_code == 403
    assert "Emergency access" not in text(nurse, "/settings")
    response = nurse.post("/emergency-access/activate", {"reason": "forged"}, page="/dashboard")
    assert response.status_code == 403
    assert activations(app) == []
    assert [r.outcome for r in rows(app, "emergency_access.activation_refused")] == ["failure"]
    assert nurse.get("/dashboard").status_code == 200, "a refused activation does not sign the user out"


def test_activate_and_log_out_then_a_second_factor_even_on_a_trusted_browser(app, practice, inbox):
    allow(practice.admin, practice.nurse_id)
    nurse = browser(app)
    # Sign in once and trust this browser: the next sign-ins skip the second factor.
    nurse.post("/login-email/", {"email": NURSE_EMAIL, "password": PASSWORD})
    nurse.post("/mfa-sms/sms", {"action": "send"})
    nurse.post("/mfa-sms/sms", {"code": latest_texted_code(app), "trust_browser": "1"})
    nurse.post("/signout", page="/dashboard")
    response = nurse.post("/login-email/", {"email": NURSE_EMAIL, "password": PASSWORD})
    assert not response.headers["Location"].endswith("/signin/verify"), "trusted browser: no second factor"
    confirm = text(nurse, "/emergency-access/activate")
    assert "Activate and log out" in confirm and "Reason (optional)" in confirm
    second = signed_in(app)  # another open browser of the same user
    response = activate(nurse)
    assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
    (activation,) = activations(app)
    assert activation.reason.startswith("Flood") and activation.started_at is None
    assert activation.expires_at - activation.activated_at == dt.timedelta(hours=24)
    for web in (nurse, second):
        assert web.get("/dashboard").status_code == 302, "every session of the user ended"
    assert (
        rows(app, "emergency_access.activated")[0].details
        and "Flood" in rows(app, "emergency_access.activated")[0].details
    )
    # The administrators are emailed, in the transaction of the activation.
    with app.app_context():
        mail = (
            session().scalars(select(OutboxMessage).where(OutboxMessage.subject == "Emergency access activated")).all()
        )
    assert [m.recipient for m in mail] == [SIGNUP["email"]] and "Nora Nurse" in mail[0].body
    inbox.wait_for(SIGNUP["email"])
    # The next sign-in asks for the second factor, although the browser is trusted.
    response = nurse.post("/login-email/", {"email": NURSE_EMAIL, "password": PASSWORD})
    assert response.headers["Location"].endswith("/signin/verify")
    assert nurse.get("/dashboard").status_code == 302, "no session before the second factor"
    nurse.post("/mfa-sms/sms", {"action": "send"})
    response = nurse.post("/mfa-sms/sms", {"code": latest_texted_code(app)})
    assert response.status_code == 302
    assert admin_pages_status(nurse) == {action: 200 for action in ADMIN_ACTIONS}
    assert activations(app)[0].started_at is not None
    signins = rows(app, "signin.success")
    assert signins[-1].emergency is True and signins[-1].actor_id == practice.nurse_id


def test_the_reason_is_required_when_the_practice_says_so(app, practice):
    admin = practice.admin
    assert "Require a reason" in text(admin, "/emergency-access/")
    admin.post("/emergency-access/settings", {"reason_required": "1"}, page="/emergency-access/")
    assert rows(app, "emergency_access.settings_changed")[0].details.replace(" ", "") == '{"reason_required":true}'
    allow(admin, practice.nurse_id)
    nurse = signed_in(app)
    assert "Reason (optional)" not in text(nurse, "/emergency-access/activate")
    assert nurse.post("/emergency-access/settings", {}, page="/emergency-access/").status_code == 403
    response = activate(nurse, reason="   ")
    assert response.status_code == 422 and "Enter the reason" in response.get_data(as_text=True)
    assert activations(app) == [] and nurse.get("/dashboard").status_code == 200
    assert activate(nurse, reason="Patient crashing, chart locked").status_code == 302
    assert activations(app)[0].reason == "Patient crashing, chart locked"


# --- emergency mode -----------------------------------------------------------


def test_emergency_mode_gives_the_permissions_of_an_administrator_and_nothing_before(app, practice):
    allow(practice.admin, practice.nurse_id)
    nurse = signed_in(app)
    assert set(admin_pages_status(nurse).values()) == {403}
    assert nurse.get("/admin-extra/").status_code == 403
    activate(nurse)
    nurse = signed_in(app)
    assert admin_pages_status(nurse) == {action: 200 for action in ADMIN_ACTIONS}
    assert nurse.get("/admin-extra/").status_code == 200, "also what a plugin lets administrators do"
    assert "Reports" in text(nurse, "/dashboard")
    other = signed_in(app, OTHER_EMAIL)
    assert set(admin_pages_status(other).values()) == {403}, "only the activating user is elevated"


def test_every_action_in_emergency_mode_carries_the_emergency_flag(app, practice):
    admin = practice.admin
    admin.post("/settings/users/pac", page="/settings/users")
    nurse = in_emergency(practice)
    other = f"/settings/users/{practice.other_id}"
    nurse.post("/settings/users/pac", page="/settings/users")
    nurse.htmx_post(f"{other}/reset-password", page=other)
    nurse.htmx_post(f"{other}/access-level", {"access_level": "3"}, page=other)
    nurse.htmx_post(f"{other}/sign-out-everywhere", page=other)
    nurse.post(f"/emergency-access/users/{practice.other_id}/allow", {"allow": "1"}, page="/emergency-access/")
    admin.post("/settings/users/pac", page="/settings/users")
    nurse.post("/emergency-access/deactivate", page="/emergency-access/")
    for action in (
        "user.password_reset_sent",
        "user.access_level_changed",
        "user.signed_out_everywhere",
        "emergency_access.allowed",
    ):
        events = [r for r in rows(app, action) if r.actor_id == practice.nurse_id]
        assert events and all(r.emergency for r in events), action
    assert [r.emergency for r in rows(app, "practice.pac_rotated")] == [False, True, False], "the admin's are not"
    assert [r.emergency for r in rows(app, "emergency_access.deactivated")] == [True]
    assert [r.emergency for r in rows(app, "signin.success") if r.actor_id == practice.nurse_id] == [False, True]
    # Reports > Audit log: "Emergency access only".
    admin_report = text(admin, "/reports/audit")
    assert "Emergency access only" in admin_report
    only = text(admin, "/reports/audit?emergency=1")
    assert "user.password_reset_sent" in only and "user.access_level_changed" in only
    results = only.split('id="audit-results"')[1]
    assert "emergency_access.activated" not in results and "practice.created" not in results
    assert 'name="emergency" value="1" checked' in only


def test_notices_for_the_user_the_administrators_and_everyone_else(app, practice):
    nurse = in_emergency(practice)
    mine = text(nurse, "/dashboard")
    assert "Emergency access mode is on for your account" in mine
    assert 'href="/emergency-access/">Manage emergency access' in mine
    assert "View audit activity" in mine and "/reports/audit?emergency=1" in mine
    assert "Emergency access mode is on for your account" in text(nurse, "/settings"), "on every page"
    admin_page = text(practice.admin, "/dashboard")
    assert re.search(r"Emergency access is active: Nora Nurse since \d{4}-\d\d-\d\d \d\d:\d\d UTC", admin_page)
    other = signed_in(app, OTHER_EMAIL)
    other_page = text(other, "/dashboard")
    assert "Emergency access mode is active in your practice." in other_page and "Nora Nurse" not in other_page
    # Administrators see it on the settings page too, with the reason in the history.
    page = text(practice.admin, "/emergency-access/")
    assert "Deactivate emergency access of Nora Nurse" in page and "Flood in the server room" in page


# --- deactivating -------------------------------------------------------------


def test_the_user_deactivates_and_signs_in_again_with_normal_permissions(app, practice):
    nurse = in_emergency(practice)
    assert "Deactivate emergency access mode" in text(nurse, "/emergency-access/")
    response = nurse.post("/emergency-access/deactivate", page="/emergency-access/")
    assert response.headers["Location"].endswith("/signin"), "the elevated session ends"
    assert nurse.get("/dashboard").status_code == 302
    (activation,) = activations(app)
    assert activation.ended_how == "user" and activation.ended_by_id == practice.nurse_id
    nurse = signed_in(app)
    assert set(admin_pages_status(nurse).values()) == {403}
    assert "Emergency access mode is on" not in text(nurse, "/dashboard")
    assert "Emergency access is active" not in text(practice.admin, "/dashboard")
    history = text(practice.admin, "/emergency-access/").split("History")[1]
    assert "Nora Nurse" in history and "Deactivated by the user" in history


def test_an_administrator_deactivates_and_the_users_open_tab_gets_no_admin_pages(app, practice):
    nurse = in_emergency(practice)
    (activation,) = activations(app)
    response = practice.admin.post(
        f"/emergency-access/activations/{activation.id}/deactivate", page="/emergency-access/"
    )
    assert response.status_code == 302
    assert set(admin_pages_status(nurse).values()) == {403}, "the elevated session ended"
    assert nurse.get("/dashboard").status_code == 302
    (activation,) = activations(app)
    assert activation.ended_how == "administrator" and activation.ended_by_id != practice.nurse_id
    history = text(practice.admin, "/emergency-access/").split("History")[1]
    assert "Deactivated by an administrator" in history and "Grace Hopper" in history
    nurse = signed_in(app)
    assert set(admin_pages_status(nurse).values()) == {403}
    assert activate(nurse, "again").status_code == 302, "still designated: may activate again"


def test_elevation_is_rechecked_at_every_request(app, practice):
    nurse = in_emergency(practice)
    assert nurse.get("/settings/users").status_code == 200
    with app.app_context():
        row = session().scalars(select(Activation)).one()
        row.ended_at = row.activated_at  # ended behind the session's back (another server, a script)
        session().commit()
    assert set(admin_pages_status(nurse).values()) == {403}
    assert nurse.get("/dashboard").status_code == 200


def test_removing_the_permission_from_an_active_user_deactivates_them(app, practice):
    nurse = in_emergency(practice)
    allow(practice.admin, practice.nurse_id, on=False)
    assert set(admin_pages_status(nurse).values()) == {403}
    assert nurse.get("/dashboard").status_code == 302
    (activation,) = activations(app)
    assert activation.ended_how == "permission_removed"
    nurse = signed_in(app)
    assert nurse.post("/emergency-access/activate", {"reason": "forged"}, page="/dashboard").status_code == 403
    assert len(activations(app)) == 1


def test_a_deactivated_user_cannot_activate_and_deactivating_them_ends_emergency_mode(app, practice):
    nurse = in_emergency(practice)
    other = f"/settings/users/{practice.nurse_id}"
    practice.admin.htmx_post(f"{other}/deactivate", page=other)
    (activation,) = activations(app)
    assert activation.ended_how == "user_deactivated"
    response = nurse.post("/emergency-access/activate", {"reason": "x"}, page="/dashboard")
    assert response.status_code in (302, 400, 401), "no session any more"
    assert len(activations(app)) == 1
    with app.app_context():
        assert session().get(User, practice.nurse_id).status == "inactive"
    # Reactivated, still designated: the old activation stays ended.
    practice.admin.htmx_post(f"{other}/reactivate", page=other)
    nurse = signed_in(app)
    assert set(admin_pages_status(nurse).values()) == {403}


def test_the_plugin_switched_off_takes_elevation_away(app, practice):
    nurse = in_emergency(practice)
    response = practice.admin.post("/settings/plugins/emergency_access", {"enabled": "0"}, page="/settings/plugins")
    assert response.status_code == 200
    assert set(admin_pages_status(nurse).values()) == {403}


# --- the automatic end ------------------------------------------------------------


def _long_idle_timeout(app):
    with app.app_context():
        practice = session().scalars(select(Practice)).one()
        practice.settings = {**(practice.settings or {}), "idle_timeout_minutes": 240}
        session().commit()


def test_emergency_mode_ends_by_itself_at_the_next_request_after_the_configured_hours(app, practice):
    app.extensions["pfcore.plugins"].setting_values["emergency_access"]["hours"] = 2
    _long_idle_timeout(app)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=True) as clock:
        nurse = in_emergency(practice)
        (activation,) = activations(app)
        assert activation.expires_at - activation.activated_at == dt.timedelta(hours=2)
        clock.shift(dt.timedelta(minutes=115))
        assert nurse.get("/settings/users").status_code == 200
        clock.shift(dt.timedelta(minutes=10))
        assert nurse.get("/settings/users").status_code == 403, "ended at this request"
        assert nurse.get("/dashboard").status_code == 302, "and the elevated session with it"
        (activation,) = activations(app)
        assert activation.ended_how == "expired" and activation.ended_by_id is None
        assert [r.emergency for r in rows(app, "emergency_access.deactivated")] == [False]
        nurse = signed_in(app)
        assert set(admin_pages_status(nurse).values()) == {403}
        assert "Ended automatically" in text(practice.admin, "/emergency-access/")


def test_an_activation_not_used_expires_too_and_pfcore_jobs_run_records_it(app, practice):
    from pfcore.cli import cli

    allow(practice.admin, practice.nurse_id)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=True) as clock:
        activate(signed_in(app))
        clock.shift(dt.timedelta(hours=24, minutes=1))
        result = app.test_cli_runner().invoke(cli, ["jobs", "run"])
        assert result.exit_code == 0, result.output
        assert "Emergency access: ended 1 expired activation." in result.output.splitlines()
        assert activations(app)[0].ended_how == "expired"
        # No longer on: the next sign-in is an ordinary one.
        nurse = signed_in(app)
        assert set(admin_pages_status(nurse).values()) == {403}
        with app.app_context():
            assert not any((s.flags or {}).get("emergency_access") for s in session().scalars(select(LoginSession)))


def test_another_practices_users_and_activations_answer_404(app, practice):
    from .support.journeys import signup

    other = browser(app)
    signup(other, practice_name="Other clinic", email="owner@other.example.com")
    with app.app_context():
        foreign = session().scalars(select(User).where(User.email == "owner@other.example.com")).one()
        session().add(
            Activation(
                practice_id=foreign.practice_id,
                user_id=foreign.id,
                reason="",
                ended_how="",
                activated_at=foreign.created_at,
                expires_at=foreign.created_at + dt.timedelta(days=999),
            )
        )
        session().commit()
        activation_id = session().scalars(select(Activation.id)).one()
    admin = practice.admin
    assert (
        admin.post(f"/emergency-access/users/{foreign.id}/allow", {"allow": "1"}, page="/emergency-access/").status_code
        == 404
    )
    assert (
        admin.post("/emergency-access/grant", {"user_id": str(foreign.id)}, page="/emergency-access/").status_code
        == 404
    )
    assert (
        admin.post(f"/emergency-access/activations/{activation_id}/deactivate", page="/emergency-access/").status_code
        == 404
    )
    with app.app_context():
        assert session().scalars(select(Designee)).all() == []
        assert session().get(Activation, activation_id).ended_at is None


# --- monitoring -----------------------------------------------------------------


def test_metrics_count_the_activations_that_are_on(app, practice):
    """/metrics shows pfcore_emergency_access_active (the plugin's metrics_gauges), read at each scrape."""

    def active() -> float:
        page = browser(app).get("/metrics").get_data(as_text=True)
        return float(re.search(r"^pfcore_emergency_access_active (\S+)$", page, re.MULTILINE).group(1))

    assert active() == 0
    allow(practice.admin, practice.nurse_id)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=True) as clock:
        activate(signed_in(app))
        assert active() == 1  # on from the activation, before the elevated sign-in
        nurse = signed_in(app)
        assert nurse.post("/emergency-access/deactivate", page="/emergency-access/").status_code == 302
        assert active() == 0
        activate(signed_in(app))
        assert active() == 1
        clock.shift(dt.timedelta(hours=24, minutes=1))
        assert active() == 0, "expired counts as off, even before a job records the end"


# --- what emergency mode may not change (PRODUCT.md, Limits against abuse) -------------------


def _grace_id(app) -> int:
    with app.app_context():
        return session().scalars(select(User.id).where(User.email == SIGNUP["email"])).one()


def test_in_emergency_mode_the_user_cannot_make_their_elevation_permanent(app, practice):
    """The attack of review finding 1: grant yourself administrator and level 4, strip and
    deactivate the real administrator, end the mode, keep it all. Every step is refused."""
    grace_id = _grace_id(app)
    nurse = in_emergency(practice)
    own, grace = f"/settings/users/{practice.nurse_id}", f"/settings/users/{grace_id}"
    attempts = [
        (f"{own}/admin", {"admin": "1"}, own),
        (f"{own}/access-level", {"access_level": "4"}, own),
        (f"{grace}/admin", {"admin": "0"}, grace),
        (f"{grace}/access-level", {"access_level": "1"}, grace),
        (f"{grace}/deactivate", {}, grace),
    ]
    for path, data, page in attempts:
        response = nurse.htmx_post(path, data, page=page)
        assert response.status_code == 403, (path, response.status_code)
        assert "not in emergency access mode" in html.unescape(response.get_data(as_text=True)), path
    for user_id in (practice.nurse_id, grace_id):
        response = nurse.post(
            f"/emergency-access/users/{user_id}/allow",
            {"allow": "0" if user_id == practice.nurse_id else "1"},
            page="/emergency-access/",
        )
        assert response.status_code == 403, user_id
        assert "not in emergency access mode" in html.unescape(response.get_data(as_text=True))
    assert (
        nurse.post("/emergency-access/grant", {"user_id": str(grace_id)}, page="/emergency-access/").status_code == 403
    )
    refusals = rows(app, "user.change_refused")
    assert len(refusals) == len(attempts) + 3
    assert all(r.outcome == "failure" and r.emergency and r.actor_id == practice.nurse_id for r in refusals)
    assert nurse.post("/emergency-access/deactivate", page="/emergency-access/").status_code == 302
    with app.app_context():
        nora, grace_row = session().get(User, practice.nurse_id), session().get(User, grace_id)
        assert (nora.is_admin, nora.access_level) == (False, 2)
        assert (grace_row.is_admin, grace_row.access_level, grace_row.status) == (True, 4, "active")
        assert session().scalars(select(Designee.user_id)).all() == [practice.nurse_id]
    assert set(admin_pages_status(signed_in(app)).values()) == {403}


def test_in_emergency_mode_other_users_can_still_be_changed(app, practice):
    nurse = in_emergency(practice)
    other = f"/settings/users/{practice.other_id}"
    assert nurse.htmx_post(f"{other}/access-level", {"access_level": "3"}, page=other).status_code == 200
    assert nurse.htmx_post(f"{other}/deactivate", page=other).status_code == 200
    with app.app_context():
        otto = session().get(User, practice.other_id)
        assert (otto.access_level, otto.status) == (3, "inactive")
    assert rows(app, "user.change_refused") == []


def _end_by(how: str, practice: Practice_, clock):
    if how == "user":
        practice_nurse = signed_in(practice.app)
        assert practice_nurse.post("/emergency-access/deactivate", page="/emergency-access/").status_code == 302
    elif how == "administrator":
        (activation,) = activations(practice.app)
        practice.admin.post(f"/emergency-access/activations/{activation.id}/deactivate", page="/emergency-access/")
    else:
        from pfcore.cli import cli

        clock.shift(dt.timedelta(hours=24, minutes=1))
        result = practice.app.test_cli_runner().invoke(cli, ["jobs", "run"])
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize("how", ["user", "administrator", "expired"])
def test_when_emergency_mode_ends_the_administrators_get_the_list_of_what_was_done(app, practice, inbox, how):
    grace_id = _grace_id(app)
    _long_idle_timeout(app)
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=True) as clock:
        nurse = in_emergency(practice)
        other = f"/settings/users/{practice.other_id}"
        nurse.htmx_post(f"{other}/access-level", {"access_level": "3"}, page=other)
        nurse.htmx_post(f"{other}/reset-password", page=other)
        nurse.htmx_post(f"/settings/users/{grace_id}/admin", {"admin": "0"}, page=f"/settings/users/{grace_id}")
        with app.app_context():
            assert (
                session().scalars(select(OutboxMessage).where(OutboxMessage.subject == "Emergency access ended")).all()
                == []
            )
        _end_by(how, practice, clock)
    with app.app_context():
        (mail,) = (
            session().scalars(select(OutboxMessage).where(OutboxMessage.subject == "Emergency access ended")).all()
        )
    assert mail.recipient == SIGNUP["email"]
    body = mail.body
    assert "Nora Nurse" in body and HOW_ENDED[how] in body
    for action in ("user.access_level_changed", "user.password_reset_sent", "user.change_refused"):
        assert action in body, action
    assert "Otto Other" in body and "refused" in body
    link = re.search(r"http://pfcore\.test(/reports/audit\?\S+)", body).group(1)
    assert "emergency=1" in link and f"user={practice.nurse_id}" in link
    report = text(practice.admin, link)
    results = report.split('id="audit-results"')[1]
    assert "user.access_level_changed" in results and "user.password_reset_sent" in results
    assert "practice.created" not in results, "the link lands on the emergency events only"
    inbox.wait_for(SIGNUP["email"])


HOW_ENDED = {
    "user": "Nora Nurse deactivated it",
    "administrator": "Grace Hopper deactivated it",
    "expired": "ended automatically",
}

"""Patient portal registration (patient side, seed 004): the emailed link,
identity by date of birth + PIN or by phone + date of birth + a code, five
wrong answers lock the invitation, then "Create account" or "Link to existing
account". Over HTTP, on SQLite and PostgreSQL, with the real SMTP server and
SMS webhook receiver."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from pfcore_plugins.patient_portal.models import Invitation, PhoneCode, PortalAccount, PortalLink

from .support.apps import Browserless
from .support.journeys import last_link
from .support.portal import (
    BIRTH_DATE,
    EXPIRED,
    GENERIC_FAILURE,
    LOCKED,
    PASSWORD,
    PATIENT_PHONE,
    US_BIRTH_DATE,
    change_invitation,
    code_from,
    create_account,
    first_practice_id,
    invitation_row,
    invite,
    link_ids,
    portal_sign_in,
    register,
    rows,
    second_practice,
    verify_with_pin,
)
from .support.records import add_patient, audit_rows


@pytest.fixture
def patient(admin_web, app) -> int:
    return add_patient(
        app, first_name="Pat", last_name="Jones", date_of_birth=BIRTH_DATE, email="pat@example.com", phone=PATIENT_PHONE
    )


@pytest.fixture
def patient_web(app) -> Browserless:
    """The patient's own browser (no staff session)."""
    return Browserless(app.test_client())


def wrong_pin(pin: str) -> str:
    return f"{(int(pin) + 1) % 1_000_000:06d}"


def body(response) -> str:
    return response.get_data(as_text=True)


# --- date of birth + PIN ---------------------------------------------------------------


@pytest.mark.parametrize("birth_date", [US_BIRTH_DATE, BIRTH_DATE])
def test_patient_registers_with_birth_date_and_pin_and_lands_on_the_portal(
    app, patient, patient_web, inbox, birth_date
):
    token, pin = invite(app, patient)
    assert last_link(inbox, "pat@example.com", "/portal/register/") == f"/portal/register/{token}"
    page = patient_web.get(f"/portal/register/{token}")
    assert page.status_code == 200 and "Verify your identity" in body(page) and "Sunrise Family Clinic" in body(page)

    response = verify_with_pin(patient_web, token, pin, birth_date)
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/portal/register/{token}/account")
    create = patient_web.get(f"/portal/register/{token}/create")
    assert 'value="pat@example.com"' in body(create)  # the email is the default username
    response = create_account(patient_web, token, "Pat@Example.com")
    assert response.status_code == 302 and response.headers["Location"].endswith("/portal/")

    home = patient_web.get("/portal/")
    assert home.status_code == 200
    assert "Sunrise Family Clinic" in body(home) and "Pat Jones" in body(home)
    invitation = invitation_row(app, token)
    assert invitation.status == "registered" and invitation.ended_at is not None
    account = rows(app, PortalAccount)[0]
    assert account.username == "pat@example.com" and account.password_hash.startswith("$argon2id$")
    link = rows(app, PortalLink)[0]
    assert (link.account_id, link.patient_id, link.practice_id) == (account.id, patient, first_practice_id(app))
    verified = audit_rows(app, "patient_portal.identity_verified")[-1]
    assert (verified.patient_id, verified.practice_id, verified.outcome) == (patient, first_practice_id(app), "success")
    assert audit_rows(app, "patient_portal.registered")[-1].patient_id == patient


def test_wrong_pin_counts_a_try_and_is_audited(app, patient, patient_web):
    token, pin = invite(app, patient)
    response = verify_with_pin(patient_web, token, wrong_pin(pin))
    assert response.status_code == 422
    assert "The date of birth or the PIN is not right. 4 tries left." in body(response)
    assert invitation_row(app, token).failed_attempts == 1
    failed = audit_rows(app, "patient_portal.identity_failed")[-1]
    assert (failed.outcome, failed.patient_id, failed.practice_id) == ("failure", patient, first_practice_id(app))
    assert '"pin_ok":false' in failed.details and '"date_of_birth_ok":true' in failed.details
    assert patient_web.get(f"/portal/register/{token}/account").status_code == 302  # not verified


def test_wrong_birth_date_with_the_right_pin_counts_a_try(app, patient, patient_web):
    token, pin = invite(app, patient)
    response = verify_with_pin(patient_web, token, pin, "04/13/1980")
    assert response.status_code == 422 and "4 tries left" in body(response)
    assert invitation_row(app, token).failed_attempts == 1
    assert '"date_of_birth_ok":false' in audit_rows(app, "patient_portal.identity_failed")[-1].details


@pytest.mark.parametrize("typed", ["12/31/80", "1980/04/12", "April 12 1980", "13/45/1980", "x" * 20])
def test_badly_formatted_birth_date_is_a_message_not_a_try(app, patient, patient_web, typed):
    token, pin = invite(app, patient)
    response = verify_with_pin(patient_web, token, pin, typed)
    assert response.status_code == 422
    assert "Enter your date of birth as MM/DD/YYYY" in body(response)
    assert invitation_row(app, token).failed_attempts == 0
    assert audit_rows(app, "patient_portal.identity_failed") == []


def test_a_pin_that_is_not_six_digits_is_a_message_not_a_try(app, patient, patient_web):
    token, _pin = invite(app, patient)
    response = verify_with_pin(patient_web, token, "12345")
    assert response.status_code == 422 and "The PIN has 6 digits." in body(response)
    assert invitation_row(app, token).failed_attempts == 0


def test_five_wrong_answers_lock_the_invitation_until_staff_resend(app, patient, patient_web):
    token, pin = invite(app, patient)
    for _attempt in range(4):
        assert verify_with_pin(patient_web, token, wrong_pin(pin)).status_code == 422
    fifth = verify_with_pin(patient_web, token, pin, "01/01/2000")
    assert fifth.status_code == 403 and LOCKED in body(fifth)
    assert invitation_row(app, token).failed_attempts == 5
    assert len(audit_rows(app, "patient_portal.invitation_locked")) == 1
    # Locked: even the right answers are refused, and the page says why.
    right = verify_with_pin(patient_web, token, pin)
    assert right.status_code == 403 and LOCKED in body(right)
    assert LOCKED in body(patient_web.get(f"/portal/register/{token}"))
    assert invitation_row(app, token).verified_key_hash is None

    new_token = change_invitation(app, first_practice_id(app), patient, "resend")
    assert EXPIRED in body(patient_web.get(f"/portal/register/{token}"))  # the old link stopped working
    assert invitation_row(app, new_token).failed_attempts == 0
    response = verify_with_pin(patient_web, new_token, pin)  # resend keeps the PIN
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")


def test_a_used_link_shows_the_expired_message(app, patient, patient_web):
    token, pin = invite(app, patient)
    register(patient_web, token, pin)
    stranger = Browserless(app.test_client())
    for response in (
        stranger.get(f"/portal/register/{token}"),
        verify_with_pin(stranger, token, pin),
        patient_web.get(f"/portal/register/{token}/create"),
    ):
        assert response.status_code == 410
        assert EXPIRED in body(response)
    assert len(rows(app, PortalLink)) == 1


def test_a_cancelled_link_shows_the_expired_message(app, patient, patient_web):
    token, pin = invite(app, patient)
    change_invitation(app, first_practice_id(app), patient, "cancel")
    response = verify_with_pin(patient_web, token, pin)
    assert response.status_code == 410 and EXPIRED in body(response)
    assert invitation_row(app, token).failed_attempts == 0


def test_cancel_then_invite_again_makes_the_old_link_expire(app, patient, patient_web):
    old_token, old_pin = invite(app, patient)
    new_token, new_pin = invite(app, patient)
    assert patient_web.get(f"/portal/register/{old_token}").status_code == 410
    assert verify_with_pin(patient_web, new_token, new_pin).status_code == 302


def test_an_unknown_link_says_expired_with_404(app, patient_web):
    for token in ("nope", "x" * 300):
        response = patient_web.get(f"/portal/register/{token}")
        assert response.status_code == 404 and EXPIRED in body(response)


def test_a_link_past_its_days_shows_the_expired_message(app, patient, patient_web):
    token, pin = invite(app, patient)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=31)):
        response = verify_with_pin(patient_web, token, pin)
    assert response.status_code == 410 and EXPIRED in body(response)


# --- phone + date of birth + code -------------------------------------------------------


def send_code(web, token, phone="(415) 555-0123", birth_date=US_BIRTH_DATE, channel="sms"):
    return web.post(
        f"/portal/register/{token}/phone", {"phone": phone, "date_of_birth": birth_date, "channel": channel}
    )


def test_patient_registers_with_a_texted_code(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    response = send_code(patient_web, token)
    assert response.status_code == 302 and "/code" in response.headers["Location"]
    message = texts.messages[-1]
    assert message["to"] == PATIENT_PHONE and message["channel"] == "sms"
    code = code_from(message)
    stored = rows(app, PhoneCode)[0]
    assert code not in stored.code_hash and stored.used_at is None  # kept hashed only
    response = patient_web.post(f"/portal/register/{token}/code", {"code": code})
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    assert '"method":"phone"' in audit_rows(app, "patient_portal.identity_verified")[-1].details
    assert rows(app, PhoneCode)[0].used_at is not None
    response = create_account(patient_web, token, "pat.jones")
    assert response.status_code == 302
    assert "Pat Jones" in body(patient_web.get("/portal/"))


def test_the_code_can_be_spoken_by_a_phone_call(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    assert send_code(patient_web, token, channel="voice").status_code == 302
    message = texts.messages[-1]
    assert message["channel"] == "voice" and message["to"] == PATIENT_PHONE
    code = "".join(ch for ch in message["body"].split(" is ", 1)[1].split(".")[0] if ch.isdigit())
    assert patient_web.post(f"/portal/register/{token}/code", {"code": code}).status_code == 302


def test_a_phone_that_is_not_the_invitations_counts_a_try_and_sends_nothing(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    response = send_code(patient_web, token, phone="415-555-0199")
    assert response.status_code == 422 and "does not match your invitation" in body(response)
    assert texts.messages == []
    assert invitation_row(app, token).failed_attempts == 1
    assert '"phone_ok":false' in audit_rows(app, "patient_portal.identity_failed")[-1].details
    response = send_code(patient_web, token, birth_date="05/12/1980")  # right phone, wrong birth date
    assert response.status_code == 422 and texts.messages == []
    assert invitation_row(app, token).failed_attempts == 2


def test_a_badly_typed_phone_or_date_is_a_message_not_a_try(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    assert send_code(patient_web, token, phone="12").status_code == 422
    assert send_code(patient_web, token, birth_date="1980.04.12").status_code == 422
    assert invitation_row(app, token).failed_attempts == 0 and texts.messages == []


def test_a_wrong_code_counts_a_try_and_a_code_works_once(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    send_code(patient_web, token)
    code = code_from(texts.messages[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    response = patient_web.post(f"/portal/register/{token}/code", {"code": wrong})
    assert response.status_code == 422 and "That code is not right. 4 tries left." in body(response)
    assert invitation_row(app, token).failed_attempts == 1
    assert patient_web.post(f"/portal/register/{token}/code", {"code": code}).status_code == 302
    # The same code again (another browser with the link) finds no open code.
    other = Browserless(app.test_client())
    assert other.post(f"/portal/register/{token}/code", {"code": code}).status_code == 302
    assert other.get(f"/portal/register/{token}/account").headers["Location"].endswith(f"/portal/register/{token}")


def test_a_code_expires_after_ten_minutes(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    send_code(patient_web, token)
    code = code_from(texts.messages[-1])
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10, seconds=5)):
        response = patient_web.post(f"/portal/register/{token}/code", {"code": code})
    assert response.status_code == 422 and "expired" in body(response)
    assert patient_web.get(f"/portal/register/{token}/account").status_code == 302


def test_five_wrong_codes_lock_the_invitation(app, patient, patient_web, texts):
    token, _pin = invite(app, patient)
    send_code(patient_web, token)
    code = code_from(texts.messages[-1])
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert patient_web.post(f"/portal/register/{token}/code", {"code": wrong}).status_code == 422
    assert LOCKED in body(patient_web.post(f"/portal/register/{token}/code", {"code": wrong}))
    assert patient_web.post(f"/portal/register/{token}/code", {"code": code}).status_code == 403


# --- the identity step belongs to this browser ---------------------------------------------


def test_the_verified_step_is_bound_to_the_browser_and_lasts_thirty_minutes(app, patient, patient_web):
    token, pin = invite(app, patient)
    verify_with_pin(patient_web, token, pin)
    assert patient_web.get(f"/portal/register/{token}/account").status_code == 200
    other = Browserless(app.test_client())  # has the link, not the proof
    response = other.get(f"/portal/register/{token}/create")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/portal/register/{token}")
    assert create_account(other, token, "thief").status_code == 302
    assert rows(app, PortalAccount) == []
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)):
        assert patient_web.get(f"/portal/register/{token}/create").status_code == 302


# --- the account -----------------------------------------------------------------------------


def verified(app, patient_web, patient) -> str:
    token, pin = invite(app, patient)
    assert verify_with_pin(patient_web, token, pin).status_code == 302
    return token


def test_a_password_of_seven_characters_is_refused_and_eight_are_enough(app, patient, patient_web):
    token = verified(app, patient_web, patient)
    response = create_account(patient_web, token, "pat", password="kx7!qpz")
    assert response.status_code == 422 and "Use at least 8 characters." in body(response)
    assert rows(app, PortalAccount) == []
    assert create_account(patient_web, token, "pat", password="kx7!qpzw").status_code == 302


def test_common_and_personal_passwords_are_refused(app, patient, patient_web):
    token = verified(app, patient_web, patient)
    response = create_account(patient_web, token, "pat", password="password123")
    assert response.status_code == 422 and "common or breached" in body(response)
    response = create_account(patient_web, token, "pat", password="jones family doctor")
    assert response.status_code == 422 and "Do not use your name" in body(response)
    response = create_account(patient_web, token, "pat", password="a" * 129)
    assert response.status_code == 422 and "at most 128" in body(response)
    response = create_account(patient_web, token, "pat", password=PASSWORD, confirm=PASSWORD + "x")
    assert response.status_code == 422 and "not the same" in body(response)
    assert rows(app, PortalAccount) == []


def test_usernames_are_unique_whatever_their_case(app, patient, patient_web):
    token, pin = invite(app, patient)
    register(patient_web, token, pin, username="pat.jones")
    sibling = add_patient(app, first_name="Sam", last_name="Jones", date_of_birth=BIRTH_DATE, email="sam@example.com")
    other = Browserless(app.test_client())
    token = verified(app, other, sibling)
    response = create_account(other, token, "PAT.Jones", email="sam@example.com")
    assert response.status_code == 422 and "That username is taken" in body(response)


def test_link_a_second_practice_to_an_existing_account(app, patient, patient_web):
    token, pin = invite(app, patient)
    register(patient_web, token, pin, username="pat.jones")
    harbor = second_practice(app)
    other_patient = add_patient(
        app, first_name="Pat", last_name="Jones", date_of_birth=BIRTH_DATE, practice_id=harbor, phone=PATIENT_PHONE
    )
    token2, pin2 = invite(app, other_patient, practice_id=harbor)
    browser = Browserless(app.test_client())
    assert verify_with_pin(browser, token2, pin2).status_code == 302
    wrong = browser.post(f"/portal/register/{token2}/link", {"username": "pat.jones", "password": "not it at all"})
    assert wrong.status_code == 422 and GENERIC_FAILURE in body(wrong)
    response = browser.post(f"/portal/register/{token2}/link", {"username": "Pat.Jones", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"].endswith("/portal/")
    home = body(browser.get("/portal/"))
    assert "Sunrise Family Clinic" in home and "Harbor Pediatrics" in home
    assert len(rows(app, PortalAccount)) == 1 and len(link_ids(app, "pat.jones")) == 2
    linked = audit_rows(app, "patient_portal.registered")[-1]
    assert (linked.practice_id, linked.patient_id) == (harbor, other_patient) and '"account":"linked"' in linked.details
    assert invitation_row(app, token2).status == "registered"


def test_a_revoked_patient_invited_again_registers_again(app, patient, patient_web):
    token, pin = invite(app, patient)
    register(patient_web, token, pin, username="pat.jones")
    change_invitation(app, first_practice_id(app), patient, "revoke")
    token2, pin2 = invite(app, patient)
    browser = Browserless(app.test_client())
    assert verify_with_pin(browser, token2, pin2).status_code == 302
    assert (
        browser.post(f"/portal/register/{token2}/link", {"username": "pat.jones", "password": PASSWORD}).status_code
        == 302
    )
    link = rows(app, PortalLink)[0]
    assert link.revoked_at is None and len(rows(app, PortalLink)) == 1
    assert "Pat Jones" in body(browser.get("/portal/"))


def test_registration_signs_in_with_a_portal_session_only(app, patient, patient_web):
    token, pin = invite(app, patient)
    register(patient_web, token, pin)
    assert patient_web.client.get_cookie("pfcore_portal") is not None
    assert patient_web.client.get_cookie("pfcore_session") is None
    assert patient_web.get("/dashboard").status_code == 302  # no staff session
    assert portal_sign_in(Browserless(app.test_client()), "pat@example.com").status_code == 302
    assert rows(app, Invitation)[0].verified_key_hash is None

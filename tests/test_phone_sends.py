"""Caps on texts and calls (review #23, finding 4: SMS/voice pumping).

A free self-service practice could make pfcore text or call any number as
often as the per-address rate limit allowed: one account queued 28 texts.
Now every code by text or call passes ``security.phone_sends.admit``: caps
per user, per practice and per destination number, per hour and per day,
counted in the outbox (so every app server sees them); numbers only in the
deployment's countries and only mobiles and landlines. Over HTTP, on SQLite
and PostgreSQL; the race for the last slot on PostgreSQL with separate
connections.
"""

from __future__ import annotations

import datetime as dt
import re
import threading

import phonenumbers
import pytest
import time_machine
from sqlalchemy import func, select

from pfcore import create_app
from pfcore.config import ConfigError
from pfcore.db import session
from pfcore.models import OutboxMessage, User
from pfcore.security import phone_sends
from pfcore.security.phones import reachability_problem

from .support.apps import Browserless
from .support.journeys import SIGNUP, sign_in_email, signup
from .support.records import add_active_user, audit_rows

USER_HOUR = (
    "You have asked for many codes by text or call in the last hour. Wait an hour, or use another way to verify."
)
USER_DAY = "You have asked for many codes by text or call today. Try again tomorrow"
NUMBER_HOUR = "That phone number has received many codes in the last hour. Wait an hour"
NUMBER_DAY = "That phone number has received many codes today. Try again tomorrow"
PRACTICE_HOUR = "Your practice has sent as many codes by text or call as it may in the last hour."
PRACTICE_DAY = "Your practice has sent as many codes by text or call as it may today."
VICTIM = "+14155550177"


@pytest.fixture
def settings(settings):
    # The per-address limits are what a pumper gets around with many addresses:
    # lifted here, so that only the caps of this finding stand in the way.
    return dict(
        settings,
        ratelimit_codes="100000 per minute",
        ratelimit_signin="100000 per minute",
        pending_sign_in_minutes=60 * 24 * 3,
    )


def _clock():
    """Time stands still (from a moment after the fixtures' real time) until the test moves it."""
    return time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1), tick=False)


def _enrolling(app, email: str = SIGNUP["email"], password: str = SIGNUP["password"]) -> Browserless:
    """A browser stopped at the phone enrolment of a sign-in (a new practice's administrator)."""
    web = Browserless(app.test_client())
    response = sign_in_email(web, email, password, second_factor=False)
    assert response.headers["Location"].endswith("/signin/enroll")
    return web


def _enrol(web: Browserless, phone: str, channel: str = "sms"):
    return web.post("/mfa-sms/enrol", {"phone": phone, "channel": channel})


def _phone_sends(app, **where) -> int:
    statement = select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel.in_(("sms", "voice")))
    for name, value in where.items():
        statement = statement.where(getattr(OutboxMessage, name) == value)
    with app.app_context():
        return session().scalar(statement)


def _refusals(app) -> list[str]:
    """The reasons of the audited refusals, oldest first."""
    return [
        re.search(r'"reason":\s*"([a-z_]+)"', event.details).group(1) for event in audit_rows(app, "phone.send_refused")
    ]


def _refused_metric(app, reason: str) -> float:
    page = app.test_client().get("/metrics").get_data(as_text=True)
    match = re.search(r'^pfcore_phone_sends_refused_total\{reason="' + reason + r'"\} ([0-9.]+)$', page, re.M)
    return float(match.group(1)) if match else 0.0


def _numbers(count: int) -> list[str]:
    return [f"+1415555{100 + n:04d}" for n in range(count)]


def _refused_with(response, message: str) -> bool:
    return response.status_code == 422 and message in response.get_data(as_text=True)


# --- the finding: one account, many numbers ------------------------------------------------------


def test_one_account_can_no_longer_make_pfcore_text_28_numbers(app, admin_web, texts):
    """The review's reproduction: the enrolment, asked again and again with new numbers."""
    admin_web.post("/signout", page="/dashboard")
    web = _enrolling(app)
    with _clock():
        answers = [_enrol(web, phone) for phone in _numbers(28)]
    assert [a.status_code for a in answers] == [302] * 10 + [422] * 18
    assert all(_refused_with(a, USER_HOUR) for a in answers[10:])
    assert _phone_sends(app) == 10, "10 texts an hour for one user, not 28"
    assert _refusals(app) == ["user_hour"] * 18
    event = audit_rows(app, "phone.send_refused")[0]
    assert event.outcome == "failure" and event.object_type == "user" and "***0110" in event.details
    assert _refused_metric(app, "user_hour") == 18


def test_the_per_user_caps_hold_for_an_hour_and_for_a_day(app, admin_web, texts):
    admin_web.post("/signout", page="/dashboard")
    web = _enrolling(app)
    numbers = iter(_numbers(40))
    with _clock() as traveller:
        for hour in range(3):
            answers = [_enrol(web, next(numbers)) for _ in range(11)]
            assert [a.status_code for a in answers] == [302] * 10 + [422], hour
            assert _refused_with(answers[-1], USER_HOUR if hour < 2 else USER_DAY), hour
            traveller.shift(dt.timedelta(minutes=61))
        assert _refused_with(_enrol(web, next(numbers)), USER_DAY), "30 a day, even in a new hour"
        assert _phone_sends(app) == 30
        traveller.shift(dt.timedelta(hours=22))  # 24 hours after the first ones
        assert _enrol(web, next(numbers)).status_code == 302
    assert _refusals(app) == ["user_hour"] * 2 + ["user_day"] * 2
    assert _refused_metric(app, "user_day") == 2


def test_the_per_number_caps_count_every_practice_and_hold_for_an_hour_and_a_day(app, admin_web, texts):
    """Whoever asks, one number gets 5 codes an hour and 15 a day: it is the number's owner to protect."""
    admin_web.post("/signout", page="/dashboard")
    web = _enrolling(app)
    other = Browserless(app.test_client())
    signup(other, practice_name="Other Clinic", email="owner@other.example.com")
    other.post("/signout", page="/dashboard")
    other = _enrolling(app, "owner@other.example.com")
    with _clock() as traveller:
        assert [_enrol(web, VICTIM).status_code for _ in range(5)] == [302] * 5
        assert _refused_with(_enrol(other, VICTIM), NUMBER_HOUR), "another practice cannot add a sixth"
        assert _enrol(other, "+14155550178").status_code == 302, "the cap is the number's, not the practice's"
        for _ in range(2):
            traveller.shift(dt.timedelta(minutes=61))
            assert [_enrol(web, VICTIM).status_code for _ in range(5)] == [302] * 5
        traveller.shift(dt.timedelta(minutes=61))
        assert _refused_with(_enrol(web, VICTIM), NUMBER_DAY)
        traveller.shift(dt.timedelta(hours=21))
        assert _enrol(web, VICTIM).status_code == 302
    assert _phone_sends(app, recipient=VICTIM) == 16
    assert _refusals(app) == ["number_hour", "number_day"]


class TestPracticeCaps:
    """All the users of a practice together: a cap per hour and per day (small here)."""

    @pytest.fixture
    def settings(self, settings):
        return dict(settings, phone_sends_per_practice_hour=3, phone_sends_per_practice_day=5)

    def test_the_per_practice_caps_hold_for_an_hour_and_a_day_and_only_for_that_practice(self, app, admin_web, texts):
        staff = []
        for n in range(7):
            add_active_user(
                app,
                first_name="Staff",
                last_name=f"Member{n}",
                email=f"staff{n}@sunrise.example.com",
                username=f"staff{n}",
                password=SIGNUP["password"],
                phone=f"+1415555{200 + n:04d}",
            )
            staff.append(f"staff{n}@sunrise.example.com")

        def ask_for_a_code(email):
            web = Browserless(app.test_client())
            sign_in_email(web, email, SIGNUP["password"], second_factor=False)
            return web.post("/mfa-sms/sms", {"action": "send"})

        with _clock() as traveller:
            assert [ask_for_a_code(email).status_code for email in staff[:3]] == [200] * 3
            refused = ask_for_a_code(staff[3])
            assert _refused_with(refused, PRACTICE_HOUR)
            assert 'role="alert"' in refused.get_data(as_text=True), "the message is shown as an error"
            traveller.shift(dt.timedelta(minutes=61))
            assert [ask_for_a_code(email).status_code for email in staff[3:5]] == [200] * 2
            assert _refused_with(ask_for_a_code(staff[5]), PRACTICE_DAY)
            other = Browserless(app.test_client())
            signup(other, practice_name="Other Clinic", email="owner@other.example.com")
            other.post("/signout", page="/dashboard")
            assert _enrol(_enrolling(app, "owner@other.example.com"), "+14155550299").status_code == 302, (
                "another practice has its own caps"
            )
            traveller.shift(dt.timedelta(hours=23))
            assert ask_for_a_code(staff[6]).status_code == 200
        assert _refusals(app) == ["practice_hour", "practice_day"]
        assert _refused_metric(app, "practice_hour") == 1 and _refused_metric(app, "practice_day") == 1


# --- which numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "message"),
    [
        (
            "+44 7400 123456",
            "pfcore does not text or call numbers in the United Kingdom. Use a number in the United States or Canada.",
        ),
        ("+33 6 12 34 56 78", "pfcore does not text or call numbers in France."),
        ("+1 900 555 0100", "That is a premium-rate number: pfcore sends codes only to mobile phones and landlines."),
        ("+1 888 555 0100", "That is a toll-free number"),
        ("+1 500 555 0100", "That is a personal forwarding number"),
    ],
)
def test_the_enrolment_refuses_other_countries_and_premium_numbers_when_they_are_typed(
    app, admin_web, texts, phone, message
):
    admin_web.post("/signout", page="/dashboard")
    response = _enrol(_enrolling(app), phone)
    assert response.status_code == 422 and message in response.get_data(as_text=True)
    assert _phone_sends(app) == 0


def test_a_canadian_mobile_is_accepted(app, admin_web, texts):
    admin_web.post("/signout", page="/dashboard")
    assert _enrol(_enrolling(app), "+1 613 555 0100").status_code == 302
    assert _phone_sends(app, recipient="+16135550100") == 1


class TestMoreCountries:
    """A deployment that allows more countries still refuses shared-cost numbers, and texts to landlines."""

    @pytest.fixture
    def settings(self, settings):
        return dict(settings, phone_countries=["US", "CA", "GB", "FR"])

    def test_allowed_countries_kinds_and_channels(self, app, admin_web, texts):
        admin_web.post("/signout", page="/dashboard")
        web = _enrolling(app)
        assert _enrol(web, "+44 7400 123456").status_code == 302, "a British mobile, now allowed"
        shared_cost = _enrol(web, "+33 8 84 01 23 45")
        assert _refused_with(shared_cost, "That is a shared-cost number")
        landline = "+44 20 7946 0000"
        assert _refused_with(_enrol(web, landline, "sms"), "That number is a landline, which cannot receive texts.")
        assert _enrol(web, landline, "voice").status_code == 302, "a landline takes a call"
        assert _phone_sends(app) == 2


def test_a_stored_number_of_another_country_is_refused_when_a_code_is_sent(app, admin_web, texts):
    """A phone verified before the rules (or before a country was taken off the list) gets no code."""
    add_active_user(
        app,
        first_name="Abroad",
        last_name="User",
        email="abroad@sunrise.example.com",
        username="abroad",
        password=SIGNUP["password"],
        phone="+447400123456",
    )
    web = Browserless(app.test_client())
    sign_in_email(web, "abroad@sunrise.example.com", SIGNUP["password"], second_factor=False)
    response = web.post("/mfa-sms/voice", {"action": "send"})
    assert _refused_with(response, "pfcore does not text or call numbers in the United Kingdom.")
    assert "Use another way" in response.get_data(as_text=True)
    assert _phone_sends(app) == 0
    assert _refusals(app) == ["country"]
    assert '"channel":"voice"' in audit_rows(app, "phone.send_refused")[0].details.replace(" ", "")
    assert _refused_metric(app, "country") == 1


@pytest.mark.parametrize(
    ("number", "channel", "allowed"),
    [
        ("+14155550100", "sms", True),
        ("+16135550100", "voice", True),
        ("+19005550100", "voice", False),  # premium rate
        ("+18005550100", "sms", False),  # toll free
        ("+15005550100", "sms", False),  # personal number
        ("+15555550100", "sms", False),  # not a valid number: its kind is UNKNOWN
        ("+442079460000", "voice", False),  # a country not allowed
    ],
)
def test_the_number_rules(number, channel, allowed):
    problem = reachability_problem(number, ["US", "CA"], channel)
    assert (problem is None) is allowed, problem
    if number == "+15555550100":
        assert phonenumbers.number_type(phonenumbers.parse(number)) == phonenumbers.PhoneNumberType.UNKNOWN
        assert problem == ("number_type", "pfcore cannot tell what kind of number that is. Use a mobile phone number.")


# --- every flow goes through the gate -------------------------------------------------------------


def test_the_invitation_phone_step_refuses_a_premium_number_and_is_capped(app, admin_web, inbox, texts):
    from .support.journeys import last_link
    from .test_users import NEW_USER, _practice, add_user

    add_user(admin_web)
    link = last_link(inbox, NEW_USER["email"], "/invitation/")
    invitee = Browserless(app.test_client())
    assert invitee.post(link, {"pac": _practice(app).pac}).status_code == 302
    premium = invitee.post(link + "/phone", {"phone": "1-900-555-0100", "channel": "sms"})
    assert premium.status_code == 422 and "That is a premium-rate number" in premium.get_data(as_text=True)
    with _clock():
        answers = [invitee.post(link + "/phone", {"phone": phone, "channel": "sms"}) for phone in _numbers(11)]
    assert [a.status_code for a in answers] == [302] * 10 + [422]
    assert _refused_with(answers[-1], USER_HOUR)
    with app.app_context():
        invitee_row = session().scalars(select(User).where(User.email == NEW_USER["email"])).one()
    assert invitee_row.phone == _numbers(10)[-1], "a refused number is not kept as the phone"


class TestPasswordReset:
    @pytest.fixture
    def settings(self, settings):
        return dict(settings, phone_sends_per_user_hour=1)

    def test_the_reset_code_counts_against_the_user(self, app, admin_web, inbox, texts):
        from .support.journeys import last_link

        add_active_user(
            app,
            first_name="Pat",
            last_name="Doe",
            email="pat@sunrise.example.com",
            username="pdoe",
            password=SIGNUP["password"],
            phone="+14155550188",
        )
        web = Browserless(app.test_client())
        web.post("/password/forgot", {"email": "pat@sunrise.example.com"})
        link = last_link(inbox, "pat@sunrise.example.com", "/password-reset/")
        assert web.post(link + "/verify", {"channel": "sms"}).status_code == 302
        refused = web.post(link + "/verify", {"channel": "voice"})
        assert _refused_with(refused, USER_HOUR) and 'role="alert"' in refused.get_data(as_text=True)
        assert _phone_sends(app) == 1
        assert _refusals(app) == ["user_hour"]


class TestPortalRegistration:
    @pytest.fixture
    def settings(self, settings):
        return dict(settings, phone_sends_per_number_hour=1)

    def test_the_portal_code_counts_against_the_number(self, app, admin_web, texts):
        from .support.portal import BIRTH_DATE, PATIENT_PHONE, US_BIRTH_DATE, invite
        from .support.records import add_patient

        patient = add_patient(
            app,
            first_name="Pat",
            last_name="Jones",
            date_of_birth=BIRTH_DATE,
            email="pat@example.com",
            phone=PATIENT_PHONE,
        )
        token, _pin = invite(app, patient)
        patient_web = Browserless(app.test_client())

        def send():
            return patient_web.post(
                f"/portal/register/{token}/phone",
                {"phone": "(415) 555-0123", "date_of_birth": US_BIRTH_DATE, "channel": "sms"},
            )

        with _clock() as traveller:
            assert send().status_code == 302
            traveller.shift(dt.timedelta(seconds=40))
            refused = send()
        assert _refused_with(refused, NUMBER_HOUR.replace("Wait an hour", ""))
        assert "use the PIN from your practice" in refused.get_data(as_text=True)
        assert _phone_sends(app) == 1
        (event,) = audit_rows(app, "phone.send_refused")
        assert event.object_type == "portal_invitation" and event.patient_id == patient


def test_a_text_or_call_is_never_queued_around_the_gate(app):
    """``queue`` takes a text or call only with a permit of ``admit``, which serves once, for its number."""
    from pfcore import messaging

    with app.test_request_context():
        with pytest.raises(ValueError, match="permit"):
            messaging.queue("sms", "+14155550111", "no permit", practice_id=1)
        with pytest.raises(phone_sends.SendRefused):
            phone_sends.admit("sms", "+19005550100", practice_id=1, purpose="premium")
        app.config["PFCORE"]["phone_sends_per_number_hour"] = 1
        messaging.queue(
            "sms",
            "+14155550111",
            "admitted",
            practice_id=1,
            permit=phone_sends.admit("sms", "+14155550111", practice_id=1, purpose="test"),
        )
        with pytest.raises(phone_sends.SendRefused, match="That phone number has received many codes"):
            phone_sends.admit("sms", "+14155550111", practice_id=1, purpose="test")
        permit = phone_sends.admit("sms", "+14155550100", practice_id=1, purpose="test")
        messaging.queue("sms", "+14155550100", "hello", practice_id=1, permit=permit)
        with pytest.raises(ValueError, match="permit"):
            messaging.queue("sms", "+14155550100", "again", practice_id=1, permit=permit)
        with pytest.raises(ValueError, match="permit"):
            messaging.queue(
                "sms",
                "+14155550199",
                "elsewhere",
                practice_id=1,
                permit=phone_sends.admit("sms", "+14155550122", practice_id=1, purpose="test"),
            )
        session().rollback()


def test_a_refused_alert_text_keeps_the_change_it_accompanies(app, admin_web):
    """``keep_changes``: a text beside a change that stands (an alert) is refused, the change is kept."""
    with app.test_request_context():
        practice_id = session().scalar(select(User.practice_id))
        from pfcore import audit

        audit.record("test.change_that_stands", practice_id=practice_id)
        with pytest.raises(phone_sends.SendRefused) as refused:
            phone_sends.admit("sms", "+19005550100", practice_id=practice_id, purpose="alert")
        phone_sends.record_refusal(refused.value, keep_changes=True)
        session().commit()
    assert len(audit_rows(app, "test.change_that_stands")) == 1
    assert _refusals(app) == ["number_type"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phone_sends_per_user_hour": 0}, "phone_sends_per_user_hour must be a whole number of at least 1"),
        ({"phone_sends_per_number_day": "many"}, "phone_sends_per_number_day must be a whole number"),
        ({"phone_countries": []}, "phone_countries must list at least one country code"),
        ({"phone_countries": ["US", "XX"]}, "unknown country codes ['XX']"),
    ],
)
def test_bad_settings_stop_the_start(tmp_path, change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_app({"instance_path": str(tmp_path), "secret_key": "x", **change})


def test_country_codes_may_be_given_in_small_letters(tmp_path):
    app = create_app({"instance_path": str(tmp_path), "secret_key": "x"}, environ={"PFCORE_PHONE_COUNTRIES": "us, ca"})
    assert app.config["PFCORE"]["phone_countries"] == ["US", "CA"]
    app.extensions["pfcore.engine"].dispose()


# --- two app servers at once ------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["number", "practice"])
def test_sends_at_the_same_moment_never_pass_the_cap(app, admin_web, database_url, monkeypatch, scope):
    """Eight sends at once, each on its own connection, to one number (``number``)
    or to eight numbers of one practice whose cap is 5 an hour (``practice``): the
    count and the insert happen under the locks, so only the cap's worth get through.

    Each send waits (a little) after counting for the others to count too:
    without the locks all eight would count 0 and all be queued.
    """
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writing transactions from BEGIN IMMEDIATE")
    from pfcore import messaging

    senders = 8
    counted = threading.Barrier(senders)
    original = phone_sends._recent_sends

    def counted_then_wait(*args, **kwargs):
        result = original(*args, **kwargs)
        try:
            counted.wait(timeout=0.5)  # with the locks the others cannot have counted: the wait runs out
        except threading.BrokenBarrierError:
            pass
        return result

    monkeypatch.setattr(phone_sends, "_recent_sends", counted_then_wait)
    if scope == "practice":
        monkeypatch.setitem(app.config["PFCORE"], "phone_sends_per_practice_hour", 5)
    numbers = [VICTIM] * senders if scope == "number" else _numbers(senders)
    with app.app_context():
        practice_id = session().scalar(select(User.practice_id))
    outcomes: list[str] = []

    def send(n: int) -> None:
        with app.test_request_context():
            try:
                permit = phone_sends.admit("sms", numbers[n], practice_id=practice_id, purpose="race", user_id=None)
            except phone_sends.SendRefused as refused:
                session().rollback()
                outcomes.append(refused.reason)
                return
            messaging.queue("sms", numbers[n], f"code {n}", practice_id=practice_id, permit=permit)
            session().commit()
            outcomes.append("sent")

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [f"{scope}_hour"] * 3 + ["sent"] * 5
    assert _phone_sends(app) == 5

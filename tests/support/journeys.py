"""What a person does over HTTP, shared by many tests: sign up a practice, sign in
by email or Practice ID, pass the second factor by a texted code, follow a
link from an email."""

from __future__ import annotations

import re

from .apps import Browserless
from .servers import body_of

SIGNUP = {
    "practice_name": "Sunrise Family Clinic",
    "first_name": "Grace",
    "last_name": "Hopper",
    "email": "grace@sunrise.example.com",
    "phone": "415-555-0101",
    "specialty": "Family medicine",
    "password": "correct horse battery staple",
}


def signup(web: Browserless, **changes):
    data = dict(SIGNUP, **changes)
    response = web.post("/signup", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return data


def sign_in_email(web: Browserless, email: str, password: str, *, second_factor: bool = True):
    """Sign in by email; pass the second factor by text message when asked (``second_factor``)."""
    response = web.post("/login-email/", {"email": email, "password": password})
    return pass_second_factor(web, response) if second_factor else response


def sign_in_pac(web: Browserless, pac: str, username: str, password: str, *, second_factor: bool = True):
    response = web.post("/login-pac/", {"pac": pac, "username": username, "password": password})
    return pass_second_factor(web, response) if second_factor else response


def latest_texted_code(app, destination: str | None = None) -> str:
    """The newest code texted or called (to ``destination``), read from the outbox table."""
    from sqlalchemy import select

    from pfcore.db import session
    from pfcore.models import OutboxMessage

    statement = select(OutboxMessage).where(OutboxMessage.channel.in_(("sms", "voice")))
    if destination:
        statement = statement.where(OutboxMessage.recipient == destination)
    with app.app_context():
        message = session().scalars(statement.order_by(OutboxMessage.id.desc())).first()
    assert message is not None, "no code was texted"
    digits = re.findall(r"\d", message.body.split(" is ", 1)[1])
    return "".join(digits[:6])


ENROL_PHONE = "+14155550150"


def pass_second_factor(web: Browserless, response, phone: str = ENROL_PHONE):
    """Finish a sign-in that stopped at the second factor, by a texted code.

    A user with a verified phone gets a code to it; a user who must enrol
    first verifies ``phone``. Any other response is returned unchanged.
    """
    app = web.client.application
    location = response.headers.get("Location", "") if response.status_code == 302 else ""
    if location.endswith("/signin/verify"):
        assert "/mfa-sms/sms" in web.get("/signin/verify").get_data(as_text=True)
        web.post("/mfa-sms/sms", {"action": "send"})
        return web.post("/mfa-sms/sms", {"code": latest_texted_code(app)})
    if location.endswith("/signin/enroll"):
        assert "/mfa-sms/enrol" in web.get("/signin/enroll").get_data(as_text=True)
        web.post("/mfa-sms/enrol", {"phone": phone, "channel": "sms"})
        return web.post("/mfa-sms/enrol/code", {"code": latest_texted_code(app, phone)})
    return response


def last_link(inbox, address: str, pattern: str) -> str:
    body = body_of(inbox.wait_for(address)[-1])
    match = re.search(r"http://pfcore\.test(" + pattern + r"[^\s]+)", body)
    assert match, body
    return match.group(1)

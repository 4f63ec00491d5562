"""Helpers for the browser tests (tests/browser/, Playwright and headless
Chromium): the browser's settings, a watch on every page for console errors
and CSP violations, people and practices set up without the UI, and the steps
every journey shares."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct horse battery staple"

CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + e.sourceFile + ":" + e.lineNumber);
});
"""


@dataclass
class ConsoleWatch:
    """Console errors, uncaught exceptions and CSP violations of every page."""

    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Accept console errors matching ``pattern`` (e.g. an expected 422 status)."""
        self.allowed.append(re.compile(pattern))

    def watch(self, page) -> None:
        def on_console(message):
            if message.type == "error":
                self.problems.append(f"{page.url}: console error: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: uncaught {error}"))

    def unexpected(self) -> list[str]:
        return [p for p in self.problems if not any(a.search(p) for a in self.allowed)]

    def allow_status(self, *statuses: int) -> None:
        """Chromium logs "Failed to load resource" for 4xx pages the test expects."""
        codes = "|".join(str(s) for s in statuses)
        self.allow(rf"Failed to load resource: the server responded with a status of ({codes})\b")


# --- setup without the UI ---------------------------------------------------------


@dataclass
class Person:
    first_name: str
    last_name: str
    email: str
    password: str = PASSWORD
    username: str = ""
    id: int = 0

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class PracticeSetup:
    id: int
    name: str
    pac: str
    admin: Person


def make_practice(app, name: str = "Sunrise Family Clinic", admin: Person | None = None) -> PracticeSetup:
    """A signed-up practice whose administrator has a password."""
    from pfcore import accounts
    from pfcore.db import session

    admin = admin or Person("Grace", "Hopper", "grace@sunrise.example.com")
    with app.app_context():
        practice, user = accounts.create_practice(
            name=name,
            specialty="Family medicine",
            phone="415-555-0101",
            email=admin.email,
            first_name=admin.first_name,
            last_name=admin.last_name,
            password=admin.password,
        )
        session().commit()
        admin.username, admin.id = user.username, user.id
        return PracticeSetup(id=practice.id, name=practice.name, pac=practice.pac, admin=admin)


def make_active_user(
    app,
    practice: PracticeSetup,
    first_name="Ada",
    last_name="Lovelace",
    email="ada@sunrise.example.com",
    *,
    access_level: int = 2,
    is_admin: bool = False,
) -> Person:
    """An EHR user who already accepted an invitation (no email sent)."""
    from pfcore.db import session
    from pfcore.models import User, utcnow
    from pfcore.security.passwords import hash_password

    person = Person(first_name, last_name, email)
    person.username = (first_name[0] + last_name).lower()
    with app.app_context():
        user = User(
            practice_id=practice.id,
            first_name=first_name,
            last_name=last_name,
            email=email,
            username=person.username,
            password_hash=hash_password(person.password),
            access_level=access_level,
            is_admin=is_admin,
            status="active",
            session_generation=0,
            created_at=utcnow(),
        )
        session().add(user)
        session().commit()
        person.id = user.id
    return person


def invite_user(
    app, practice: PracticeSetup, first_name="Ada", last_name="Lovelace", email="ada@sunrise.example.com"
) -> Person:
    """Add an invited user the way the admin page does, and deliver the email."""
    from pfcore import accounts, messaging
    from pfcore.db import session
    from pfcore.models import Practice, User

    person = Person(first_name, last_name, email)
    with app.app_context():
        db = session()
        the_practice = db.get(Practice, practice.id)
        actor = db.scalars(select(User).where(User.id == practice.admin.id)).one()
        user = accounts.add_user(
            the_practice, actor, first_name=first_name, last_name=last_name, email=email, access_level=2, is_admin=False
        )
        db.commit()
        person.id = user.id
        messaging.deliver_due(app)
    return person


# --- steps every journey shares ---------------------------------------------------


def expect_signed_in_as(page, full_name: str, practice_name: str):
    """The page header names the signed-in person and their practice."""
    from playwright.sync_api import expect

    banner = page.get_by_role("banner")
    expect(banner).to_contain_text(full_name)
    expect(banner).to_contain_text(practice_name)
    expect(banner.get_by_role("button", name="Log out")).to_be_visible()


def sign_in_with_email(page, person: Person):
    from playwright.sync_api import expect

    page.goto("/login-email/")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()
    pass_second_factor(page)
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def read_texted_code(page) -> str:
    """The newest code texted or called, read as the operator does: on /operator/outbox (development)."""
    outbox = page.context.new_page()
    try:
        outbox.goto("/operator/outbox")
        body = outbox.locator("pre", has_text="security code").first.inner_text()
    finally:
        outbox.close()
    return "".join(re.findall(r"\d", body.split(" is ", 1)[1]))[:6]


def pass_second_factor(page, phone: str = "415-555-0150", trust: bool = False, texts=None):
    """After "Log in": finish the second factor by a texted code when the practice asks for one.

    A user with a verified phone gets a code to it; a user with none verifies ``phone`` first.
    With ``texts`` (the webhook receiver fixture) the code is read from what the
    SMS webhook received, else from the operator's outbox page.
    """
    from playwright.sync_api import expect

    sent_before = len(texts.messages) if texts is not None else 0

    expect(page).to_have_url(re.compile(r"/(dashboard|signin/verify|signin/enroll)$|/settings|/account"))
    if page.url.endswith("/signin/verify"):
        page.get_by_role("link", name="Text me a code").click()
        page.get_by_role("button", name="Text me").click()
    elif page.url.endswith("/signin/enroll"):
        page.get_by_role("link", name="Verify a phone for codes by text or call").click()
        page.get_by_label("Mobile phone").fill(phone)
        page.get_by_role("button", name="Text me").click()
    else:
        return
    if texts is not None:
        expect(page.get_by_label("Security code")).to_be_visible()
        message = texts.messages[sent_before]
        code = "".join(re.findall(r"\d", message["body"].split(" is ", 1)[1]))[:6]
    else:
        code = read_texted_code(page)
    page.get_by_label("Security code").fill(code)
    if trust:
        page.get_by_label(re.compile("Trust this browser")).check()
    page.get_by_role("button", name="Verify").click()

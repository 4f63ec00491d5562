"""Accessibility in Chromium (issue #10, suite 8): axe-core on every page a
person reaches and on the main htmx states, with no serious or critical
violation; and keyboard-only journeys (sign in, assign a license, activate
emergency access) with a visible focus that never strands on <body>.

The pages are not a hand list that could rot: every GET route of the URL map
is opened (``tests/support/access_rules.py`` says whose page it is), as that person,
with real ids and, for emailed links, real tokens. axe-core comes bundled
with ``axe-playwright-python``: nothing is fetched at test time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyotp
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from pfcore.security import totp

from ..support.access_rules import ACCESS_RULES
from ..support.browser import PASSWORD, make_active_user, sign_in_with_email
from ..support.portal import BIRTH_DATE, US_BIRTH_DATE, invite
from ..support.portal import PASSWORD as PORTAL_PASSWORD
from ..support.records import add_patient
from .test_portal_staff import accept_confirmations

pytestmark = pytest.mark.browser

AXE = Axe()  # for its bundled axe-core; run as axe.run(AXE_OPTIONS)
AXE_OPTIONS = {"resultTypes": ["violations"]}  # every rule axe-core runs by default
BLOCKING = ("critical", "serious")
RESULT_KINDS = ("violations", "passes", "incomplete", "inapplicable")
PATIENT_EMAIL = "pat@example.com"
SECOND_PATIENT_EMAIL = "sam@example.com"
PHONES = {
    "admin": "+14155550101",
    "ada": "+14155550177",
    "pam": "+14155550166",
    "ivy": "+14155550188",
    "ned": "+14155550199",
    "pat": "+14155550123",
    "sam": "+14155550124",
}
# Entries for every chart section, so each section shows a row and its Edit form.
ENTRIES = {
    "medications": ("medication", {"name": "Lisinopril 10 mg", "instructions": "once a day", "status": "active"}),
    "problems": ("problem", {"name": "Hypertension", "code": "I10", "status": "active"}),
    "allergies": ("allergy", {"substance": "Latex", "reaction": "Rash", "severity": "mild"}),
    "immunizations": ("immunization", {"vaccine": "Influenza", "given_on": "2025-10-01", "lot": "A1"}),
    "appointments": ("appointment", {"starts_at": "2030-01-01T10:00", "reason": "Checkup", "provider": ""}),
    "lab-results": (
        "lab_result",
        {"test": "HbA1c", "value": "5.6", "unit": "%", "reference_range": "4-5.6", "collected_on": "2025-09-01"},
    ),
}
# Emailed-link routes and the purpose of the token they take (anything else gets a bogus token:
# the "link expired" page is a page people reach too).
LINK_PURPOSES = {
    "core.accept_invitation": "invitation",
    "core.invitation_": "invitation",
    "core.password_reset": "password_reset",
    "core.confirm_email_change": "email_change",
    "core.open_setup_link": "factor_setup",
    "patient_portal_public.register": "portal_registration",
    "patient_portal_public.reset_password": "portal_password_reset",
}
BOGUS_TOKEN = "bogus-token-0000"
INVALID = "[aria-invalid=true]"  # a field shown with its error
# Whose page a route of each access rule is: the browser it is opened in.
PERSONA_OF_RULE = {
    "public": "anonymous",
    "operator": "anonymous",
    "link": "link",
    "signed_in": "staff",
    "practice": "staff",
    "admin": "staff",
    "portal": "portal",
}
# GET endpoints with no page of their own (the walk lands elsewhere): why.
FRAGMENTS_AND_REDIRECTS = {
    "core.index": "redirects to sign-in or the dashboard",
    "core.signin": "redirects to the first way to log in",
    "licensing.row": "htmx fragment: a row of the Licenses table, checked among the htmx states",
    "licensing.search": "htmx fragment: the search results, checked among the htmx states",
}
# Opened last: it locks the staff session.
LAST = ("core.lock_screen",)


@pytest.fixture
def settings(settings) -> dict:
    """Many sign-ins and codes from one address within a minute: the rate limits have tests of their own."""
    return dict(settings, ratelimit_signin="1000 per minute", ratelimit_codes="1000 per minute")


# --- axe ------------------------------------------------------------------------------------------------------


@dataclass
class AxeAudit:
    """Every axe-core run of a test: what was checked, the rules run and the violations found."""

    app: object
    checked: list[str] = field(default_factory=list)
    endpoints: set[str] = field(default_factory=set)  # of the pages checked
    blocking: list[str] = field(default_factory=list)
    minor: dict = field(default_factory=dict)  # "rule (impact)" -> what showed it
    rules: set[str] = field(default_factory=set)

    def check(self, page, what: str) -> None:
        """Run axe on ``page`` as it is now; ``what`` names the page or state in the report."""
        if not page.evaluate("typeof window.axe === 'object'"):  # once per document, not per htmx state
            page.evaluate(AXE.axe_script)
        response = page.evaluate(f"axe.run({json.dumps(AXE_OPTIONS)})")
        self.rules.update(rule["id"] for kind in RESULT_KINDS for rule in response.get(kind, []))
        for violation in response["violations"]:
            if violation["impact"] in BLOCKING:
                self.blocking.append(describe(what, page.url, violation))
            else:
                self.minor.setdefault(f"{violation['id']} ({violation['impact']})", []).append(what)
        self.checked.append(what)
        self.endpoints.add(endpoint_of(self.app, page.url))

    def assert_clean(self) -> None:
        if self.blocking:
            pytest.fail(
                f"{len(self.blocking)} serious/critical axe violations in {len(self.checked)} pages and "
                "states:\n" + "\n".join(self.blocking),
                pytrace=False,
            )


def endpoint_of(app, url: str) -> str | None:
    try:
        return app.url_map.bind("127.0.0.1").match(urlsplit(url).path, method="GET")[0]
    except HTTPException:
        return None


def describe(what: str, url: str, violation: dict) -> str:
    """A violation as the failure message shows it: rule, impact, help, its URL, the elements (8 at most)."""
    nodes = violation["nodes"]
    lines = [
        f"- {what} ({url}): {violation['id']} [{violation['impact']}] {violation['help']}",
        f"    {violation['helpUrl']}",
    ]
    for node in nodes[:8]:
        summary = " ".join(node.get("failureSummary", "").split())
        lines.append(f"      {', '.join(map(str, node['target']))}: {summary}")
    if len(nodes) > 8:
        lines.append(f"      ... and {len(nodes) - 8} more")
    return "\n".join(lines)


def expect_focus_kept(page) -> None:
    """After an htmx swap, focus is somewhere in the page, not dropped to <body>."""
    expect(page.locator("body")).not_to_be_focused()


def press_and_check(
    page,
    audit: AxeAudit,
    what: str,
    control,
    shows,
    *,
    fill: dict | None = None,
    go_to: str | None = None,
    swap: bool = False,
) -> None:
    """(Go to ``go_to``, fill the fields labelled as ``fill``'s keys,) press ``control`` (a button's name or a
    locator), wait until ``shows`` (a selector or a locator) is visible, then run axe.

    After an htmx ``swap`` focus must not have fallen to <body>.
    """
    if go_to:
        page.goto(go_to)
    for label, value in (fill or {}).items():
        page.get_by_label(label, exact=True).fill(value)
    (page.get_by_role("button", name=control, exact=True) if isinstance(control, str) else control).click()
    expect(page.locator(shows).first if isinstance(shows, str) else shows).to_be_visible()
    if swap:
        expect_focus_kept(page)
    audit.check(page, what)


def report(audit: AxeAudit, title: str, notes: list[str] = ()) -> None:
    print(
        f"\n{title}: {len(audit.checked)} pages/states, {len(audit.rules)} axe rules, "
        f"{len(audit.blocking)} serious/critical violations"
    )
    for line in [*notes, *(f"  checked: {what}" for what in audit.checked)]:
        print(line)
    for rule, where in sorted(audit.minor.items()):
        print(f"  moderate/minor, not failing: {rule} x{len(where)}: " + "; ".join(where))


# --- the world: every plugin on, people, a chart, portal patients, emailed links ---------------------------------


@dataclass
class World:
    ids: dict  # URL argument -> id of practice A's object
    entries: dict  # chart section slug -> entry id
    tokens: dict  # link purpose -> real token
    people: dict  # name -> Person
    pac: str
    portal_invite: tuple  # (token, PIN) of the patient who registers in the browser


def _give_phone(app, user_id: int, phone: str) -> None:
    """A verified phone, as if the user had verified it (the second factor by text)."""
    from pfcore.db import session
    from pfcore.models import User, utcnow

    with app.app_context():
        user = session().get(User, user_id)
        user.phone, user.phone_verified_at = phone, utcnow()
        session().commit()


def _links_in_outbox(app) -> dict[str, str]:
    """Emailed-link purpose -> token, read from the emails pfcore queued."""
    from pfcore.db import session
    from pfcore.models import OutboxMessage

    kinds = {
        "invitation": "invitation",
        "password-reset": "password_reset",
        "account/email-change": "email_change",
        "setup": "factor_setup",
        "portal/password-reset": "portal_password_reset",
    }
    found = {}
    with app.app_context():
        for body in session().scalars(select(OutboxMessage.body).where(OutboxMessage.channel == "email")):
            for match in re.finditer(r"https?://[^/\s]+/([a-z/-]+?)/([A-Za-z0-9_-]{20,})", body):
                if match.group(1) in kinds:
                    found[kinds[match.group(1)]] = match.group(2)
    return found


def build_world(app, practice) -> World:
    from pfcore import accounts
    from pfcore.db import session
    from pfcore.models import Practice, PracticePlugin, User, utcnow
    from pfcore_plugins.charts.models import ChartEntry, Document, Encounter
    from pfcore_plugins.emergency_access.models import Designee
    from pfcore_plugins.licensing.models import LicenseSlot
    from pfcore_plugins.mfa_recovery.recovery_codes import generate
    from pfcore_plugins.mfa_totp import otp
    from pfcore_plugins.mfa_webauthn.models import WebAuthnCredential

    admin = practice.admin
    ada = make_active_user(app, practice)  # designee: the emergency-access journey
    margaret = make_active_user(app, practice, "Margaret", "Provider", "margaret@sunrise.example.com", access_level=3)
    pam = make_active_user(app, practice, "Pam", "Phone", "pam@sunrise.example.com")  # every second factor
    ned = make_active_user(app, practice, "Ned", "New", "ned@sunrise.example.com")  # none yet
    for person, name in ((admin, "admin"), (ada, "ada"), (pam, "pam")):
        _give_phone(app, person.id, PHONES[name])
    patient = add_patient(
        app, first_name="Pat", last_name="Jones", date_of_birth=BIRTH_DATE, email=PATIENT_EMAIL, phone=PHONES["pat"]
    )
    other_patient = add_patient(
        app,
        first_name="Sam",
        last_name="Smith",
        date_of_birth="1975-06-30",
        email=SECOND_PATIENT_EMAIL,
        phone=PHONES["sam"],
    )
    with app.test_request_context():
        db = session()
        the_practice = db.get(Practice, practice.id)
        registry = app.extensions["pfcore.plugins"]
        enabled = set(db.scalars(select(PracticePlugin.plugin_name).where(PracticePlugin.practice_id == practice.id)))
        db.add_all(
            PracticePlugin(practice_id=practice.id, plugin_name=name, enabled_at=utcnow())
            for name in sorted(registry.available - enabled)
        )
        db.add_all(
            Designee(practice_id=practice.id, user_id=user_id, granted_by_id=admin.id, granted_at=utcnow())
            for user_id in (admin.id, ada.id)
        )
        pam_user = db.get(User, pam.id)
        otp.save(pam_user, totp.new_secret(), totp.current_step())
        generate(pam_user)
        db.add(
            WebAuthnCredential(
                practice_id=practice.id,
                user_id=pam.id,
                name="Desk key",
                credential_id="AAAAAAAA",
                public_key=b"\x00",
                sign_count=0,
                transports=["usb"],
                user_handle="aGFuZGxl",
            )
        )
        entries = {}
        for slug, (kind, data) in ENTRIES.items():
            entry = ChartEntry(practice_id=practice.id, patient_id=patient, kind=kind, data=data)
            db.add(entry)
            db.flush()
            entries[slug] = entry.id
        encounter = Encounter(
            practice_id=practice.id,
            patient_id=patient,
            provider_id=admin.id,
            visit_date=dt.date(2026, 1, 5),
            reason="Checkup",
        )
        db.add(encounter)
        db.flush()
        document = Document(
            practice_id=practice.id,
            patient_id=patient,
            encounter_id=encounter.id,
            title="Letter",
            body="To whom it may concern.",
        )
        db.add(document)
        # Emailed links, sent the way the app sends them.
        accounts.add_user(
            the_practice,
            db.get(User, admin.id),
            first_name="Ivy",
            last_name="Invited",
            email="ivy@sunrise.example.com",
            access_level=2,
            is_admin=False,
        )
        accounts.send_password_reset(pam_user, the_practice, by_admin=False)
        accounts.request_email_change(db.get(User, ned.id), "ned.new@sunrise.example.com", by_admin=False, upgrade=True)
        accounts.request_email_change(db.get(User, ada.id), "ada.l@sunrise.example.com", by_admin=True)
        accounts.send_factor_setup_link(db.get(User, ned.id))
        slot = db.scalars(
            select(LicenseSlot.id)
            .where(LicenseSlot.practice_id == practice.id, LicenseSlot.user_id.is_(None))
            .order_by(LicenseSlot.id)
        ).first()
        db.commit()
        ids = {
            "user_id": ada.id,
            "slot_id": slot,
            "patient_id": patient,
            "encounter_id": encounter.id,
            "document_id": document.id,
            "fmt": "json",
        }
    registering = invite(app, patient, practice_id=practice.id, email=PATIENT_EMAIL)
    walking_token, _pin = invite(
        app, other_patient, practice_id=practice.id, email=SECOND_PATIENT_EMAIL, phone=PHONES["sam"]
    )
    tokens = dict(_links_in_outbox(app), portal_registration=walking_token)
    return World(
        ids=ids,
        entries=entries,
        tokens=tokens,
        portal_invite=registering,
        pac=practice.pac,
        people={"admin": admin, "ada": ada, "margaret": margaret, "pam": pam, "ned": ned},
    )


# --- whose browser, which path -----------------------------------------------------------------------------------


def link_purpose(endpoint: str) -> str | None:
    return next((purpose for prefix, purpose in LINK_PURPOSES.items() if endpoint.startswith(prefix)), None)


def path_of(app, rule, world: World) -> str:
    """The path of a GET route in practice A's world.

    A chart section's own pages (<slug>) are one template for every section: the walk opens the first
    section's; every section's forms are checked on the chart, among the htmx states.
    """
    slug, entry_id = next(iter(world.entries.items()))
    values = {}
    for arg in rule.arguments:
        if arg == "token":
            values[arg] = world.tokens.get(link_purpose(rule.endpoint), BOGUS_TOKEN)
        else:
            values[arg] = {"slug": slug, "entry_id": entry_id}.get(arg) or world.ids[arg]
    return app.url_map.bind("127.0.0.1").build(rule.endpoint, values)


def routes_to_walk(app) -> list:
    """Every GET route with a declared rule, but static files; the lock screen last."""
    rules = [
        r
        for r in app.url_map.iter_rules()
        if "GET" in r.methods and ACCESS_RULES.get(r.endpoint) not in (None, "static")
    ]
    return sorted(rules, key=lambda r: (r.endpoint in LAST, r.endpoint))


def open_page(page, path: str):
    """Go to ``path``; None when it is no HTML page (a file download, JSON, CSV, metrics, 204)."""
    try:
        response = page.goto(path)
    except PlaywrightError as error:
        if "Download is starting" in str(error) or "net::ERR_ABORTED" in str(error):
            return None
        raise
    if response is None or "text/html" not in (response.headers.get("content-type") or ""):
        return None
    return response


def start_sign_in(page, person) -> None:
    """Email and password only: the browser stops at the second factor."""
    page.goto("/login-email/")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/signin/(verify|enroll)$"))


def register_patient(page, world: World, audit: AxeAudit) -> None:
    """The patient registers with the PIN (a wrong PIN first), checking each page on the way."""
    token, pin = world.portal_invite
    page.goto(f"/portal/register/{token}")
    audit.check(page, "portal registration: date of birth and PIN")
    wrong_pin = "000000" if pin != "000000" else "111111"
    press_and_check(
        page,
        audit,
        "portal registration: a wrong PIN shown",
        "Continue",
        "[role=alert]",
        fill={"Date of birth": US_BIRTH_DATE, "PIN": wrong_pin},
    )
    press_and_check(
        page,
        audit,
        "portal registration: create or link an account",
        "Continue",
        page.get_by_role("link", name="Create account"),
        fill={"Date of birth": US_BIRTH_DATE, "PIN": pin},
    )
    page.get_by_role("link", name="Create account").click()
    press_and_check(
        page,
        audit,
        "portal registration: create account, passwords that differ shown",
        "Create account",
        INVALID,
        fill={"Password": PORTAL_PASSWORD, "Confirm password": "other words"},
    )
    page.get_by_label("Password", exact=True).fill(PORTAL_PASSWORD)
    page.get_by_label("Confirm password").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My health records")


def portal_link_id(app) -> int:
    from pfcore.db import session
    from pfcore_plugins.patient_portal.models import PortalLink

    with app.app_context():
        return session().scalars(select(PortalLink.id).order_by(PortalLink.id)).first()


def email_portal_reset_link(app) -> None:
    from pfcore.db import session
    from pfcore_plugins.patient_portal import accounts

    with app.test_request_context():
        accounts.send_reset_links(PATIENT_EMAIL)
        session().commit()


def step_through_emailed_links(page, world: World, texts, audit: AxeAudit) -> None:
    """The pages behind a step of an emailed link: each flow as far as its last page, wrong inputs on the way."""
    tokens, code = world.tokens, page.get_by_label("Security code")
    # Invitation: the Practice ID (a wrong one first), the phone and its code, username and password.
    press_and_check(
        page,
        audit,
        "invitation: a wrong Practice ID shown",
        "Continue",
        INVALID,
        go_to=f"/invitation/{tokens['invitation']}",
        fill={"Practice ID": "WRONG00000"},
    )
    press_and_check(
        page,
        audit,
        "invitation: the verification phone",
        "Continue",
        page.get_by_label("Mobile phone"),
        fill={"Practice ID": world.pac},
    )
    press_and_check(page, audit, "invitation: the texted code", "Text me", code, fill={"Mobile phone": PHONES["ivy"]})
    code.fill(texts.last_code(PHONES["ivy"]))
    page.get_by_role("button", name="Verify").click()
    press_and_check(
        page,
        audit,
        "invitation: passwords that differ shown",
        "Set password",
        INVALID,
        fill={"Password": PASSWORD, "Confirm password": PASSWORD + " not the same"},
    )

    # Password reset (Pam): the texted code (a wrong one first), then the new password (too short).
    page.goto(f"/password-reset/{tokens['password_reset']}")
    page.get_by_role("button", name="Text me").click()
    press_and_check(
        page, audit, "password reset: a wrong code shown", "Verify", INVALID, fill={"Security code": "000000"}
    )
    code.fill(texts.last_code(PHONES["pam"]))
    page.get_by_role("button", name="Verify").click()
    press_and_check(
        page,
        audit,
        "password reset: a too-short password shown",
        "Save new password",
        INVALID,
        fill={"New password": "short", "Confirm password": "short"},
    )

    # Change of login email (Ada): the texted code, then the confirmation.
    press_and_check(
        page,
        audit,
        "email change: the texted code",
        "Text me",
        code,
        go_to=f"/account/email-change/{tokens['email_change']}",
    )
    press_and_check(
        page,
        audit,
        "email change: confirm the new login email",
        "Verify",
        page.get_by_role("button", name="Change my login email"),
        fill={"Security code": texts.last_code(PHONES["ada"])},
    )

    # Portal registration by phone (Sam): the code, then linking to an existing account.
    press_and_check(
        page,
        audit,
        "portal registration: the texted code",
        "Send code",
        code,
        go_to=f"/portal/register/{tokens['portal_registration']}/phone",
        fill={"Phone number": PHONES["sam"], "Date of birth": "1975-06-30"},
    )
    code.fill(texts.last_code(PHONES["sam"]))
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("link", name="Link to existing account").click()
    press_and_check(
        page,
        audit,
        "portal registration: link to an existing account, empty form shown",
        "Link account",
        f"{INVALID}, [role=alert]",
    )


def step_through_second_factors(verify, enroll, audit: AxeAudit) -> None:
    """Half-finished sign-ins: a code texted, a phone being verified (an impossible number first)."""
    press_and_check(
        verify,
        audit,
        "second factor: the texted code",
        "Text me",
        verify.get_by_label("Security code"),
        go_to="/mfa-sms/sms",
    )
    press_and_check(
        enroll,
        audit,
        "phone enrolment: an impossible number shown",
        "Text me",
        INVALID,
        go_to="/mfa-sms/enrol",
        fill={"Mobile phone": "12"},
    )
    press_and_check(
        enroll,
        audit,
        "phone enrolment: the texted code",
        "Text me",
        enroll.get_by_label("Security code"),
        fill={"Mobile phone": PHONES["ned"]},
    )


def step_through_portal_app(page, audit: AxeAudit) -> None:
    """The patient turns on an authenticator app, signs out and in: the app's code is asked."""
    app_code = page.get_by_label("Code from your authenticator app")
    press_and_check(
        page,
        audit,
        "portal authenticator: a wrong password shown",
        "Set up",
        "[role=alert]",
        go_to="/portal/authenticator",
        fill={"Password": "not my password"},
    )
    press_and_check(
        page,
        audit,
        "portal authenticator: the QR code and key",
        "Set up",
        "#portal-totp-secret",
        fill={"Password": PORTAL_PASSWORD},
    )
    secret = page.locator("#portal-totp-secret").inner_text().replace(" ", "")
    press_and_check(
        page,
        audit,
        "portal authenticator: on",
        "Verify and turn on",
        page.get_by_role("button", name="Remove authenticator app"),
        fill={"Code from your authenticator app": pyotp.TOTP(secret).now()},
    )
    page.get_by_role("button", name="Sign out").click()
    press_and_check(
        page,
        audit,
        "portal sign-in: the app's code",
        "Sign in",
        app_code,
        fill={"Username": PATIENT_EMAIL, "Password": PORTAL_PASSWORD},
    )


def test_every_page_has_no_serious_or_critical_axe_violations(app, practice, new_page, live_server, texts, console):
    console.allow_status(404, 422)  # wrong inputs; Chromium asks for /favicon.ico on a non-HTML answer (/healthz)
    world = build_world(app, practice)
    audit = AxeAudit(app)
    browsers = {name: new_page() for name in ("anonymous", "link", "staff", "portal", "verify", "enroll")}
    sign_in_with_email(browsers["staff"], world.people["admin"])
    start_sign_in(browsers["verify"], world.people["pam"])
    start_sign_in(browsers["enroll"], world.people["ned"])
    register_patient(browsers["portal"], world, audit)
    world.ids["link_id"] = portal_link_id(app)
    email_portal_reset_link(app)
    world.tokens.update(_links_in_outbox(app))

    notes, seen, pages = [], set(), set()
    for rule in routes_to_walk(app):
        rule_name = ACCESS_RULES[rule.endpoint]
        # Second-factor pages also serve the signed-in (set up another factor).
        personas = ("verify", "enroll", "staff") if rule_name == "pending" else (PERSONA_OF_RULE[rule_name],)
        path = path_of(app, rule, world)
        for persona in personas:
            page = browsers[persona]
            if open_page(page, path) is None:
                notes.append(f"  not a page (file, JSON or text): {rule.endpoint} {path}")
                continue
            pages.add(rule.endpoint)
            landed = page.url.removeprefix(live_server)
            if (persona, landed) in seen:
                notes.append(f"  same page as before: {rule.endpoint} as {persona} -> {landed}")
                continue
            seen.add((persona, landed))
            moved = "" if landed == path else f" -> {landed}"
            audit.check(page, f"{rule.endpoint} as {persona}: {path}{moved}")
    step_through_emailed_links(browsers["link"], world, texts, audit)
    step_through_second_factors(browsers["verify"], browsers["enroll"], audit)
    step_through_portal_app(browsers["portal"], audit)

    report(audit, f"axe on every page ({len(pages)} GET endpoints answer HTML)", notes)
    unseen = {e: FRAGMENTS_AND_REDIRECTS.get(e, "?") for e in sorted(pages - audit.endpoints)}
    print(
        f"  endpoints whose own page was checked: {len(pages & audit.endpoints)} of {len(pages)}; "
        "with no page of their own: " + "; ".join(f"{e} ({why})" for e, why in unseen.items())
    )
    audit.assert_clean()
    assert "?" not in unseen.values(), f"pages the walk did not reach (walk a flow to them): {unseen}"


# --- the main htmx states ---------------------------------------------------------------------------------------


def add_audit_events(app, practice_id: int, count: int) -> None:
    """Enough audit events for the report's "Load more"."""
    from pfcore import audit
    from pfcore.db import session

    with app.test_request_context():
        for n in range(count):
            audit.record("test.filler", practice_id=practice_id, object_type="filler", object_id=n)
        session().commit()


def test_main_htmx_states_have_no_serious_or_critical_axe_violations(
    app, practice, page, new_page, live_server, console
):
    console.allow_status(422)  # the wrong inputs below
    world = build_world(app, practice)
    add_audit_events(app, practice.id, 60)
    audit = AxeAudit(app)
    asked = accept_confirmations(page)  # hx-confirm asks in the browser's own dialog, outside the page and axe
    sign_in_with_email(page, world.people["admin"])
    chart = f"/charts/patients/{world.ids['patient_id']}"

    # Users, a user, settings: answers swapped in place, errors shown, confirmations asked.
    press_and_check(
        page,
        audit,
        "users: new Practice Access Code generated, after the confirm dialog",
        "Generate new PAC",
        "#pac-box [role=status]",
        go_to="/settings/users",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "users: invitation sent again",
        "Resend invitation to Ivy Invited",
        "#users-table [role=status]",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "user detail: emails that differ shown",
        "Change login email",
        "#user-actions [role=alert]",
        go_to=f"/settings/users/{world.ids['user_id']}",
        swap=True,
        fill={"New login email": "ada@elsewhere.example.com", "Confirm": "someone@elsewhere.example.com"},
    )
    page.get_by_label("Access level", exact=True).select_option(index=0)
    press_and_check(
        page, audit, "user detail: access level changed", "Change access level", "#user-facts [role=status]", swap=True
    )
    press_and_check(
        page, audit, "add user: an empty form's errors shown", "Add user", INVALID, go_to="/settings/users/new"
    )
    press_and_check(
        page,
        audit,
        "plugins: switching off a plugin another needs refused",
        "Switch off Charts",
        "#plugin-table [role=alert]",
        go_to="/settings/plugins",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "sign-in security: a screen lock out of range shown",
        "Save screen lock",
        f"#idle-timeout {INVALID}",
        go_to="/settings/security",
        swap=True,
        fill={"Lock the screen after this many minutes of inactivity": "0"},
    )
    press_and_check(
        page,
        audit,
        "sign-in security: second-factor policy saved",
        "Save second-factor policy",
        "#second-factor-policy [role=status]",
        swap=True,
    )

    # Licenses: a row being assigned (search results, no match), assigned, revoked.
    page.goto("/licensing/")
    page.get_by_role("link", name="Assign license 2, Secondary License").click()
    search = page.get_by_label("Search EHR users for Secondary License 2")
    expect(search).to_be_focused()
    audit.check(page, "licenses: a row in its assign (edit) state")
    search.press_sequentially("marg")
    expect(page.get_by_role("button", name=re.compile("^Assign Secondary License to"))).to_have_count(1)
    audit.check(page, "licenses: search results shown")
    search.fill("")
    search.press_sequentially("nobody at all")
    expect(page.locator("#license-results-2")).to_contain_text("No active user without a license matches")
    audit.check(page, "licenses: no user matches")
    search.fill("")
    search.press_sequentially("marg")
    press_and_check(
        page,
        audit,
        "licenses: license assigned",
        "Assign Secondary License to Margaret Provider",
        "#license-slot-2 >> text=Margaret Provider",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "licenses: license revoked, after the confirm dialog",
        "Revoke license of Margaret Provider",
        "#license-slot-2 >> text=Assign license",
        swap=True,
    )

    # The audit report: filtered, sorted, "Load more", the integrity check.
    page.goto("/reports/audit")
    page.get_by_label("Outcome").select_option(index=1)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"outcome="))  # the filter's URL, pushed by htmx
    audit.check(page, "audit report: filtered")
    press_and_check(
        page,
        audit,
        "audit report: sorted by action",
        page.get_by_role("link", name="Action"),
        "th[aria-sort] >> text=Action",
        go_to="/reports/audit",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "audit report: more rows loaded",
        page.get_by_role("link", name="Load more"),
        "#audit-rows tr:nth-child(51)",
        go_to="/reports/audit",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "audit report: integrity verified",
        "Verify integrity",
        "#verify-result >> text=Audit log intact",
        swap=True,
    )

    # Charts: search as you type, the Actions menu, every section's forms in place, a lab result shared,
    # the patient-portal dialog; an encounter's document with errors.
    page.goto("/charts/patients")
    page.get_by_label("Search by name or date of birth").press_sequentially("jon")
    expect(page.get_by_role("link", name="Smith, Sam")).to_have_count(0)
    audit.check(page, "patients: search results shown")
    page.get_by_label("Search by name or date of birth").fill("nobody")
    expect(page.get_by_text("No patients match")).to_be_visible()
    audit.check(page, "patients: no patient matches")
    press_and_check(
        page,
        audit,
        "chart: the Actions menu open",
        page.locator("summary", has_text="Actions"),
        "details[open]",
        go_to=chart,
    )
    for slug in ENTRIES:  # every section's add form, submitted empty
        section = page.locator(f"#section-{slug}")
        section.get_by_role("link", name=re.compile("^Add ")).click()
        section.get_by_role("button", name="Add", exact=True).click()
        expect(section.locator(INVALID).first).to_be_visible()
        expect_focus_kept(page)
    audit.check(page, "chart: every section's add form with its errors shown")
    for slug in ENTRIES:  # a row of every section being edited
        section = page.locator(f"#section-{slug}")
        section.get_by_role("link", name=re.compile("^Edit ")).first.click()
        expect(section.get_by_role("button", name="Save")).to_be_visible()
        expect_focus_kept(page)
    audit.check(page, "chart: a row of every section in its edit state")
    press_and_check(
        page,
        audit,
        "chart: a lab result shared with the patient",
        "Share HbA1c with patient",
        "#section-lab-results [aria-pressed=true]",
        go_to=chart,
        swap=True,
    )
    dialog = page.locator("#chart-dialog")
    press_and_check(
        page,
        audit,
        "chart: the patient-portal enrolment dialog open",
        page.locator("#portal-status a"),
        "#chart-dialog #portal-enrolment",
        swap=True,
    )
    dialog.get_by_role("button", name="Cancel invite").click()
    dialog.get_by_role("link", name="Invite to patient portal").click()
    dialog.get_by_label("Email").fill("not an email")
    press_and_check(
        page,
        audit,
        "chart: the portal invitation dialog with a wrong email shown",
        "Invite to patient portal",
        f"#chart-dialog {INVALID}",
        swap=True,
    )
    dialog.get_by_label("Email").fill(PATIENT_EMAIL)
    press_and_check(
        page,
        audit,
        "chart: the portal invitation dialog asking to confirm",
        "Invite to patient portal",
        "#chart-dialog >> text=Confirm the invitation",
        swap=True,
    )
    press_and_check(
        page,
        audit,
        "encounter: an empty document's errors shown",
        "Add document",
        INVALID,
        go_to=f"{chart}/encounters/{world.ids['encounter_id']}",
    )

    # My account and other settings.
    page.goto("/account")
    page.get_by_label("Current password").last.fill("not my password")
    press_and_check(
        page, audit, "my account: a wrong current password shown", "Change password", f"{INVALID}, [role=alert]"
    )
    press_and_check(
        page,
        audit,
        "recovery codes: new codes shown",
        "Generate new codes",
        "ol.recovery-codes",
        go_to="/mfa-recovery/codes",
    )
    press_and_check(
        page,
        audit,
        "PHR invite settings: saved",
        "Save settings",
        "#phr-invite [role=status]",
        go_to="/patient-portal/settings/phr-invite",
        swap=True,
    )
    page.goto("/emergency-access/")
    page.get_by_label("Require a reason to activate emergency access").check()
    press_and_check(page, audit, "emergency access: settings saved", "Save settings", "[role=status]")

    # Signed out: wrong sign-in details, an empty sign-up.
    stranger = new_page()
    press_and_check(
        stranger,
        audit,
        "sign in: wrong details shown",
        "Log in",
        "[role=alert]",
        go_to="/login-email/",
        fill={"Email": "nobody@example.com", "Password": "wrong password"},
    )
    press_and_check(
        stranger, audit, "sign up: an empty form's errors shown", "Create practice", INVALID, go_to="/signup"
    )

    # Last: the lock screen with a wrong password (it locks this session).
    press_and_check(
        page,
        audit,
        "lock screen: a wrong password shown",
        "Unlock",
        "[role=alert]",
        go_to="/lock",
        fill={"Password": "not my password"},
    )

    assert any("Generate a new Practice Access Code" in question for question in asked)
    report(audit, "axe on the main htmx states", [f"  confirm dialogs accepted (the browser's own): {len(asked)}"])
    audit.assert_clean()


# --- keyboard only ----------------------------------------------------------------------------------------------

FOCUS_RING = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return "focus is on <body>";
  const s = getComputedStyle(e);
  const ring = s.outlineStyle === "auto" || (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2)
    || s.boxShadow !== "none";
  const r = e.getBoundingClientRect();
  const what = e.outerHTML.slice(0, 120);
  if (!ring) return "no visible focus ring on " + what;
  if (r.width === 0 || r.height === 0 || r.right < 0 || r.bottom < 0) return "focused but not on screen: " + what;
  return "";
}"""


def expect_visible_focus(page) -> None:
    problem = page.evaluate(FOCUS_RING)
    assert not problem, f"{page.url}: {problem}"


def tab_to(page, target, limit: int = 40) -> int:
    """Press Tab until ``target`` has focus, each stop showing a focus ring; returns the number of Tabs."""
    target.wait_for()
    page.wait_for_load_state()  # the page ``target`` is on, with its stylesheet
    for count in range(1, limit + 1):
        page.keyboard.press("Tab")
        expect_visible_focus(page)
        if target.evaluate("e => e === document.activeElement"):
            return count
    raise AssertionError(f"{page.url}: {target} not reached after {limit} Tabs")


def keyboard_sign_in(page, person, phone: str, texts) -> int:
    """Email, password, then a code texted to ``phone``: only Tab, typing, Enter and Space; returns the Tabs."""
    page.goto("/login-email/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    expect_visible_focus(page)
    page.keyboard.press("Enter")  # the skip link: the next Tab is in <main>
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)"), (
        "Skip to content did not move the keyboard into <main>"
    )
    tabs = 2 + tab_to(page, page.get_by_label("Email"))
    page.keyboard.type(person.email)
    tabs += tab_to(page, page.get_by_label("Password"))
    page.keyboard.type(person.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/signin/verify$"))
    tabs += tab_to(page, page.get_by_role("link", name="Text me a code"))
    page.keyboard.press("Enter")
    texted_before = len([m for m in texts.messages if m["to"] == phone])
    tabs += tab_to(page, page.get_by_role("button", name="Text me"))
    page.keyboard.press("Space")
    tabs += tab_to(page, page.get_by_label("Security code"))
    page.keyboard.type(texts.last_code(phone, count=texted_before + 1))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    return tabs


def test_keyboard_only_sign_in_with_a_texted_code(app, practice, page, texts):
    world = build_world(app, practice)
    tabs = keyboard_sign_in(page, world.people["pam"], PHONES["pam"], texts)
    expect(page.get_by_role("banner")).to_contain_text("Pam Phone")
    print(f"\nkeyboard only: signed in (email, password, texted code) with {tabs} Tabs")


def test_keyboard_only_assign_a_license(app, practice, page, texts):
    world = build_world(app, practice)
    keyboard_sign_in(page, world.people["admin"], PHONES["admin"], texts)
    tabs = tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Licenses"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/licensing/$"))
    tabs += tab_to(page, page.get_by_role("link", name="Assign license 2, Secondary License"))
    page.keyboard.press("Enter")
    search = page.get_by_label("Search EHR users for Secondary License 2")
    expect(search).to_be_focused()  # the row's search field takes focus when it opens
    expect_visible_focus(page)
    page.keyboard.type("marg")
    expect(page.get_by_role("button", name=re.compile("^Assign Secondary License to"))).to_have_count(1)
    tabs += tab_to(page, page.get_by_role("button", name="Assign Secondary License to Margaret Provider"), limit=5)
    page.keyboard.press("Enter")
    row = page.locator("#license-slot-2")
    expect(row).to_contain_text("Margaret Provider")
    # Focus stays with the row that changed, not on <body>: the next Tab goes on from there.
    expect(row).to_be_focused()
    expect_visible_focus(page)
    page.keyboard.press("Tab")
    expect(row.get_by_role("link", name="Margaret Provider")).to_be_focused()
    print(f"\nkeyboard only: license assigned from the dashboard with {tabs + 1} Tabs")


def test_keyboard_only_activate_emergency_access(app, practice, page, texts):
    world = build_world(app, practice)
    ada = world.people["ada"]
    keyboard_sign_in(page, ada, PHONES["ada"], texts)
    tabs = tab_to(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings"))
    page.keyboard.press("Enter")
    tabs += tab_to(page, page.get_by_role("link", name="Emergency access"))
    page.keyboard.press("Enter")
    tabs += tab_to(page, page.get_by_role("link", name="Activate emergency access mode"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("dialog", name="Activate emergency access mode?")).to_be_visible()
    tabs += tab_to(page, page.get_by_label("Reason (optional)"))
    page.keyboard.type("Dr. Hopper is in surgery; a nurse is locked out")
    tabs += tab_to(page, page.get_by_role("button", name="Activate and log out"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login-email/"))
    keyboard_sign_in(page, ada, PHONES["ada"], texts)  # a second factor again, then the mode is on
    expect(page.locator(".banner").filter(has_text="Emergency access mode is on for your account")).to_be_visible()
    print(f"\nkeyboard only: emergency access activated from the dashboard with {tabs} Tabs")

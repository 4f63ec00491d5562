"""The world the access-control matrix and the header walk run in (issue #10,
suites 1 and 2): two practices and seven callers, each in their own browser.

- ``anonymous``: nobody signed in;
- ``level1``: a Level 1 user of practice A (front desk, no license);
- ``level4``: a Level 4 clinician of practice A holding the Clinician license
  (licensed actions such as signing notes are theirs);
- ``admin_a``: practice A's administrator (Level 4, no license);
- ``admin_b``: the administrator of practice B, calling with practice A's ids;
- ``portal``: a patient of practice A signed in to the portal (``/portal``);
  a second portal patient's record link (``other_link_id``) is not theirs;
- ``emergency``: a Level 2 user of practice A in emergency-access mode
  (administrator permissions, no license).

Routes are filled in with practice A's ids (users, sessions, license slots,
patients, chart entries, encounters, documents, portal links, emergency
activations), a bogus token and harmless names.
"""

from __future__ import annotations

from sqlalchemy import func, select

from pfcore import audit
from pfcore.db import Base, session
from pfcore.models import AuditEvent, LoginSession, Practice, User

from .apps import Browserless
from .journeys import SIGNUP, sign_in_email, signup
from .records import add_active_user, add_patient

PASSWORD = "correct horse battery staple"
LEVEL1_EMAIL = "lev@sunrise.example.com"
LEVEL4_EMAIL = "doc@sunrise.example.com"
NURSE_EMAIL = "nora@sunrise.example.com"
PATIENT_USERNAME = "marker@example.com"
OTHER_PATIENT_USERNAME = "olga@example.com"
OTHER_PATIENT_NAME = "Olga Otherpatient"
B_SIGNUP = {
    "practice_name": "Other Harbour Clinic",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "owner@other.example.com",
    "phone": "415-555-0199",
}
# Words that only practice A's pages contain: B must never see them.
A_MARKERS = (
    SIGNUP["email"],
    SIGNUP["practice_name"],
    f"{SIGNUP['first_name']} {SIGNUP['last_name']}",
    LEVEL1_EMAIL,
    "Lev One",
    LEVEL4_EMAIL,
    "Marker Patient",
)
ROLES = ("anonymous", "level1", "level4", "admin_a", "admin_b", "portal", "emergency")
# Rate limits are not what these suites check: every caller signs in, and
# refused POSTs hit the code pages, from one test-client address.
NO_RATE_LIMITS = {"ratelimit_signin": "10000 per minute", "ratelimit_codes": "10000 per minute"}
HTMX = {"HX-Request": "true", "HX-Request-Type": "partial"}
# Pages with a side effect on the caller's session, called last.
LAST = ("core.lock_screen",)
# License pages about assigning a slot get a free one (the others the clinician's, assigned).
# Asked from another machine: the loopback address would open the development operator pages.
OPERATOR_ENDPOINTS = ("core.metrics", "core.operator_outbox", "core.operator_reported_invitations")
FREE_SLOT_ENDPOINTS = ("licensing.assign_form", "licensing.search", "licensing.assign_slot")


class World:
    def __init__(self, app):
        self.app = app
        self.admin_a = Browserless(app.test_client())
        signup(self.admin_a)
        self._switch_on(self.admin_a, "emergency_access")
        self.admin_b = Browserless(app.test_client())
        signup(self.admin_b, **B_SIGNUP)
        self._switch_on(self.admin_b, "emergency_access")
        self.anonymous = Browserless(app.test_client())
        self.level1_id = add_active_user(
            app,
            first_name="Lev",
            last_name="One",
            email=LEVEL1_EMAIL,
            username="lev",
            password=PASSWORD,
            phone="+14155550177",
        )
        self.level1 = self._signed_in(LEVEL1_EMAIL)
        self.level4_id = add_active_user(
            app,
            first_name="Doc",
            last_name="Four",
            email=LEVEL4_EMAIL,
            username="doc",
            password=PASSWORD,
            access_level=4,
            phone="+14155550178",
        )
        self.nurse_id = add_active_user(
            app,
            first_name="Nora",
            last_name="Nurse",
            email=NURSE_EMAIL,
            username="nora",
            password=PASSWORD,
            access_level=2,
            phone="+14155550179",
        )
        with app.app_context():
            db = session()
            self.practice_a = db.scalars(select(Practice.id).order_by(Practice.id)).first()
            self.admin_a_id = db.scalars(select(User.id).where(User.email == SIGNUP["email"])).one()
            ids = {"user_id": self.level1_id}
            ids["browser_id"] = db.scalars(
                select(LoginSession.id).where(
                    LoginSession.practice_id == self.practice_a, LoginSession.user_id == self.level1_id
                )
            ).first()
            ids.update(_chart_ids(db, self.practice_a, self.admin_a_id))
        ids["slot_id"] = self._license(self.level4_id)
        self.free_slot_id = self._free_slot()
        self.level4 = self._signed_in(LEVEL4_EMAIL)
        self.emergency, ids["activation_id"] = self._in_emergency()
        self.portal, ids["link_id"] = self._portal_patient(ids["patient_id"], PATIENT_USERNAME)
        other_patient = add_patient(
            self.app,
            first_name=OTHER_PATIENT_NAME.split()[0],
            last_name=OTHER_PATIENT_NAME.split()[1],
            date_of_birth="1980-04-12",
        )
        _other_browser, self.other_link_id = self._portal_patient(other_patient, OTHER_PATIENT_USERNAME)
        self.ids = {k: v for k, v in ids.items() if v is not None}

    # --- setting the world up, as people would -----------------------------------------------------------------

    @staticmethod
    def _switch_on(admin: Browserless, plugin: str) -> None:
        response = admin.post(f"/settings/plugins/{plugin}", {"enabled": "1"}, page="/settings/plugins")
        assert response.status_code in (200, 302), response.status_code

    def _signed_in(self, email: str) -> Browserless:
        browser = Browserless(self.app.test_client())
        response = sign_in_email(browser, email, PASSWORD)
        assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard"), (
            email,
            response.status_code,
            response.headers.get("Location"),
        )
        return browser

    def _license(self, user_id: int) -> int:
        """Practice A's administrator assigns the trial's Clinician license to ``user_id``."""
        from pfcore_plugins.licensing.models import LicenseSlot

        with self.app.app_context():
            slot_id = (
                session()
                .scalars(
                    select(LicenseSlot.id)
                    .where(
                        LicenseSlot.practice_id == self.practice_a,
                        LicenseSlot.license_type == "clinician",
                        LicenseSlot.user_id.is_(None),
                    )
                    .order_by(LicenseSlot.id)
                )
                .first()
            )
        response = self.admin_a.post(
            f"/licensing/slots/{slot_id}/assign", {"user_id": str(user_id)}, page="/licensing/"
        )
        assert response.status_code in (200, 302), response.get_data(as_text=True)
        with self.app.app_context():
            assert session().get(LicenseSlot, slot_id).user_id == user_id
        return slot_id

    def _free_slot(self) -> int:
        from pfcore_plugins.licensing.models import LicenseSlot

        with self.app.app_context():
            return (
                session()
                .scalars(
                    select(LicenseSlot.id)
                    .where(LicenseSlot.practice_id == self.practice_a, LicenseSlot.user_id.is_(None))
                    .order_by(LicenseSlot.id)
                )
                .first()
            )

    def _in_emergency(self) -> tuple[Browserless, int]:
        """The nurse, allowed by the administrator, activates and signs in again (with a second factor)."""
        from pfcore_plugins.emergency_access.models import Activation

        response = self.admin_a.post(
            f"/emergency-access/users/{self.nurse_id}/allow", {"allow": "1"}, page="/emergency-access/"
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        nurse = self._signed_in(NURSE_EMAIL)
        response = nurse.post(
            "/emergency-access/activate", {"reason": "access matrix"}, page="/emergency-access/activate"
        )
        assert response.status_code == 302 and response.headers["Location"].endswith("/signin")
        nurse = self._signed_in(NURSE_EMAIL)
        assert nurse.get("/settings/users").status_code == 200, "emergency mode gives administrator pages"
        with self.app.app_context():
            activation_id = session().scalars(select(Activation.id).where(Activation.user_id == self.nurse_id)).one()
        return nurse, activation_id

    def _portal_patient(self, patient_id: int, username: str) -> tuple[Browserless, int]:
        """The patient invited by practice A, registered and signed in to the portal; returns (browser, link id)."""
        from .portal import create_account, invite, link_ids, verify_with_pin

        token, pin = invite(self.app, patient_id, practice_id=self.practice_a, email=username)
        browser = Browserless(self.app.test_client())
        assert verify_with_pin(browser, token, pin).status_code == 302
        response = create_account(browser, token, username, email=username)
        assert response.status_code == 302 and response.headers["Location"].endswith("/portal/"), response.get_data(
            as_text=True
        )
        assert browser.get("/portal/").status_code == 200
        [link_id] = link_ids(self.app, username)
        return browser, link_id

    # --- calling -------------------------------------------------------------------------------------------------

    def browser(self, role: str) -> Browserless:
        return getattr(self, role)

    def path(self, rule, **ids) -> str:
        """The rule's path with practice A's ids (or ``ids``), a bogus token and harmless names."""
        path = rule.rule
        for arg in rule.arguments:
            if arg == "slot_id" and rule.endpoint in FREE_SLOT_ENDPOINTS:
                value = self.free_slot_id
            elif arg.endswith("_id"):
                value = ids.get(arg) or self.ids.get(arg, self.level1_id)
            elif arg == "token":
                value = "bogus-token-0000"
            elif arg == "name":
                value = "licensing" if rule.endpoint == "core.plugin_static" else "emergency_access"
            elif arg == "slug":
                value = "appointments"
            elif arg == "filename":
                value = "css/pfcore.css"
            elif arg == "fmt":
                value = "json"
            else:
                value = "x"
            for converter in ("", "int:", "path:", "string:"):
                path = path.replace(f"<{converter}{arg}>", str(value))
        return path

    def get(self, rule, role: str, *, htmx: bool = False, **ids):
        environ = {"REMOTE_ADDR": "10.1.2.3"} if rule.endpoint in OPERATOR_ENDPOINTS else {}
        return self.browser(role).get(self.path(rule, **ids), environ_base=environ, headers=HTMX if htmx else {})

    def cookie_problems(self) -> tuple[int, list[str]]:
        """The session cookies each browser holds (set while signing in and since): HttpOnly,
        SameSite=Lax, Path=/, no Domain (Secure and the __Host- prefix: production only)."""
        checked, problems = 0, []
        for role in ROLES:
            for name in ("pfcore_session", "pfcore_csrf", "pfcore_portal"):
                cookie = self.browser(role).client.get_cookie(name)
                if cookie is None:
                    continue
                checked += 1
                if not (cookie.http_only and cookie.same_site == "Lax" and cookie.path == "/" and cookie.origin_only):
                    problems.append(f"{role}'s cookie {name}: {cookie}")
        return checked, problems

    # --- what the database holds ------------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, int], int]:
        """Row counts of every table (one query) and the newest audit event's id."""
        tables = sorted(Base.metadata.tables.items())
        with self.app.app_context():
            row = (
                session()
                .execute(
                    select(
                        *[select(func.count()).select_from(table).scalar_subquery() for _name, table in tables],
                        select(func.coalesce(func.max(AuditEvent.id), 0)).scalar_subquery(),
                    )
                )
                .one()
            )
        return {name: count for (name, _table), count in zip(tables, row[:-1])}, row[-1]

    def changes(self, before: tuple[dict[str, int], int]) -> tuple[dict[str, tuple[int, int]], list[str]]:
        """Tables whose row count changed since ``before`` (audit tables aside) and the audit actions since."""
        counts, last_event = before
        now, _ = self.state()
        changed = {
            name: (counts[name], now[name]) for name in counts if counts[name] != now[name] and name not in audit.TABLES
        }
        with self.app.app_context():
            actions = list(
                session().scalars(select(AuditEvent.action).where(AuditEvent.id > last_event).order_by(AuditEvent.id))
            )
        return changed, actions


def _chart_ids(db, practice_id: int, admin_id: int) -> dict:
    """A patient of practice A with one entry, encounter and document (charts plugin)."""
    import datetime as dt

    from pfcore_plugins.charts.models import ChartEntry, Document, Encounter, Patient

    patient = Patient(
        practice_id=practice_id,
        first_name="Marker",
        last_name="Patient",
        date_of_birth=dt.date(1980, 4, 12),
        sex="female",
    )
    db.add(patient)
    db.flush()
    entry = ChartEntry(
        practice_id=practice_id,
        patient_id=patient.id,
        kind="appointment",  # Level 1 may edit
        data={"starts_at": "2026-01-01T10:00", "reason": "Checkup", "provider": ""},
    )
    encounter = Encounter(
        practice_id=practice_id,
        patient_id=patient.id,
        provider_id=admin_id,
        visit_date=dt.date(2026, 1, 1),
        reason="Checkup",
    )
    db.add_all([entry, encounter])
    db.flush()
    document = Document(practice_id=practice_id, patient_id=patient.id, encounter_id=encounter.id, title="Letter")
    db.add(document)
    db.commit()
    return {"patient_id": patient.id, "entry_id": entry.id, "encounter_id": encounter.id, "document_id": document.id}


def location(response) -> str:
    """Where the answer sends the browser: Location, or HX-Redirect for an htmx request."""
    where = response.headers.get("Location") or response.headers.get("HX-Redirect") or ""
    return where.removeprefix("http://pfcore.test").removeprefix("http://localhost")


def _is_redirect(response) -> bool:
    """A redirect for a page load (3xx), or for htmx (HX-Redirect, usually with 401)."""
    return response.status_code in (301, 302, 303, 307, 308) or "HX-Redirect" in response.headers


def in_site_redirect(response) -> bool:
    where = location(response)
    return _is_redirect(response) and where.startswith("/") and not where.startswith("//")


def to_signin(response) -> bool:
    return response.status_code in (302, 401) and _is_redirect(response) and location(response).startswith("/signin")


def to_portal_signin(response) -> bool:
    return response.status_code in (302, 401) and location(response).startswith("/portal/signin")


def get_rules(app) -> list:
    """Every GET route of the URL map, the ones with a side effect on the caller's session last."""
    return sorted(
        (r for r in app.url_map.iter_rules() if "GET" in r.methods), key=lambda r: (r.endpoint in LAST, r.endpoint)
    )


def security_header_problems(response, *, static: bool) -> list[str]:
    """What is missing from one response's headers (issue #10 suite 2)."""
    problems = []
    csp = response.headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    if directives.get("script-src") != ["'self'"] or "unsafe-inline" in csp or "unsafe-eval" in csp:
        problems.append(f"script-src: {csp!r}")
    for directive in ("object-src", "base-uri", "frame-ancestors"):
        if directives.get(directive) != ["'none'"]:
            problems.append(f"{directive}: {csp!r}")
    if response.headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("X-Content-Type-Options")
    if response.headers.get("Referrer-Policy") not in ("same-origin", "no-referrer", "strict-origin"):
        problems.append(f"Referrer-Policy {response.headers.get('Referrer-Policy')!r}")
    if not static and response.headers.get("Cache-Control") != "no-store":
        problems.append(f"Cache-Control {response.headers.get('Cache-Control')!r}")
    for cookie in response.headers.getlist("Set-Cookie"):  # Secure and __Host-: production only
        attributes = [a.strip() for a in cookie.split(";")[1:]]
        if not {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes) or any(
            a.startswith("Domain") for a in attributes
        ):
            problems.append(f"cookie {cookie!r}")
    return problems

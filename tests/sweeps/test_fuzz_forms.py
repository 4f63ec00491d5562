"""Fuzzing every form endpoint (issue #10, suite 4; ASVS V5 input handling).

Every POST route of the URL map (core and every installed plugin, each
switched on for the practice; a chart section's routes once per section) is
sent inputs drawn by hypothesis: random text, Unicode (right-to-left,
emoji, combining marks, look-alikes, other scripts), huge strings (10k and
100k characters, and now and then a body over the 2 MiB request limit),
strings with NUL and other control characters, type-confused values
(numbers where text is expected and text where numbers are, ids past 2**31
and 2**63, numbers of 10,000 digits, dates that do not exist, JSON, markup),
repeated keys, missing fields, empty strings and stray extra fields; as a
urlencoded form, as multipart, with a field sent as an uploaded file, and
as a JSON body (numbers, lists, objects, lone surrogates); each both as a
plain form post and as an htmx request. Each request carries the browser's
valid CSRF token, so it reaches the view's own validation. The search and
filter forms (GET) get the same values in their query strings.

Each route is called by a caller who may use it, at the step it belongs to
(a signed-in administrator; a licensed clinician; a browser half-way
through signing in or enrolling a factor; a browser holding a valid
invitation, password-reset, email-change or portal-registration link; a
signed-in or half-signed-in portal patient ...), so the input reaches what
the view decides on.

The fields of each route are found, not listed: the names the view reads
from ``request.form`` (recorded while it handles an empty post and one
filled as the app's own form is) and the fields of the forms the app
renders for it. A route that reads no field where it is called fails the
test unless it is declared field-less (``FIELDLESS``), so a new route, or
one that its caller cannot reach, is never skipped in silence
(``test_every_post_route_has_a_caller`` names routes with no caller).

The checks, for every input:
- never a 5xx, and never a redirect off the site (Location, HX-Redirect);
- a refusal (4xx) writes nothing: no table gains, loses or changes a row,
  except the bookkeeping a refusal is meant to leave (``REFUSAL_BOOKKEEPING``:
  failed-attempt counters, lock-outs, a session's last-seen time), and the
  audit trail gains only failure events (a refused sign-in is recorded,
  never a change); the audit chain still verifies;
- after a success (2xx, 3xx) the audit chain still verifies;
- a GET form writes only what every page load writes (``BOOKKEEPING``).

After each input the changed rows are put back as they were, and each
browser's cookies too, so every input starts from the same state and the
database does not grow. ``REGRESSIONS`` keeps an input for every bug the
suite found (each was a 500); they run first, every time.

``PFCORE_FUZZ_EXAMPLES`` sets the number of inputs per form route (default
``EXAMPLES``; a field-less route gets a fifth, PostgreSQL half: the same
views again, where what differs is the database); the inputs are the same
on every run unless ``PFCORE_FUZZ_RANDOM=1``.
"""

from __future__ import annotations

import dataclasses
import functools
import html.parser
import io
import json
import os
import secrets
import tempfile
from typing import Any
from urllib.parse import urlsplit

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import and_, create_engine, delete, select, text
from werkzeug.datastructures import ImmutableMultiDict

from pfcore import audit, create_app
from pfcore.db import Base, session
from pfcore.models import Practice, User, utcnow
from pfcore.security import passwords

from ..support.access_rules import ACCESS_RULES
from ..support.access_world import HTMX, NO_RATE_LIMITS, PASSWORD, World, get_rules, location
from ..support.apps import Browserless, app_settings
from ..support.database import DATABASES, fresh_database
from ..support.journeys import SIGNUP, last_link, latest_texted_code, sign_in_email
from ..support.portal import PASSWORD as PORTAL_PASSWORD
from ..support.records import add_active_user, add_patient
from .test_csrf_suite import BOOKKEEPING

EXAMPLES = int(os.environ.get("PFCORE_FUZZ_EXAMPLES", "25"))
FIELDLESS_EXAMPLES = max(3, EXAMPLES // 5)
RANDOM = os.environ.get("PFCORE_FUZZ_RANDOM") == "1"

# The module's app runs much longer than a person's visit: nothing may expire under it.
FUZZ_SETTINGS = {
    **NO_RATE_LIMITS,
    "session_idle_minutes": 600,
    "recent_auth_minutes": 600,
    "pending_sign_in_minutes": 600,
    "code_valid_minutes": 600,
    "password_reset_valid_minutes": 600,
    "plugins": {"patient_portal": {"session_idle_minutes": 600}},
}
# Fuzzing is not about the cost of a hash: argon2id at its lowest cost (the real parameters are tested elsewhere).
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=16)


# --- the routes ------------------------------------------------------------------------------------------------------


def _post_rules() -> list[tuple[str, tuple[str, ...]]]:
    """(endpoint, URL arguments) of every POST route of an app with every installed plugin."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"instance_path": folder, "secret_key": "collect", "database_url": "sqlite://"})
        return sorted(
            {(r.endpoint, tuple(sorted(r.arguments))) for r in app.url_map.iter_rules() if "POST" in r.methods}
        )


def _section_slugs() -> list[str]:
    try:
        from pfcore_plugins.charts.sections import SECTIONS
    except ImportError:  # pragma: no cover - charts not installed
        return []
    return sorted(SECTIONS)


# A chart section's routes are one route per section, each with its own form.
URL_VARIANTS = {"slug": _section_slugs()}
TARGETS = [
    f"{endpoint}[{arg}={value}]" if arg else endpoint
    for endpoint, arguments in _post_rules()
    for arg, values in ([(a, URL_VARIANTS[a]) for a in arguments if a in URL_VARIANTS] or [(None, [None])])
    for value in values
]

# Where each route is called: by default the caller the access rule lets in.
CONTEXT_BY_RULE = {
    "public": "anonymous",
    "signed_in": "admin",
    "admin": "admin",
    "practice": "admin",
    "licensed": "level4",
    "portal": "portal",
}
CONTEXT_OF = {
    "core.unlock": "locked",
    "emergency_access.activate_view": "designee",
    "mfa_totp.remove": "totp_user",
    "mfa_webauthn.passkey_verify": "passkey",
    # emailed links, at the step each page belongs to
    "core.accept_invitation": "invitation_new",
    "core.invitation_phone": "invitation_code",
    "core.invitation_phone_code": "invitation_code",
    "core.invitation_phone_resend": "invitation_code",
    "core.invitation_account": "invitation_account",
    "core.report_invitation": "invitation_to_report",
    "core.password_reset_verify": "reset_code",
    "core.password_reset_verify_code": "reset_code",
    "core.password_reset_verify_resend": "reset_code",
    "core.password_reset": "reset_password",
    "core.confirm_email_change": "email_change",
    "core.confirm_email_change_code": "email_change",
    "core.confirm_email_change_resend": "email_change",
    # half-finished sign-ins
    "mfa_sms.challenge_sms": "second_factor",
    "mfa_sms.challenge_voice": "second_factor",
    "mfa_totp.challenge": "second_factor",
    "mfa_recovery.challenge": "second_factor",
    "mfa_webauthn.authenticate_options": "second_factor",
    "mfa_webauthn.authenticate": "second_factor",
    "mfa_sms.enrol": "enrolment",
    "mfa_sms.enrol_code": "enrolment",
    "mfa_totp.setup": "enrolment",
    "mfa_webauthn.register_options": "enrolment",
    "mfa_webauthn.register": "enrolment",
    # the patient portal's links and its half-finished sign-in
    "patient_portal_public.register": "portal_invitation",
    "patient_portal_public.register_phone": "portal_invitation",
    "patient_portal_public.register_code": "portal_invitation",
    "patient_portal_public.register_create": "portal_verified",
    "patient_portal_public.register_link": "portal_verified",
    "patient_portal_public.reset_password": "portal_reset",
    "patient_portal_public.signin_code": "portal_code",
}
# URL ids other than the world's defaults (FuzzWorld attributes), where the route needs a particular row.
URL_VALUES = {
    "core.resend_invitation": {"user_id": "invited_user_id"},
    "core.end_browser": {"browser_id": "admin_other_browser_id"},
    "core.remove_trusted_browser": {"browser_id": "trusted_browser_id"},
    "charts.share_lab_result": {"entry_id": "lab_result_id"},
    "charts.update_entry": {"entry_id": "section_entry_id"},  # the entry of the route's section
    "mfa_webauthn.remove_key": {"key_id": "admin_key_id"},
    "mfa_totp.remove_for_user": {"user_id": "second_factor_user_id"},
    "patient_portal.resend": {"patient_id": "invited_patient_id"},
    "patient_portal.cancel": {"patient_id": "invited_patient_id"},
    "patient_portal.revoke": {"patient_id": "portal_patient_id"},
    "core.change_plugin_settings": {"name": "plugin_with_practice_settings"},
}
# POST routes that take no field besides the CSRF token: they get stray fields only.
# (Some answer with a page whose other forms take their values from the posted data: those read fields, and
# are fuzzed as form routes.)
FIELDLESS = {
    "core.audit_verify",
    "core.confirm_email_change_resend",
    "core.end_browser",
    "core.end_other_browsers",
    "core.invitation_phone_resend",
    "core.password_reset_verify_resend",
    "core.remove_trusted_browser",
    "core.report_invitation",
    "core.resend_invitation",
    "core.rotate_pac",
    "core.signout",
    "emergency_access.deactivate_other",
    "emergency_access.deactivate_own",
    "licensing.revoke_slot",
    "licensing.revoke_user",
    "mfa_recovery.codes",
    "mfa_totp.remove_for_user",
    "mfa_webauthn.authenticate_options",
    "mfa_webauthn.passkey_options",
    "mfa_webauthn.remove_key",
    "patient_portal.cancel",
    "patient_portal.resend",
    "patient_portal.revoke",
    "patient_portal_public.signout",
}
# What a refusal may write, by design: failed-attempt counters and lock-outs (NIST SP 800-63B throttling).
# Every request of a signed-in browser notes when it was last seen.
REFUSAL_BOOKKEEPING = {
    "users": {"failed_sign_ins", "locked_until", "locked_out"},
    "verification_codes": {"attempts"},
    "patient_portal_accounts": {"failed_sign_ins", "locked_until"},
    "login_sessions": {"last_seen_at"},
    "patient_portal_sessions": {"last_seen_at"},
    "patient_portal_invitations": {"failed_attempts"},
}
AUDIT_TABLES = audit.TABLES
# GET forms (search, filters) change nothing but the bookkeeping of every page load (reads are audited).
GET_BOOKKEEPING = BOOKKEEPING | {"patient_portal_sessions"}
GET_FORM_CALLERS = ("admin", "portal")

# Plausible values by field name, beside the ones the rendered forms carry: they let some inputs pass
# the first checks and reach the later ones.
HINTS = {
    "email": ["new.person@example.com"],
    "confirm_email": ["new.person@example.com"],
    "password": [PASSWORD, SIGNUP["password"], PORTAL_PASSWORD],
    "confirm": [PASSWORD],
    "current": [SIGNUP["password"]],
    "phone": ["415-555-0142", "+14155550123"],
    "date_of_birth": ["04/12/1980", "1980-04-12"],
    "first_name": ["Fuzz"],
    "last_name": ["Tester"],
    "username": ["fuzz.tester"],
    "code": ["123456"],
    "pin": ["123456"],
    "reason": ["Fuzzing"],
    "quantity": ["1"],
    "minutes": ["15"],
    "access_level": ["2"],
    "name": ["Fuzz key"],
    "visit_date": ["2026-03-01"],
    "starts_at": ["2026-03-01T10:00"],
    "practice_name": ["Fuzz Clinic"],
    "specialty": ["Pediatrics"],
    "channel": ["sms", "voice"],
}


# --- the inputs ------------------------------------------------------------------------------------------------------

UNICODE = [
    "\u202eevil.exe\u202c",
    "مرحبا بالعالم",
    "שלום עולם",
    "👩🏽\u200d⚕️💉🩺",
    "e\u0301\u0301\u0301\u0301",
    "Z\u0334\u0327\u031ba\u0338\u0322l\u0337g\u0335o",
    "\ufeffbom",
    "ﬁﬂ ǅ",
    "１２３４５６",
    "٣٤٥٦٧٨",
    "\u2028\u2029",
    "𝕬𝖉𝖆 𝕷𝖔𝖛𝖊𝖑𝖆𝖈𝖊",
    "İıßẞ",
    "a\u200b\u200c\u200db",
    "漢字テスト",
    "\U0010fffd\ufffe\uffff",
    "Ⅻ½²",
]
CONFUSED = [
    "0",
    "-1",
    "1",
    "2",
    "4",
    "007",
    "999999999999999999999999999999",
    "9223372036854775808",
    "-9223372036854775809",
    "2147483648",
    "1e309",
    "NaN",
    "-inf",
    "1.5",
    "0x1F",
    "1_000",
    "+1",
    "true",
    "on",
    "null",
    "None",
    "[]",
    "{}",
    '{"id": "x", "type": "public-key", "response": {}}',
    "[1, 2]",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "../../../etc/passwd",
    "%00",
    "%s%n",
    "{{7*7}}",
    "2026-02-30",
    "0000-00-00",
    "9999-12-31",
    "0001-01-01",
    "1800-01-01",
    "12/31/1899",
    "13/45/2013",
    "2026-01-01T25:61",
    "99999-01-01",
    "²",
    "12²",
    "٣",
    " ",
    "\t\n",
    "",
    "@",
    "a@",
    "@b",
    "x@y",
    "a@b.c" * 60,
]
HUGE_UNITS = ["a", "9", "é", "😀", "\x00", "<&>", "a@b.co "]


def _text(max_size: int):
    return st.text(st.characters(codec="utf-8"), max_size=max_size)  # no surrogates: a form cannot carry one


def fuzz_values():
    """One form value, as likely random as Unicode, huge, NUL-containing or type-confused text."""
    return st.one_of(
        _text(40),
        st.one_of(
            st.sampled_from(UNICODE), st.text(st.characters(min_codepoint=0x80, codec="utf-8"), min_size=1, max_size=20)
        ),
        st.builds(
            lambda unit, size: unit * (size // len(unit)),
            st.sampled_from(HUGE_UNITS),
            st.sampled_from([10_000, 100_000]),
        ),
        st.one_of(
            st.builds(lambda a, b: f"{a}\x00{b}", _text(12), _text(12)),
            st.text(st.characters(max_codepoint=31), min_size=1, max_size=8),
        ),
        st.one_of(st.sampled_from(CONFUSED), st.integers(-(2**70), 2**70).map(str), st.floats().map(str)),
    )


@dataclasses.dataclass(frozen=True)
class FuzzInput:
    """One request: the form items (repeated keys allowed), how it is sent, and whether by htmx."""

    items: tuple[tuple[str, str], ...]
    htmx: bool = False
    # "form" (urlencoded), "multipart", "file" (multipart, the last field as an uploaded file) or "json"
    encoding: str = "form"
    document: Any = None  # "json": this JSON document instead of the items as an object

    def __repr__(self) -> str:  # huge values shortened, so a failure stays readable
        shown = [(k, v if len(v) <= 80 else f"{v[:20]!r}*{len(v)}") for k, v in self.items]
        document = f", document={self.document!r}" if self.document is not None else ""
        return f"FuzzInput(items={shown!r}, htmx={self.htmx}, encoding={self.encoding!r}{document})"


FUZZ_VALUES = fuzz_values()
EXTRA_FIELDS = st.lists(
    st.tuples(
        st.one_of(
            _text(12).filter(bool),
            st.sampled_from(["csrf_token", "id", "practice_id", "user_id", "is_admin", "next", "__proto__", "\x00"]),
        ),
        FUZZ_VALUES,
    ),
    max_size=2,
)
# A search or filter page that passed its query string on to url_for (to build its links) let the address choose
# url_for's own arguments: these names go into the stray fields of the GET forms (issue #23).
URL_FOR_NAMES = ["endpoint", "values", "_method", "_anchor", "_external", "_scheme", "cursor"]
GET_EXTRA_FIELDS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(URL_FOR_NAMES), _text(12).filter(bool)),
        st.one_of(st.sampled_from(["1", "x", "DELETE", "javascript", "https"]), FUZZ_VALUES),
    ),
    max_size=3,
)
# JSON bodies and files are refused before any view (415): most inputs are forms.
ENCODINGS = st.sampled_from(["form"] * 5 + ["multipart", "file", "json"])
# JSON can carry what a form cannot: numbers, lists, objects, null, lone surrogates (as \ud800 escapes).
JSON_DOCUMENTS = st.one_of(
    st.none(),
    st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            _text(20),
            st.sampled_from(["\ud800", "a\udfff", "\udce2\udc80"]),
        ),
        lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(_text(8), children, max_size=3)),
        max_leaves=6,
    ),
)


def fuzz_inputs(fields: dict[str, tuple[str, ...]], extra_fields=EXTRA_FIELDS):
    """Inputs for a route whose fields offer these plausible values: each field plausible, fuzzed, repeated or
    missing, and a stray field or two (``extra_fields``)."""

    def field(samples: tuple[str, ...]):
        plausible = st.sampled_from(samples) if samples else st.just("")
        # Plausible values too, so that the other fields' checks are passed and this one's reached.
        value = st.one_of(plausible, FUZZ_VALUES, st.builds(lambda a, b: a + b, plausible, FUZZ_VALUES))
        return st.one_of(value.map(lambda v: [v]), st.just([]), st.lists(value, min_size=2, max_size=3))

    strategies = [(name, field(samples)) for name, samples in fields.items()]

    @st.composite
    def inputs(draw):
        items = [(name, value) for name, strategy in strategies for value in draw(strategy)]
        items.extend(draw(extra_fields))
        # Big inputs are rare by chance; once in a while one over the request limit (2 MiB): 413.
        if draw(st.integers(0, 40)) == 40:
            items.append(("padding", "x" * (2 * 1024 * 1024 + 1)))
        encoding = draw(ENCODINGS)
        return FuzzInput(
            tuple(items),
            htmx=draw(st.booleans()),
            encoding=encoding,
            document=draw(JSON_DOCUMENTS) if encoding == "json" else None,
        )

    return inputs()


# Inputs that once answered 500 or led off-site (bugs found by this suite, fixed): endpoint -> inputs.
# An audit report cursor (base64 JSON) of the right time and the id 10**30.
ID_10_30_CURSOR = "WyIyMDI2LTAxLTAxVDAwOjAwOjAwLjAwMDAwMFoiLCAxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwXQ=="
NAMELESS_PART = FuzzInput((("\n", ""),), encoding="multipart")  # a multipart part without a (readable) name
REGRESSIONS: dict[str, list[FuzzInput]] = {
    # Flask-WTF's CSRF check failed on the None key werkzeug gives a nameless part: 500 on every POST route.
    # Flask-WTF fills forms from JSON bodies and uploaded files too: a number, a list or a file where text
    # is expected, or a lone surrogate (rendered back into the page), failed any form with a 500.
    "core.signup": [
        NAMELESS_PART,
        FuzzInput((("practice_name", "x"),), encoding="file"),
        FuzzInput((), encoding="json", document={"practice_name": 5, "email": ["a", 1]}),
        FuzzInput((), encoding="json", document=[1, 2]),
    ],
    "patient_portal_public.signin_code": [FuzzInput((), encoding="json", document={"code": "\ud800", "next": ""})],
    "charts.add_entry": [NAMELESS_PART],
    # An id past 2**63 reached SQLite (OverflowError), one past 2**31 PostgreSQL ("integer out of range").
    "emergency_access.grant": [
        FuzzInput((("user_id", "9223372036854775808"),)),
        FuzzInput((("user_id", "2147483648"),)),
    ],
    "licensing.assign_slot": [
        FuzzInput((("user_id", "999999999999999999999999999999"),)),
        FuzzInput((("user_id", "2147483648"),)),
    ],
    # A newline in the page to return to went into the Location header (500); a tab led off-site.
    "emergency_access.allow": [
        FuzzInput((("allow", "1"), ("return_to", "/settings/users/3\n"))),
        FuzzInput((("allow", "1"), ("return_to", "/\t/evil.example.com"))),
    ],
    # PostgreSQL refuses NUL in text: it reached the database from these fields (500 on PostgreSQL only).
    "charts.save_note": [FuzzInput((("subjective", "a\x00b"),))],
    "charts.add_document": [FuzzInput((("title", "Letter"), ("body", "\x00")))],
    "emergency_access.activate_view": [FuzzInput((("reason", "\x00"),))],
    "mfa_webauthn.register_options": [FuzzInput((("name", "\x00"),))],
    "patient_portal_public.signin": [FuzzInput((("password", PORTAL_PASSWORD), ("username", "\x00")))],
    "patient_portal_public.register_link": [FuzzInput((("password", "0"), ("username", "\x00")))],
    "login_pac.signin": [
        FuzzInput((("pac", "ABCDE\x00GHIJ"), ("username", "x"), ("password", "x"))),
        FuzzInput((("pac", "X"), ("username", "lev\x00"), ("password", "x"))),
    ],
    "login_email.signin": [FuzzInput((("email", "grace\x00@sunrise.example.com"), ("password", "x")))],
    "core.accept_invitation": [FuzzInput((("pac", "ABCDE\x00GHIJ"),))],
    # The search and filter forms (GET): the same ids and NUL (in a search: PostgreSQL).
    "GET core.audit_report": [
        FuzzInput((("user", "²"),)),
        FuzzInput((("user", "99999999999999999999"),)),
        FuzzInput((("patient", "99999999999999999999"),)),
        FuzzInput((("patient", "a\x00"),)),
        FuzzInput((("action", "a\x00b"),)),
        # url_for's own arguments from the address; a forged cursor (10**30 as the id, a
        # number as the time); a To date with no next day (issue #23).
        FuzzInput((("endpoint", "x"),)),
        FuzzInput((("_method", "DELETE"),)),
        FuzzInput((("cursor", "WzUsIDFd"),)),
        FuzzInput((("cursor", ID_10_30_CURSOR),)),
        FuzzInput((("end", "9999-12-31"),)),
    ],
    "GET charts.patients": [FuzzInput((("q", "\x00"),))],
    "GET licensing.search": [FuzzInput((("q", "a\x00"),))],
    # int() of a 10,000-digit or a superscript "number" (ValueError), SQLite of a 20-digit one.
    "patient_portal.save_invite_settings": [
        FuzzInput((("users", "9" * 10_000),)),
        FuzzInput((("users", "²"),)),
        FuzzInput((("users", "99999999999999999999"), ("may_invite", "99999999999999999999"))),
    ],
}


# --- which fields a view reads ---------------------------------------------------------------------------------------

FORM_READS: set[str] = set()


class RecordingForm(ImmutableMultiDict):
    """``request.form`` that notes every field name the view asks for."""

    def __getitem__(self, key):
        FORM_READS.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        FORM_READS.add(key)
        return super().__contains__(key)

    def get(self, key, default=None, type=None):
        FORM_READS.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):
        FORM_READS.add(key)
        return super().getlist(key, type)


def recording(request_class):
    class RecordingRequest(request_class):
        def _load_form_data(self):
            super()._load_form_data()
            self.__dict__["form"] = RecordingForm(self.__dict__["form"])

    return RecordingRequest


class FormFinder(html.parser.HTMLParser):
    """The forms of a page, htmx ones too: (method, action path) -> field name -> the values it offers."""

    def __init__(self, page_path: str):
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._form: tuple[str, str | None] | None = None
        self._select: tuple | None = None

    def _target(self, method: str, action: str | None) -> tuple[str, str]:
        target = (method, urlsplit(action or self.page_path).path)
        self.forms.setdefault(target, {})
        return target

    def _add(self, target: tuple[str, str], name: str, value: str | None) -> None:
        values = self.forms[target].setdefault(name, [])
        if value is not None and value not in values:
            values.append(value)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            post = a.get("hx-post") or (a.get("method") or "").lower() == "post"
            self._form = (
                self._target("POST", a.get("hx-post") or a.get("action"))
                if post
                else self._target("GET", a.get("hx-get") or a.get("action"))
            )
            return
        if a.get("hx-post"):
            target = self._target("POST", a["hx-post"])
        elif a.get("hx-get") and a.get("name"):
            target = self._target("GET", a["hx-get"])
        elif a.get("formaction") and self._form:
            target = self._target(self._form[0], a["formaction"])
        else:
            target = self._form
        if target is None:
            return
        name = a.get("name")
        if tag in ("input", "button", "textarea", "select") and name:
            kind = (a.get("type") or "").lower()
            value = a.get("value", "on" if kind in ("checkbox", "radio") else "")
            self._add(target, name, None if tag == "select" else value)
            if tag == "select":
                self._select = (target, name)
        elif tag == "option" and self._select:
            self._add(*self._select, a.get("value", ""))
        if a.get("hx-vals"):
            try:
                for key, value in json.loads(a["hx-vals"]).items():
                    self._add(target, key, str(value))
            except (ValueError, AttributeError):
                pass

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


# --- the database: a baseline, what changed, and putting it back ------------------------------------------------------


@dataclasses.dataclass
class TableChange:
    added: list
    removed: list
    changed: list


class Tables:
    """Every table's rows, read and written on a connection of its own (not the app's)."""

    def __init__(self, url: str):
        self.engine = create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
        self.postgres = self.engine.dialect.name == "postgresql"
        self.tables = list(Base.metadata.sorted_tables)
        self.columns = {t.name: [c.key for c in t.columns] for t in self.tables}
        self.keys = {t: [list(t.columns).index(c) for c in t.primary_key.columns] for t in self.tables}
        # A cheap question first: has anything been written at all? (Most refusals write nothing.)
        self._watch = self.engine.raw_connection()
        if self.postgres:
            self._watch.driver_connection.autocommit = True
        self.baseline = self.read()

    def _write_mark(self):
        """Changes whenever a write commits: SQLite's data version as this connection sees other connections'
        commits; PostgreSQL's WAL position (the whole server's: a write elsewhere only costs a full read)."""
        cursor = self._watch.cursor()
        cursor.execute("SELECT pg_current_wal_insert_lsn()" if self.postgres else "PRAGMA data_version")
        mark = cursor.fetchone()[0]
        cursor.close()
        return mark

    def read(self) -> dict[str, dict[tuple, tuple]]:
        """table -> primary key -> row (values in column order)."""
        self.mark = self._write_mark()
        rows = {}
        with self.engine.connect() as conn:
            for table, key in self.keys.items():
                rows[table.name] = {
                    tuple(row[i] for i in key): tuple(row)
                    for row in conn.execute(select(table).order_by(*table.primary_key.columns))
                }
        return rows

    def row(self, table_name: str, values: tuple) -> dict:
        return dict(zip(self.columns[table_name], values))

    def rebase(self) -> None:
        self.baseline = self.read()

    def changes(self) -> tuple[dict[str, TableChange], dict[str, dict[tuple, tuple]]]:
        if self._write_mark() == self.mark:
            return {}, {}
        now = self.read()
        changes = {}
        for name, before in self.baseline.items():
            after = now[name]
            if after == before:
                continue
            changes[name] = TableChange(
                added=[k for k in after if k not in before],
                removed=[k for k in before if k not in after],
                changed=[k for k in after if k in before and after[k] != before[k]],
            )
        return changes, now

    def restore(self, changes: dict[str, TableChange]) -> None:
        """Put the changed rows back as they were in the baseline, foreign keys unchecked meanwhile (SQLite
        checks none on this engine's connections: pfcore switches them on for its own)."""
        with self.engine.begin() as conn:
            if self.postgres:
                conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in self.tables:
                change = changes.get(table.name)
                if change is None:
                    continue
                key = list(table.primary_key.columns)
                for values in change.added + change.changed:
                    conn.execute(delete(table).where(and_(*[c == v for c, v in zip(key, values)])))
                rows = [self.row(table.name, self.baseline[table.name][k]) for k in change.removed + change.changed]
                if rows:
                    conn.execute(table.insert(), rows)
        self.mark = self._write_mark()

    def close(self) -> None:
        self._watch.close()
        self.engine.dispose()


# --- the world: every caller, at every step ---------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """A browser at the step a route belongs to: its cookies (put back before each input) and CSRF token."""

    name: str
    browser: Browserless
    token: str
    cookies: dict
    pages: tuple[str, ...] = ()
    url_values: dict = dataclasses.field(default_factory=dict)

    def reset(self) -> None:
        self.browser.client._cookies = dict(self.cookies)


@dataclasses.dataclass
class Target:
    name: str
    endpoint: str
    context: Context
    path: str
    fields: dict[str, tuple[str, ...]]
    method: str = "POST"


class FuzzWorld(World):
    """The access-control world (two practices, staff, a portal patient), every plugin switched on, and the
    half-finished sign-ins, emailed links and portal steps the other routes belong to."""

    def __init__(self, app, url: str, smtp):
        self.smtp = smtp
        super().__init__(app)
        for name in sorted(app.extensions["pfcore.plugins"].available):
            self._switch_on(self.admin_a, name)
        with app.app_context():
            self.pac = session().get(Practice, self.practice_a).pac
        self.contexts: dict[str, Context] = {}
        self._forms: dict[tuple[str, str], dict[tuple[str, str], dict[str, list[str]]]] = {}
        self.tables = Tables(url)

    # --- contexts, made on first use --------------------------------------------------------------------------------

    def context(self, name: str) -> Context:
        if name not in self.contexts:
            self.contexts[name] = getattr(self, f"_context_{name}")()
            self.tables.rebase()
        return self.contexts[name]

    def _context(
        self, name: str, browser: Browserless, *, token_page: str, pages: tuple[str, ...] = (), **url_values
    ) -> Context:
        token = browser.token(token_page)
        return Context(name, browser, token, dict(browser.client._cookies), pages, url_values)

    def _new_browser(self) -> Browserless:
        return Browserless(self.app.test_client())

    def _context_anonymous(self):
        return self._context("anonymous", self._new_browser(), token_page="/signup")

    def _context_admin(self):
        return self._context(
            "admin", self.admin_a, token_page="/dashboard", pages=self._pages("signed_in", "admin", "practice")
        )

    def _context_level4(self):
        return self._context("level4", self.level4, token_page="/dashboard")

    def _context_portal(self):
        return self._context("portal", self.portal, token_page="/portal/authenticator", pages=self._pages("portal"))

    def _context_designee(self):
        """A user the administrator allowed to use emergency access."""
        email = "dana@sunrise.example.com"
        user_id = add_active_user(
            self.app,
            first_name="Dana",
            last_name="Designee",
            email=email,
            username="dana",
            password=PASSWORD,
            access_level=2,
            phone="+14155550167",
        )
        response = self.admin_a.post(
            f"/emergency-access/users/{user_id}/allow", {"allow": "1"}, page="/emergency-access/"
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return self._context(
            "designee",
            self._signed_in_as(email, PASSWORD),
            token_page="/emergency-access/activate",
            pages=("/emergency-access/activate",),
        )

    def _context_totp_user(self):
        """A signed-in user with an authenticator app."""
        import pyotp

        assert self.second_factor_user_id
        browser = self._new_browser()
        sign_in_email(browser, "vera@sunrise.example.com", PASSWORD, second_factor=False)
        response = browser.post("/mfa-totp/", {"code": pyotp.TOTP(self.vera_totp_secret).now()})
        assert location(response).endswith("/dashboard"), location(response)
        return self._context("totp_user", browser, token_page="/mfa-totp/setup", pages=("/mfa-totp/setup",))

    def _context_passkey(self):
        """A browser that asked for a passkey challenge."""
        browser = self._new_browser()
        assert browser.post("/mfa-webauthn/passkey/options", page="/mfa-webauthn/passkey").status_code == 200
        return self._context("passkey", browser, token_page="/mfa-webauthn/passkey")

    def _context_locked(self):
        """Another browser of practice A's administrator, locked (the lock screen asks for the password)."""
        browser = self._signed_in_as(SIGNUP["email"], SIGNUP["password"])
        assert location(browser.get("/lock")) in ("", "/lock")
        return self._context("locked", browser, token_page="/lock", pages=("/lock",))

    def _context_second_factor(self):
        """A user with every second factor, whose password was right: the factor pages."""
        assert self.second_factor_user_id
        browser = self._new_browser()
        response = sign_in_email(browser, "vera@sunrise.example.com", PASSWORD, second_factor=False)
        assert location(response).endswith("/signin/verify"), location(response)
        assert browser.post("/mfa-sms/sms", {"action": "send"}).status_code == 200
        assert browser.post("/mfa-webauthn/authenticate/options", page="/signin/verify").status_code == 200
        return self._context(
            "second_factor",
            browser,
            token_page="/signin/verify",
            pages=(
                "/signin/verify",
                "/mfa-sms/sms",
                "/mfa-sms/voice",
                "/mfa-totp/",
                "/mfa-recovery/",
                "/mfa-webauthn/",
            ),
        )

    def _context_enrolment(self):
        """A user with no second factor, whose password was right: the enrolment pages, a code texted."""
        add_active_user(
            self.app,
            first_name="Enzo",
            last_name="Enrol",
            email="enzo@sunrise.example.com",
            username="enzo",
            password=PASSWORD,
        )
        browser = self._new_browser()
        response = sign_in_email(browser, "enzo@sunrise.example.com", PASSWORD, second_factor=False)
        assert location(response).endswith("/signin/enroll"), location(response)
        assert location(browser.post("/mfa-sms/enrol", {"phone": "+14155550161", "channel": "sms"})).endswith(
            "/mfa-sms/enrol/code"
        )
        assert (
            browser.post("/mfa-webauthn/register/options", {"name": "Blue key"}, page="/signin/enroll").status_code
            == 200
        )
        return self._context(
            "enrolment",
            browser,
            token_page="/signin/enroll",
            pages=("/signin/enroll", "/mfa-sms/enrol", "/mfa-sms/enrol/code", "/mfa-totp/setup"),
        )

    def _context_invitation_new(self):
        token = self._invitation_token
        return self._context("invitation_new", self._new_browser(), token_page=f"/invitation/{token}", token=token)

    def _context_invitation_code(self):
        """The invited user entered the Practice ID and a phone: a code was texted."""
        token = self._invitation_token
        browser = self._new_browser()
        assert location(browser.post(f"/invitation/{token}", {"pac": self.pac})).endswith("/account")
        response = browser.post(f"/invitation/{token}/phone", {"phone": "+14155550162", "channel": "sms"})
        assert location(response).endswith("/phone/code"), location(response)
        return self._context(
            "invitation_code",
            browser,
            token_page=f"/invitation/{token}/phone/code",
            pages=(f"/invitation/{token}/phone",),
            token=token,
        )

    def _context_invitation_account(self):
        """Another invited user, phone verified: the username and password step."""
        email = "ines@sunrise.example.com"
        token = self._invite(email, "Ines")
        browser = self._new_browser()
        browser.post(f"/invitation/{token}", {"pac": self.pac})
        browser.post(f"/invitation/{token}/phone", {"phone": "+14155550163", "channel": "sms"})
        response = browser.post(
            f"/invitation/{token}/phone/code", {"code": latest_texted_code(self.app, "+14155550163")}
        )
        assert location(response).endswith(f"/invitation/{token}/account"), location(response)
        return self._context("invitation_account", browser, token_page=f"/invitation/{token}/account", token=token)

    def _context_invitation_to_report(self):
        """An invitation of its own: reporting it ends it, which the other invitation contexts must not see."""
        token = self._invite("rex@sunrise.example.com", "Rex")
        return self._context(
            "invitation_to_report", self._new_browser(), token_page=f"/invitation/{token}", token=token
        )

    def _context_reset_code(self):
        """A password-reset link opened: a code texted to the verified phone."""
        token = self._reset_link("rita@sunrise.example.com", "Rita", "+14155550164")
        return self._code_texted("reset_code", token, f"/password-reset/{token}/verify")

    def _context_reset_password(self):
        """A password-reset link whose code was right: the new password."""
        token = self._reset_link("rosa@sunrise.example.com", "Rosa", "+14155550165")
        browser = self._new_browser()
        browser.post(f"/password-reset/{token}/verify", {"channel": "sms"})
        response = browser.post(
            f"/password-reset/{token}/verify/code", {"code": latest_texted_code(self.app, "+14155550165")}
        )
        assert location(response) == f"/password-reset/{token}", location(response)
        return self._context("reset_password", browser, token_page=f"/password-reset/{token}", token=token)

    def _context_email_change(self):
        """An email-change link opened: a code texted to the verified phone."""
        user_id = add_active_user(
            self.app,
            first_name="Emil",
            last_name="Change",
            email="emil@sunrise.example.com",
            username="emil",
            password=PASSWORD,
            phone="+14155550166",
        )
        new = "emil.new@example.com"
        response = self.admin_a.post(
            f"/settings/users/{user_id}/email", {"email": new, "confirm_email": new}, page=f"/settings/users/{user_id}"
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        token = last_link(self.smtp.inbox, new, "/account/email-change/").rsplit("/", 1)[1]
        return self._code_texted("email_change", token, f"/account/email-change/{token}")

    def _code_texted(self, name: str, token: str, choice_page: str) -> Context:
        """A browser that opened an emailed link and chose to have a code texted (``choice_page``/code asks)."""
        browser = self._new_browser()
        response = browser.post(choice_page, {"channel": "sms"})
        assert location(response) == f"{choice_page}/code", location(response)
        return self._context(name, browser, token_page=f"{choice_page}/code", pages=(choice_page,), token=token)

    def _context_portal_invitation(self):
        """A patient's registration link, a code texted to the invitation's phone."""
        from ..support.portal import PATIENT_PHONE, US_BIRTH_DATE

        token = self._portal_invitation_token
        browser = self._new_browser()
        response = browser.post(
            f"/portal/register/{token}/phone",
            {"phone": PATIENT_PHONE, "date_of_birth": US_BIRTH_DATE, "channel": "sms"},
        )
        assert "/code" in location(response), (response.status_code, response.get_data(as_text=True)[:2000])
        return self._context(
            "portal_invitation",
            browser,
            token_page=f"/portal/register/{token}",
            pages=(f"/portal/register/{token}/phone", f"/portal/register/{token}/code"),
            token=token,
        )

    def _context_portal_verified(self):
        """Another patient's registration link, PIN and date of birth right: create or link an account."""
        from ..support.portal import invite, verify_with_pin

        patient_id = add_patient(self.app, first_name="Paz", last_name="Verified", email="paz@example.com")
        token, pin = invite(self.app, patient_id, practice_id=self.practice_a, email="paz@example.com")
        browser = self._new_browser()
        assert verify_with_pin(browser, token, pin).status_code == 302
        return self._context(
            "portal_verified",
            browser,
            token_page=f"/portal/register/{token}/create",
            pages=(f"/portal/register/{token}/link",),
            token=token,
        )

    def _context_portal_reset(self):
        from ..support.access_world import PATIENT_USERNAME

        browser = self._new_browser()
        assert browser.post("/portal/password-reset", {"email": PATIENT_USERNAME}).status_code == 200
        token = last_link(self.smtp.inbox, PATIENT_USERNAME, "/portal/password-reset/").rsplit("/", 1)[1]
        return self._context("portal_reset", browser, token_page=f"/portal/password-reset/{token}", token=token)

    def _context_portal_code(self):
        """A portal account with an authenticator app, whose password was right: the code step."""
        import pyotp

        from pfcore_plugins.patient_portal import portal_totp
        from pfcore_plugins.patient_portal.models import PortalAccount

        from ..support.access_world import OTHER_PATIENT_USERNAME
        from ..support.portal import portal_sign_in

        with self.app.test_request_context():
            account = (
                session().scalars(select(PortalAccount).where(PortalAccount.username == OTHER_PATIENT_USERNAME)).one()
            )
            portal_totp.enable(account, pyotp.random_base32(), 0)
            session().commit()
        browser = self._new_browser()
        response = portal_sign_in(browser, OTHER_PATIENT_USERNAME)
        assert location(response).startswith("/portal/signin/code"), location(response)
        return self._context("portal_code", browser, token_page="/portal/signin/code")

    # --- rows some routes need ----------------------------------------------------------------------------------------

    @functools.cached_property
    def second_factor_user_id(self) -> int:
        """Vera: a verified phone, an authenticator app, recovery codes and a security key."""
        import pyotp

        from pfcore_plugins.mfa_recovery.recovery_codes import generate
        from pfcore_plugins.mfa_totp import otp

        user_id = add_active_user(
            self.app,
            first_name="Vera",
            last_name="Factors",
            email="vera@sunrise.example.com",
            username="vera",
            password=PASSWORD,
            phone="+14155550160",
        )
        self.vera_totp_secret = pyotp.random_base32()
        with self.app.test_request_context():
            user = session().get(User, user_id)
            otp.save(user, self.vera_totp_secret, 0)
            generate(user)
            session().commit()
        self._add_key(user_id, "Vera's key")
        return user_id

    @functools.cached_property
    def admin_key_id(self) -> int:
        return self._add_key(self.admin_a_id, "Admin's key")

    @functools.cached_property
    def admin_other_browser_id(self) -> int:
        from pfcore.models import LoginSession

        self.context("locked")
        with self.app.app_context():
            return (
                session()
                .scalars(
                    select(LoginSession.id)
                    .where(LoginSession.user_id == self.admin_a_id)
                    .order_by(LoginSession.id.desc())
                )
                .first()
            )

    @functools.cached_property
    def trusted_browser_id(self) -> int:
        import datetime as dt

        from pfcore.models import TrustedBrowser
        from pfcore.security.tokens import new_token, token_hash

        with self.app.app_context():
            row = TrustedBrowser(
                token_hash=token_hash(new_token()),
                user_id=self.admin_a_id,
                practice_id=self.practice_a,
                expires_at=utcnow() + dt.timedelta(days=30),
            )
            session().add(row)
            session().commit()
            return row.id

    # Settings > Plugins has a form for it (its per-practice setting ``allowed``).
    plugin_with_practice_settings = "login_pac"

    @functools.cached_property
    def lab_result_id(self) -> int:
        return self.section_entry_ids["lab-results"]

    def section_entry_id(self, values: dict) -> int:
        return self.section_entry_ids[values["slug"]]

    @functools.cached_property
    def section_entry_ids(self) -> dict[str, int]:
        """One entry in every chart section of the world's patient."""
        from pfcore_plugins.charts.models import ChartEntry
        from pfcore_plugins.charts.sections import SECTIONS

        ids = {}
        with self.app.app_context():
            for slug, spec in SECTIONS.items():
                entry = ChartEntry(
                    practice_id=self.practice_a,
                    patient_id=self.ids["patient_id"],
                    kind=spec.kind,
                    data={name: "" for name in spec.fields},
                )
                session().add(entry)
                session().flush()
                ids[slug] = entry.id
            session().commit()
        return ids

    @functools.cached_property
    def invited_user_id(self) -> int:
        self._invitation_token  # noqa: B018 - made with the invitation
        with self.app.app_context():
            return session().scalars(select(User.id).where(User.email == "ivy@sunrise.example.com")).one()

    @functools.cached_property
    def _invitation_token(self) -> str:
        return self._invite("ivy@sunrise.example.com", "Ivy")

    @functools.cached_property
    def invited_patient_id(self) -> int:
        self._portal_invitation_token  # noqa: B018
        return self._portal_invitation_patient

    @functools.cached_property
    def _portal_invitation_token(self) -> str:
        from ..support.portal import invite

        self._portal_invitation_patient = add_patient(
            self.app, first_name="Pia", last_name="Invited", email="pia@example.com"
        )
        token, _pin = invite(
            self.app, self._portal_invitation_patient, practice_id=self.practice_a, email="pia@example.com"
        )
        return token

    @property
    def portal_patient_id(self) -> int:
        return self.ids["patient_id"]

    def _invite(self, email: str, first_name: str) -> str:
        response = self.admin_a.post(
            "/settings/users/new",
            {"first_name": first_name, "last_name": "Invited", "email": email, "access_level": "2"},
        )
        assert response.status_code in (200, 302), response.get_data(as_text=True)
        return last_link(self.smtp.inbox, email, "/invitation/").rsplit("/", 1)[1]

    def _reset_link(self, email: str, first_name: str, phone: str) -> str:
        user_id = add_active_user(
            self.app,
            first_name=first_name,
            last_name="Reset",
            email=email,
            username=first_name.lower(),
            password=PASSWORD,
            phone=phone,
        )
        response = self.admin_a.post(f"/settings/users/{user_id}/reset-password", page=f"/settings/users/{user_id}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return last_link(self.smtp.inbox, email, "/password-reset/").rsplit("/", 1)[1]

    def _add_key(self, user_id: int, name: str) -> int:
        from pfcore_plugins.mfa_webauthn.models import WebAuthnCredential

        with self.app.app_context():
            key = WebAuthnCredential(
                practice_id=self.practice_a,
                user_id=user_id,
                name=name,
                credential_id=secrets.token_urlsafe(32),
                public_key=b"\x00" * 77,
                sign_count=0,
                transports=["usb"],
                discoverable=False,
                user_handle=secrets.token_urlsafe(16),
            )
            session().add(key)
            session().commit()
            return key.id

    def _signed_in_as(self, email: str, password: str) -> Browserless:
        browser = self._new_browser()
        response = sign_in_email(browser, email, password)
        assert location(response).endswith("/dashboard"), location(response)
        return browser

    # --- pages and fields ---------------------------------------------------------------------------------------------

    def _pages(self, *rules: str) -> tuple[str, ...]:
        """Every page of these access rules (the ones with a side effect, and downloads, aside)."""
        skip = (
            "core.lock_screen",
            "core.audit_export",
            "core.signin",
            "core.index",
            "patient_portal_public.download",
            "patient_portal_public.download_file",
        )
        return tuple(
            self.path(rule)
            for rule in get_rules(self.app)
            if ACCESS_RULES.get(rule.endpoint) in rules and rule.endpoint not in skip
        )

    def forms_on(self, context: Context, pages: tuple[str, ...]) -> dict[tuple[str, str], dict[str, list[str]]]:
        """The forms on ``pages`` as the context's browser sees them: (method, action path) -> field -> values."""
        found: dict[tuple[str, str], dict[str, list[str]]] = {}
        for page in pages:
            if (context.name, page) not in self._forms:
                context.reset()
                response = context.browser.get(page)
                finder = FormFinder(page)
                if response.status_code == 200 and response.mimetype == "text/html":
                    finder.feed(response.get_data(as_text=True))
                self._forms[context.name, page] = finder.forms
                self.settle()
            for action, fields in self._forms[context.name, page].items():
                merged = found.setdefault(action, {})
                for name, values in fields.items():
                    merged.setdefault(name, [])
                    merged[name].extend(v for v in values if v not in merged[name])
        return found

    def target(self, name: str) -> Target:
        endpoint, _, variant = name.partition("[")
        context = self.context(CONTEXT_OF.get(endpoint) or CONTEXT_BY_RULE[ACCESS_RULES[endpoint]])
        values = dict(context.url_values)
        if variant:
            arg, value = variant.rstrip("]").split("=", 1)
            values[arg] = value
        for arg, attribute in URL_VALUES.get(endpoint, {}).items():
            value = getattr(self, attribute)
            values[arg] = value(values) if callable(value) else value
        path = self._build(endpoint, values)
        self.tables.rebase()  # rows made for this route (ids above) belong to the baseline
        forms = self.forms_on(context, context.pages + (path,))
        shown = forms.get(("POST", path)) or next(
            (f for (method, action), f in forms.items() if method == "POST" and self._endpoint_of(action) == endpoint),
            {},
        )
        reads: set[str] = set()
        for probe in [{}] + [{k: v[0] if v else "" for k, v in shown.items()}]:
            response, read = self.send(context, path, FuzzInput(tuple(probe.items())))
            self.settle()
            assert response.status_code < 500, (name, probe, response.status_code)
            reads |= read
        fields = {
            n: tuple(dict.fromkeys(shown.get(n, []) + HINTS.get(n, []) + self._hints(n)))
            for n in sorted((reads | set(shown)) - {"csrf_token"})
        }
        if endpoint in FIELDLESS:
            assert not reads - {"csrf_token"}, f"{name} reads {sorted(reads)}: take it out of FIELDLESS"
        else:
            assert reads - {"csrf_token"}, (
                f"{name} read no form field when called by the {context.name} context at {path} (answered "
                f"{response.status_code} {location(response)}): give it a context where it works (CONTEXT_OF, "
                f"URL_VALUES) or, if it takes no field, add it to FIELDLESS"
            )
        return Target(name, endpoint, context, path, fields)

    def _hints(self, field: str) -> list[str]:
        return {"pac": [self.pac], "user_id": [str(self.level1_id)]}.get(field, [])

    def _build(self, endpoint: str, values: dict) -> str:
        """The route's path: the world's ids and names (``World.path``), with ``values`` in their place."""
        rule = next(r for r in self.app.url_map.iter_rules(endpoint) if "POST" in r.methods)
        adapter = self.app.url_map.bind("pfcore.test")
        _endpoint, arguments = adapter.match(self.path(rule), method="POST")
        arguments.update({arg: value for arg, value in values.items() if arg in rule.arguments})
        return adapter.build(endpoint, arguments, method="POST")

    def _endpoint_of(self, path: str, method: str = "POST") -> str | None:
        try:
            return self.app.url_map.bind("pfcore.test").match(path, method=method)[0]
        except Exception:  # noqa: BLE001 - not a route, or not for POST
            return None

    # --- sending -------------------------------------------------------------------------------

    def get_form_targets(self) -> list[Target]:
        """The search and filter forms (GET) on the pages of the administrator and of the portal patient."""
        targets = []
        for name in GET_FORM_CALLERS:
            context = self.context(name)
            for (method, path), fields in sorted(self.forms_on(context, context.pages).items()):
                endpoint = self._endpoint_of(path, "GET")
                if method == "GET" and fields and endpoint not in ("static", None):
                    targets.append(
                        Target(
                            f"GET {endpoint}",
                            endpoint,
                            context,
                            path,
                            {n: tuple(dict.fromkeys(v + HINTS.get(n, []))) for n, v in sorted(fields.items())},
                            "GET",
                        )
                    )
        return targets

    def send(self, context: Context, path: str, fuzz: FuzzInput, method: str = "POST"):
        """Send ``fuzz`` as the context's browser; returns the response and the form fields the view read."""
        context.reset()
        headers = dict(HTMX) if fuzz.htmx else {}
        items = list(fuzz.items)
        FORM_READS.clear()
        if method == "GET":
            from werkzeug.datastructures import MultiDict

            response = context.browser.client.get(path, query_string=MultiDict(items), headers=headers)
            response.close()
            return response, set()
        if fuzz.htmx or fuzz.encoding != "form":
            headers["X-CSRFToken"] = context.token
        else:
            items.insert(0, ("csrf_token", context.token))
        client = context.browser.client
        if fuzz.encoding == "json":
            body: dict[str, Any] = {}
            for key, value in items:
                body.setdefault(key, []).append(value)
            document = (
                fuzz.document if fuzz.document is not None else {k: v[0] if len(v) == 1 else v for k, v in body.items()}
            )
            response = client.post(path, json=document, headers=headers)
        else:
            from werkzeug.datastructures import MultiDict

            if fuzz.encoding == "file" and items:
                name, value = items.pop()
                items.append((name, (io.BytesIO(value.encode("utf-8")), "fuzz.txt")))
            response = client.post(
                path,
                data=MultiDict(items),
                headers=headers,
                content_type=None if fuzz.encoding == "form" else "multipart/form-data",
            )
        response.close()
        return response, set(FORM_READS)

    def check(self, target: Target, fuzz: FuzzInput) -> None:
        """Send one input; never a 5xx, nothing written on a refusal, the audit chain intact; then put things back."""
        response, _read = self.send(target.context, target.path, fuzz, target.method)
        status = response.status_code
        where = f"{target.name} as {target.context.name} at {target.path}: {fuzz!r}"
        changes, now = self.tables.changes()
        try:
            assert status < 500, f"{status} from {where}\n{response.get_data(as_text=True)[:3000]}"
            for header in ("Location", "HX-Redirect"):
                to = response.headers.get(header, "").removeprefix("http://pfcore.test")
                assert not to or (to.startswith("/") and not to.startswith("//") and to.isprintable()), (
                    f"{header}: {to!r} leads off-site - {where}"
                )
            if target.method == "GET":
                assert set(changes) <= GET_BOOKKEEPING, f"GET {status} wrote {sorted(changes)} - {where}"
            elif 400 <= status < 500:
                problems = self._refusal_writes(changes, now)
                assert not problems, f"refusal {status} wrote {problems} - {where}"
            if any(t in changes for t in AUDIT_TABLES):
                with self.app.app_context():
                    result = audit.verify(session())
                assert result.intact, (
                    f"audit chain broken after {status}: {[p.describe() for p in result.problems]} - {where}"
                )
        finally:
            if changes:
                self.tables.restore(changes)

    def settle(self) -> None:
        """Put back whatever the last request changed."""
        changes, _ = self.tables.changes()
        if changes:
            self.tables.restore(changes)

    def _refusal_writes(self, changes: dict[str, TableChange], now) -> list[str]:
        problems = []
        for name, change in changes.items():
            before = {k: self.tables.row(name, v) for k, v in self.tables.baseline[name].items()}
            after = {k: self.tables.row(name, v) for k, v in now[name].items()}
            if name == "audit_events":
                outcomes = {after[k]["action"]: after[k]["outcome"] for k in change.added}
                if any(o != "failure" for o in outcomes.values()) or change.removed or change.changed:
                    problems.append(f"audit events {outcomes}")
                continue
            if name in AUDIT_TABLES:  # the chain head and the dimensions of the events above
                continue
            if change.added or change.removed:
                problems.append(f"{name}: {len(change.added)} rows added, {len(change.removed)} removed")
            allowed = REFUSAL_BOOKKEEPING.get(name, set())
            for key in change.changed:
                columns = {c for c in after[key] if after[key][c] != before[key][c]} - allowed
                if columns:
                    problems.append(f"{name} {key}: {sorted(columns)} changed")
        return problems

    def close(self) -> None:
        self.tables.close()


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_world(request, tmp_path_factory, sqlite_template, smtp, sms_webhook_server):
    folder = tmp_path_factory.mktemp("fuzz")
    url = fresh_database(request, request.param, folder, sqlite_template)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "HASHER", FAST_HASHER)
        patch.setattr(passwords, "_DUMMY_HASH", FAST_HASHER.hash("pfcore dummy password for equal timing"))
        app = create_app({**app_settings(folder / "instance", url, smtp, sms_webhook_server), **FUZZ_SETTINGS})
        app.config["TESTING"] = False
        app.request_class = recording(app.request_class)
        world = FuzzWorld(app, url, smtp)
        yield world
        world.close()
        app.extensions["pfcore.engine"].dispose()


def test_every_post_route_has_a_caller():
    """Each POST route is called where it works: a context by its access rule, or a declared one."""
    endpoints = {name.partition("[")[0] for name in TARGETS}
    missing = sorted(e for e in endpoints if e not in CONTEXT_OF and ACCESS_RULES.get(e) not in CONTEXT_BY_RULE)
    assert not missing, f"POST routes with no fuzz context (add them to CONTEXT_OF): {missing}"
    declared = set(CONTEXT_OF) | set(URL_VALUES) | FIELDLESS | {k for k in REGRESSIONS if not k.startswith("GET ")}
    gone = sorted(declared - endpoints)
    assert not gone, f"declared for routes the app no longer has: {gone}"


@pytest.mark.parametrize("name", TARGETS)
def test_fuzz_form_route(fuzz_world, name):
    _fuzz(fuzz_world, fuzz_world.target(name))


def _fuzz(fuzz_world, target: Target) -> None:
    examples = FIELDLESS_EXAMPLES if target.endpoint in FIELDLESS else EXAMPLES
    if fuzz_world.tables.postgres:  # the same views again: what differs is the database's types and text
        examples = max(3, examples // 2)

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )
    @given(fuzz=fuzz_inputs(target.fields, GET_EXTRA_FIELDS if target.method == "GET" else EXTRA_FIELDS))
    def fuzz(fuzz):
        fuzz_world.check(target, fuzz)

    for regression in REGRESSIONS.get(target.endpoint if target.method == "POST" else target.name, []):
        fuzz = example(fuzz=regression)(fuzz)
    fuzz()


def test_fuzz_get_forms(fuzz_world):
    """The search and filter forms (GET): the same inputs, never a 5xx, only the page-load bookkeeping written."""
    targets = fuzz_world.get_form_targets()
    assert len(targets) >= 3, [t.name for t in targets]
    for target in targets:
        _fuzz(fuzz_world, target)


# url_for's own arguments, with values that show where they would have gone: a link to another method,
# anchor, scheme or host.
URL_FOR_QUERY = [
    ("endpoint", "core.signout"),
    ("values", "x"),
    ("_method", "DELETE"),
    ("_anchor", "pfcore-hostile"),
    ("_external", "1"),
    ("_scheme", "javascript"),
    ("cursor", ID_10_30_CURSOR),
]


def test_pages_leave_url_for_arguments_in_the_address_alone(fuzz_world):
    """Every page of the administrator and of the portal patient, with url_for's own arguments in the address:
    no 5xx, and none of them in the page's links (issue #23: the audit report passed its query string on)."""
    for name in GET_FORM_CALLERS:
        context = fuzz_world.context(name)
        assert len(context.pages) >= 3, context.pages
        for page in context.pages:
            for query in [URL_FOR_QUERY, [("_external", "1"), ("_scheme", "https")]]:
                response, _read = fuzz_world.send(context, page, FuzzInput(tuple(query)), "GET")
                fuzz_world.settle()
                body = response.get_data(as_text=True)
                assert response.status_code < 500, f"{response.status_code} from {page} as {name}: {query}"
                assert "pfcore-hostile" not in body and "javascript:" not in body, f"{page} as {name}: {query}"
                assert "https://localhost" not in body, f"{page} as {name} made an external link: {query}"

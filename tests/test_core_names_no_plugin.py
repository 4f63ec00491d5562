"""The core names no plugin and no plugin's domain (issue #17, item 3).

A practice switches on only the plugins it needs, and a third party can add
what a first-party plugin adds: so the core's own files say nothing about any
one plugin. What a plugin shows (banners, notices, navigation, CSS, settings,
audit columns) comes from the plugin through hooks and its own
``static/<name>/`` and ``templates/<name>/``.

What is scanned: ``pfcore/`` (Python: code, docstrings, comments, messages),
``templates/``, ``static/`` (the core's own CSS and JS; vendored files such as
``static/js/htmx-*.js`` are not the core's words), ``config/default.toml`` and
``migrations/versions/``.

What is a hit (case-insensitive, whole words):
- a first-party plugin's name as an identifier (``login_pac``, ``charts``, ...)
  or in its URL form (``login-pac``, ``/emergency-access``, ...). Identifiers
  match whole, so the core's own ``by_login_email`` is not ``login_email``.
- a word of a plugin's domain: licensing's (license, subscription, trial,
  prescribe...), emergency access's (emergency, designee), charts' (chart,
  patient, encounter), the patient portal's (portal). Here ``_`` separates
  words too, so ``patient_id`` or ``subscription_status`` are hits.
- the Practice ID *sign-in* ("Practice ID login", "Practice ID and username"),
  which is login_pac's strategy.

Decided not to be plugin words:
- PAC, Practice Access Code and Practice ID alone: the practice's code is core
  (PRODUCT.md "Practices and the Practice Access Code": generated at sign-up,
  shown and rotated on Settings > Users, asked when accepting an invitation).
  Only signing in with it (plus a username) belongs to login_pac.
- Second-factor vocabulary (SMS, TOTP, passkey, WebAuthn, recovery codes): the
  core verifies phones by SMS, holds the one TOTP implementation (#17 item 4)
  and owns the practice's second-factor policy (PRODUCT.md "Practice policy":
  which factors are allowed, a phishing-resistant one for administrators).
  The plugins' names (``mfa_sms``, ``mfa_webauthn``, ...) are still hits.

Migrations describe history (the columns and plugins that existed when they
ran) and are never edited once shipped, so each shipped one is allowed the
words it uses; a new migration has to justify its own.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLUGIN_NAMES = (
    "login_pac",
    "login_email",
    "mfa_sms",
    "mfa_totp",
    "mfa_recovery",
    "mfa_webauthn",
    "emergency_access",
    "licensing",
    "charts",
    "patient_portal",
)

DOMAIN_WORDS = (
    # licensing
    "license",
    "licenses",
    "licence",
    "licences",
    "licensed",
    "licensing",
    "subscription",
    "subscriptions",
    "clinician",
    "clinicians",
    "trial",
    "trials",
    "prescribe",
    "prescribed",
    "prescribing",
    "prescription",
    "prescriptions",
    # emergency access
    "emergency",
    "emergencies",
    "designee",
    "designees",
    "designation",
    "designations",
    # charts
    "chart",
    "charts",
    "patient",
    "patients",
    "encounter",
    "encounters",
    # patient portal
    "portal",
    "portals",
)

# login_pac's strategy, as the core once worded it.
PHRASES = (
    "practice id login",
    "practice id sign-in",
    "practice id sign in",
    "practice id and username",
    "practice id + username",
)

# (file or folder, word, reason): reviewed; every entry must still be needed.
ALLOWED = (
    (
        "pfcore/audit_legacy.py",
        "patient",
        "names the two columns every audit event had before 0013 "
        "(patient_id, emergency), to verify events written then",
    ),
    ("pfcore/audit_legacy.py", "emergency", "the same old column, see above"),
    (
        "pfcore/models.py",
        "subscription",
        "Practice.subscription_status: licensing's column still on the "
        "practices table; its move into the plugin is proposed in #17",
    ),
    ("pfcore/models.py", "trial", "the same column's default and Practice.trial_ends_at, see above"),
    ("migrations/versions/0001_core_core_tables.py", "patient", "history: the audit columns of 0001"),
    ("migrations/versions/0001_core_core_tables.py", "emergency", "history: the audit columns of 0001"),
    ("migrations/versions/0001_core_core_tables.py", "subscription", "history: the practices table of 0001"),
    ("migrations/versions/0001_core_core_tables.py", "trial", "history: the practices table of 0001"),
    ("migrations/versions/0005_audit_patient_index.py", "patient", "history: the old audit column's index"),
    ("migrations/versions/0006_users_by_name.py", "patient", "history: why the index was added"),
    ("migrations/versions/0006_users_by_name.py", "license", "history: why the index was added"),
    ("migrations/versions/0013_keyed_audit_chain.py", "patient", "history: the old columns become dimensions"),
    ("migrations/versions/0013_keyed_audit_chain.py", "emergency", "history: the same move"),
    ("migrations/versions/0013_keyed_audit_chain.py", "charts", "history: the plugin the dimension went to"),
)


def _name_pattern() -> str:
    names = [re.escape(name) for name in PLUGIN_NAMES]
    names += [re.escape(name.replace("_", "-")) for name in PLUGIN_NAMES]
    return r"(?<![\w-])(?:" + "|".join(names) + r")(?![\w-])"


def _word_pattern() -> str:
    words = [re.escape(word) for word in DOMAIN_WORDS]
    words += [re.escape(phrase).replace(r"\ ", r"\s+") for phrase in PHRASES]
    return r"(?<![A-Za-z0-9])(?:" + "|".join(sorted(words, key=len, reverse=True)) + r")(?![A-Za-z0-9])"


HIT = re.compile(_name_pattern() + "|" + _word_pattern(), re.IGNORECASE)


def _vendored(path: Path) -> bool:
    return path.match("static/js/htmx*.js")


def core_files() -> list[Path]:
    files = sorted((ROOT / "pfcore").rglob("*.py"))
    files += sorted(p for p in (ROOT / "templates").rglob("*") if p.is_file())
    files += sorted(p for p in (ROOT / "static").rglob("*") if p.is_file() and not _vendored(p))
    files += [ROOT / "config" / "default.toml"]
    files += sorted((ROOT / "migrations" / "versions").glob("*.py"))
    return files


def hits(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found += [(number, re.sub(r"\s+", " ", match.group(0).lower())) for match in HIT.finditer(line)]
    return found


def _allowed(relative: str, word: str) -> bool:
    return any(relative == path and word.replace("-", "_") == allowed for path, allowed, _ in ALLOWED)


def test_the_scan_finds_each_kind_of_hit(tmp_path):
    """The matcher itself: names whole, domain words also inside snake_case, phrases, never inside words."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "see /emergency-access\nx.patient_id\nby_login_email\nLICENSES\ncharting\n"
        "Practice ID\nPractice ID login\nplugins.charts\n",
        encoding="utf-8",
    )
    assert hits(sample) == [
        (1, "emergency-access"),
        (2, "patient"),
        (4, "licenses"),
        (7, "practice id login"),
        (8, "charts"),
    ]


def test_the_core_names_no_plugin_and_no_plugins_domain():
    report, used = [], set()
    for path in core_files():
        relative = path.relative_to(ROOT).as_posix()
        for number, word in hits(path):
            if _allowed(relative, word):
                used.add((relative, word.replace("-", "_")))
            else:
                report.append(f"{relative}:{number}: {word}")
    print("\n".join(report))
    assert report == [], "the core names a plugin or its domain:\n" + "\n".join(report)
    stale = [f"{path}: {word}" for path, word, _ in ALLOWED if (path, word) not in used]
    assert stale == [], "allow-list entries no longer needed:\n" + "\n".join(stale)

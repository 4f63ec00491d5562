"""Patient portal (seed 004): staff invite patients; patients register with the
emailed link and a PIN (or a code to their phone), then see their records in
a portal of their own at ``/portal``.

Portal accounts are not EHR users: their own table, sessions (own cookie),
password reset, throttling and optional authenticator app. The staff side
lives under ``/patient-portal`` (blueprint ``patient_portal``), the patient
side under ``/portal`` (blueprint ``patient_portal_public``, a public prefix:
no staff session is loaded there).
"""

from __future__ import annotations

from pfcore.contrib import PluginInfo, PluginSetting
from pfcore.hookspecs import hookimpl

from . import models  # noqa: F401  (the tables, for the namespace check and Alembic)

PLUGIN = PluginInfo(
    name="patient_portal",
    title="Patient portal",
    description="Invite patients to see their medications, problems, allergies, immunizations, "
    "appointments and shared lab results online.",
    version="1.0",
    depends=("charts",),
    public_prefixes=("/portal",),
    settings=(
        PluginSetting(
            "invitation_valid_days",
            int,
            30,
            minimum=1,
            maximum=365,
            label="Invitation valid days",
            help="Invitation links work this many days.",
        ),
        PluginSetting(
            "pin_encryption_key",
            str,
            "",
            secret=True,
            label="PIN encryption key",
            help="PINs and authenticator secrets are encrypted at rest with this key (empty: derived "
            "from secret_key; several, comma-separated, to rotate: the first encrypts).",
        ),
        PluginSetting(
            "password_min_length",
            int,
            8,
            minimum=8,
            maximum=128,
            label="Password minimum length",
            help="Portal passwords have at least this many characters.",
        ),
        PluginSetting(
            "session_idle_minutes",
            int,
            15,
            minimum=1,
            maximum=24 * 60,
            label="Idle minutes",
            help="Portal sessions lock after this many idle minutes.",
        ),
        PluginSetting(
            "session_absolute_hours",
            int,
            12,
            minimum=1,
            maximum=24 * 7,
            label="Session hours",
            help="Portal sessions end after this many hours in any case.",
        ),
        PluginSetting(
            "auto_invite_after_days",
            int,
            30,
            minimum=1,
            maximum=365,
            label="Auto-invite after days",
            help="Unsigned encounters auto-invite their patient this many days after the visit.",
        ),
    ),
)


@hookimpl
def register_blueprints(app):
    from . import account_views, record_views, registration_views  # noqa: F401  (their routes join public's)
    from .public import blueprint as public_blueprint
    from .staff_views import blueprint as staff_blueprint

    return [staff_blueprint, public_blueprint]


# --- staff side ---


@hookimpl
def chart_header_items(practice, user, patient):
    """The enrolment status at the top of the chart; clicking it opens the enrolment panel."""
    from .chart_status import header_items

    return header_items(practice, user, patient)


@hookimpl
def chart_actions(practice, user, patient):
    from .chart_status import actions

    return actions(practice, user, patient)


@hookimpl
def chart_note_signed(practice, user, patient, encounter):
    """Auto-invite at once when the signer's "Auto-invite when signing chart notes" is on."""
    from .auto_invite import on_note_signed

    on_note_signed(practice, user, patient)


@hookimpl
def permission_allowed(practice, user, action, target):
    """``patient_portal.invite``: the user's "May invite patients" (on unless an administrator turned it off)."""
    from .invite_settings import INVITE, may_invite

    if action != INVITE:
        return None
    return user.status == "active" and may_invite(user)


@hookimpl
def permission_denied_reason(practice, user, action, target):
    from .invite_settings import INVITE

    if action != INVITE:
        return None
    return (
        "Your administrator has not allowed you to invite patients to the patient portal "
        "(Settings > Patient communications > PHR invite)."
    )


@hookimpl
def settings_tiles(practice, user):
    from pfcore.contrib import Tile

    return [
        Tile(
            "Patient communications",
            "patient_portal.invite_settings",
            "PHR invite: who may invite patients to the patient portal, and auto-invite when signing notes.",
            order=70,
        )
    ]


@hookimpl
def run_jobs(app):
    """`pfcore jobs run`: invite the patients of encounters left unsigned for portal_auto_invite_after_days."""
    from .jobs import auto_invite_in_all_practices

    count = auto_invite_in_all_practices(app)
    return f"Patient portal: auto-invited {count} patient{'' if count == 1 else 's'}."


@hookimpl(trylast=True)  # after charts added the demo patients
def demo_data(practice, admin):
    from pfcore.api import DEMO_PASSWORD

    from .demo import enrol_demo_patient

    return enrol_demo_patient(practice, DEMO_PASSWORD)

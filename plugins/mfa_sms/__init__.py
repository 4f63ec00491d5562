"""Second factor by a code sent to the verification phone, by text or by call (PF).

The factor is "enrolled" when the user has a verified phone (every invitee
verifies one). Users without one (a practice's first administrator, or after
an administrator reset the phone) verify a phone here, during sign-in when
the practice requires a second factor, or from My account.
"""

from __future__ import annotations

from pfcore.contrib import PluginInfo, SecondFactor
from pfcore.hookspecs import hookimpl

from .channels import LABELS, has_verified_phone

PLUGIN = PluginInfo(
    name="mfa_sms",
    title="Security codes by text or call",
    description="A 6-digit code sent to the verification phone by text message or voice call.",
    version="1.0",
)


@hookimpl
def second_factors(practice, user):
    return [
        SecondFactor(
            name=channel,
            label=LABELS[channel],
            endpoint=f"mfa_sms.challenge_{channel}",
            is_enrolled=has_verified_phone,
            enroll_endpoint="mfa_sms.enrol",
            enroll_label="Verify a phone for codes by text or call",
            order=order,
        )
        for channel, order in (("sms", 10), ("voice", 20))
    ]


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]

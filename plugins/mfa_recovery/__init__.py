"""Recovery codes (beyond PF): 10 single-use codes that finish a sign-in when
the usual second factor is out of reach (a lost phone).

The codes come from the CSPRNG, are shown once, right after they are
generated, and only an HMAC-SHA256 of each (under the app's secret key) is
stored. "Generate new codes" replaces the whole set. Generating needs a
recent password (step-up). Recovery codes finish a sign-in, but they do not
count as "having a second factor" (``counts_as_enrolment=False``): a user
with only recovery codes still sets up a real factor when the practice
requires one.
"""

from __future__ import annotations

from flask import g, url_for

from pfcore.contrib import Notice, PluginInfo, SecondFactor
from pfcore.hookspecs import hookimpl

from .recovery_codes import FACTOR, FEW_LEFT, USED_BY, USED_FLAG, codes_phrase, is_enrolled, remaining

PLUGIN = PluginInfo(
    name="mfa_recovery",
    title="Recovery codes",
    description="Ten single-use codes that finish a sign-in when the usual second factor is out of reach.",
    version="1.0",
)


@hookimpl
def second_factors(practice, user):
    return [
        SecondFactor(
            name=FACTOR,
            label="Use a recovery code",
            endpoint="mfa_recovery.challenge",
            is_enrolled=is_enrolled,
            enroll_endpoint="mfa_recovery.codes",
            enroll_label="Recovery codes",
            counts_as_enrolment=False,
            order=90,
        )
    ]


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def user_signed_in(practice, user, login_session):
    if g.get(USED_BY) == user.id:
        login_session.flags = {**(login_session.flags or {}), USED_FLAG: True}


@hookimpl
def signin_notices(practice, user, login_session):
    if login_session is None or not (login_session.flags or {}).get(USED_FLAG):
        return None
    left = remaining(user)
    text = f"You signed in with a recovery code. {codes_phrase(left)} left." + (
        " Generate new codes before you run out." if left <= FEW_LEFT else ""
    )
    return Notice(
        text,
        level="warning" if left <= FEW_LEFT else "info",
        links=(("Recovery codes", url_for("mfa_recovery.codes")),),
    )

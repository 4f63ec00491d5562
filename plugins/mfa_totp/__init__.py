"""Second factor by an authenticator app (TOTP, RFC 6238).

Set-up asks for the password (a user finishing a sign-in already gave it),
shows a QR code and the secret, and saves the authenticator only once a
first code from the app is right. One authenticator per user: setting up
another replaces it. The secret is encrypted at rest (see ``otp``); each
code works once. The set-up page is also where a signed-in user removes it.
"""

from __future__ import annotations

from flask import render_template
from markupsafe import Markup

from pfcore.contrib import PluginInfo, SecondFactor, Section
from pfcore.hookspecs import hookimpl

from . import otp
from .models import TotpAuthenticator
from .otp import FACTOR, has_authenticator

PLUGIN = PluginInfo(
    name="mfa_totp",
    title="Authenticator app",
    description="A 6-digit code from an authenticator app (Google Authenticator, Microsoft Authenticator, "
    "1Password...), RFC 6238.",
    version="1.0",
)

__all__ = ["PLUGIN", "TotpAuthenticator"]


@hookimpl
def second_factors(practice, user):
    return SecondFactor(
        name=FACTOR,
        label="Use authenticator app",
        endpoint="mfa_totp.challenge",
        is_enrolled=has_authenticator,
        enroll_endpoint="mfa_totp.setup",
        enroll_label="Set up authenticator app",
        order=30,
    )


@hookimpl
def register_blueprints(app):
    from .views import blueprint

    return [blueprint]


@hookimpl
def user_detail_sections(practice, viewer, user):
    """Lost phone: the administrator removes the user's authenticator app."""
    existing = otp.authenticator_of(user)
    if existing is None:
        return None
    return Section(
        "Authenticator app",
        Markup(render_template("mfa_totp/user_section.html", user=user, authenticator=existing)),
        order=40,
    )

"""A second factor: the PIN printed on the staff badge (2468 for everyone, a test).

Also demands a second factor for users listed in DEMANDED, and adds a My
account section."""

from __future__ import annotations

from flask import Blueprint, request
from markupsafe import Markup

from pfcore.contrib import PluginInfo, SecondFactor, Section
from pfcore.hookspecs import hookimpl
from pfcore.security import mfa
from pfcore.web.rendering import render

PLUGIN = PluginInfo(name="badge_pin", title="Badge PIN", enabled_by_default=False)
PIN = "2468"
DEMANDED: set[str] = set()

blueprint = Blueprint("badge_pin", __name__, url_prefix="/badge-pin")


@blueprint.route("/", methods=["GET", "POST"])
def challenge():
    if request.method == "POST":
        if request.form.get("pin") == PIN:
            return mfa.second_factor_passed("badge_pin")
        mfa.second_factor_failed("badge_pin", "wrong PIN")
        return render("badge_pin/challenge.html", error="Wrong PIN.", status=422)
    return render("badge_pin/challenge.html")


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def second_factors(practice, user):
    return [
        SecondFactor(
            name="badge_pin",
            label="Use my badge PIN",
            endpoint="badge_pin.challenge",
            is_enrolled=lambda u: True,
            order=50,
        )
    ]


@hookimpl
def second_factor_required(practice, user):
    return user.email in DEMANDED


@hookimpl
def account_sections(practice, user):
    return [Section("Badge PIN", Markup("<p>Your badge PIN works as a second factor.</p>"), order=40)]

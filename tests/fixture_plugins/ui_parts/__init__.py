"""One contribution to every part of the UI shell, and a page of its own."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required
from markupsafe import Markup

from pfcore.contrib import InfoItem, NavItem, Notice, PluginInfo, Section, Tile, UserColumn
from pfcore.hookspecs import hookimpl
from pfcore.web.rendering import render

PLUGIN = PluginInfo(
    name="ui_parts", title="UI parts", description="Adds one of everything to the UI shell.", version="1.0"
)

blueprint = Blueprint("ui_parts", __name__, url_prefix="/ui-parts")


@blueprint.get("/")
@login_required
def page():
    return render("ui_parts/page.html")


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def nav_items(practice, user):
    return [NavItem("Parts", "ui_parts.page", order=50)]


@hookimpl
def settings_tiles(practice, user):
    return [Tile("Parts settings", "ui_parts.page", "Settings contributed by a plugin.", order=50)]


@hookimpl
def dashboard_tiles(practice, user):
    # One item instead of a list is gathered too.
    return Tile(
        "Parts dashboard",
        "ui_parts.page",
        "A dashboard tile contributed by a plugin.",
        body=Markup("<p class=parts-body>{}</p>").format(practice.name),
    )


@hookimpl
def user_table_columns(practice, viewer):
    return [UserColumn("Initials", lambda user: user.first_name[:1] + user.last_name[:1])]


@hookimpl
def user_detail_sections(practice, viewer, user):
    html = Markup("<p>{} is looking at {}.</p>").format(viewer.first_name, user.full_name)
    return [Section("Parts section", html, order=50)]


@hookimpl
def login_info_items(practice, viewer, user):
    return [InfoItem("Parts badge", Markup("<code>{}</code>").format(f"badge-{user.id}"), order=50)]


@hookimpl
def signin_notices(practice, user, login_session):
    return [Notice(f"Parts notice for {practice.name}", level="warning", links=(("Open parts", "/ui-parts/"),))]

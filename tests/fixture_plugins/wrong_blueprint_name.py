"""Breaks the contract: its blueprint is not named after the plugin."""

from flask import Blueprint

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="wrong_blueprint_name", title="Wrong blueprint name")

blueprint = Blueprint("notes", __name__, url_prefix="/wrong-blueprint-name")


@hookimpl
def register_blueprints(app):
    return [blueprint]

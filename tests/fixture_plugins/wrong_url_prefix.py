"""Breaks the contract: its URL prefix is not ``/wrong-url-prefix``."""

from flask import Blueprint

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="wrong_url_prefix", title="Wrong URL prefix")

blueprint = Blueprint("wrong_url_prefix", __name__, url_prefix="/settings")


@hookimpl
def register_blueprints(app):
    return [blueprint]

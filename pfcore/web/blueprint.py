"""The core's blueprint; the view modules in pfcore.web add their routes to it."""

from flask import Blueprint

core = Blueprint("core", __name__)

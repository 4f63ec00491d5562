"""Stands in for the charts plugin: a page that "signs a note" when ``can(user, action)``.

It answers yes for the signing actions itself (as charts would, by role), so
with licensing switched off nothing gates them; with licensing on, its deny wins.
"""

from __future__ import annotations

from flask import Blueprint, g, render_template_string, request
from flask_login import login_required

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl
from pfcore.security.permissions import can, why_not

PLUGIN = PluginInfo(name="sign_notes", title="Sign notes", description="Signs notes if the user may.", version="1.0")
ACTIONS = ("sign_chart_note", "sign_document", "sign_soap_note", "e_prescribe")

blueprint = Blueprint("sign_notes", __name__, url_prefix="/sign-notes")

PAGE = """{% extends "base.html" %}{% block title %}Sign a note{% endblock %}{% block content %}
<h1>Sign a note</h1>
{% if result %}<p class="alert {{ 'info' if ok else 'error' }}" role="status" id="sign-result">{{ result }}</p>{% endif %}
<form method="post" action="{{ url_for('sign_notes.sign') }}">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <label for="action">What to do</label>
  <select id="action" name="action">{% for a in actions %}<option value="{{ a }}">{{ a }}</option>{% endfor %}</select>
  <button type="submit">Sign</button>
</form>{% endblock %}"""


@blueprint.route("/", methods=["GET", "POST"], endpoint="sign")
@login_required
def sign():
    if request.method == "GET":
        return render_template_string(PAGE, actions=ACTIONS, result=None, ok=False)
    action = request.form.get("action", "sign_chart_note")
    user = g.pfcore_user
    if action in ACTIONS and can(user, action):
        return render_template_string(PAGE, actions=ACTIONS, result=f"Signed: {action}.", ok=True)
    why = why_not(user, action) or "You may not do that."
    return render_template_string(PAGE, actions=ACTIONS, result=f"Not signed. {why}", ok=False), 403


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def permission_allowed(practice, user, action, target):
    return True if action in ACTIONS else None

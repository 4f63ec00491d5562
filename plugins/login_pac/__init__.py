"""Sign in with Practice ID (the practice's PAC), username and password (PF legacy)."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from sqlalchemy import func, select

from pfcore.accounts import practice_by_pac
from pfcore.contrib import LoginStrategy, PluginInfo
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import User
from pfcore.security.signin import GENERIC_FAILURE, password_sign_in, safe_next
from pfcore.web.rendering import render, render_form_errors
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

PLUGIN = PluginInfo(
    name="login_pac",
    title="Practice ID sign-in",
    description="Sign in with Practice ID, username and password.",
    version="1.0",
)

blueprint = Blueprint("login_pac", __name__, url_prefix="/login-pac")


class PacSignInForm(FlaskForm):
    pac = StringField("Practice ID", validators=[DataRequired(message="Enter your Practice ID."), Length(max=40)])
    username = StringField("Username", validators=[DataRequired(message="Enter your username."), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])


@blueprint.route("/", methods=["GET", "POST"])
def signin():
    form = PacSignInForm()
    next_path = request.values.get("next")
    if request.method == "GET":
        return render("login_pac/signin.html", form=form, next=next_path)
    if form.validate():
        practice = practice_by_pac(form.pac.data)
        user = None
        if practice is not None:
            user = session().scalars(select(User).where(
                User.practice_id == practice.id, func.lower(User.username) == form.username.data.strip().lower()
            )).one_or_none()
        signed_in = password_sign_in(
            user, form.password.data, method="practice_id", practice_id=practice.id if practice else None,
            identifier=f"{form.pac.data.strip()[:12]}/{form.username.data.strip()}", plugin_name=PLUGIN.name,
        )
        if signed_in:
            return redirect(safe_next(next_path, url_for("core.dashboard")))
        form.form_errors.append(GENERIC_FAILURE)
        form.password.data = ""
    return render_form_errors("login_pac/signin.html", form=form, next=next_path)


@hookimpl
def login_strategies():
    return [LoginStrategy(name="login_pac", label="Practice ID", endpoint="login_pac.signin", order=20)]


@hookimpl
def register_blueprints(app):
    return [blueprint]

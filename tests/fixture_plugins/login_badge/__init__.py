"""A login strategy: "Staff badge" (email and password, offered first)."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired

from pfcore.accounts import normalise_email
from pfcore.contrib import LoginStrategy, PluginInfo
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import User
from pfcore.security.signin import GENERIC_FAILURE, password_sign_in
from pfcore.web.rendering import render, render_form_errors

PLUGIN = PluginInfo(name="login_badge", title="Badge sign-in")

blueprint = Blueprint("login_badge", __name__, url_prefix="/login-badge")


class BadgeForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


@blueprint.route("/", methods=["GET", "POST"])
def signin():
    form = BadgeForm()
    if request.method == "GET":
        return render("login_badge/signin.html", form=form)
    if form.validate():
        email = normalise_email(form.email.data)
        user = session().scalars(select(User).where(User.email == email)).one_or_none()
        if password_sign_in(user, form.password.data, method="badge", practice_id=None, identifier=email,
                            plugin_name=PLUGIN.name):
            return redirect(url_for("core.dashboard"))
        form.form_errors.append(GENERIC_FAILURE)
    return render_form_errors("login_badge/signin.html", form=form)


@hookimpl
def register_blueprints(app):
    return [blueprint]


@hookimpl
def login_strategies():
    return [LoginStrategy(name="login_badge", label="Staff badge", endpoint="login_badge.signin", order=5)]

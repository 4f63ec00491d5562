"""Sign in with login email and password."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from pfcore.accounts import normalise_email
from pfcore.contrib import LoginStrategy, PluginInfo
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import User
from pfcore.security.signin import GENERIC_FAILURE, password_sign_in, safe_next
from pfcore.web.rendering import render, render_form_errors

PLUGIN = PluginInfo(
    name="login_email",
    title="Email sign-in",
    description="Sign in with login email and password.",
    version="1.0",
)

blueprint = Blueprint("login_email", __name__, url_prefix="/login-email")


class EmailSignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(message="Enter your email."), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(message="Enter your password."), Length(max=1024)])


@blueprint.route("/", methods=["GET", "POST"])
def signin():
    form = EmailSignInForm()
    next_path = request.values.get("next")
    if request.method == "GET":
        return render("login_email/signin.html", form=form, next=next_path)
    if form.validate():
        email = normalise_email(form.email.data)
        user = session().scalars(select(User).where(User.email == email)).one_or_none()
        signed_in = password_sign_in(user, form.password.data, method="email", practice_id=None,
                                     identifier=email, plugin_name=PLUGIN.name)
        if signed_in:
            return redirect(safe_next(next_path, url_for("core.dashboard")))
        form.form_errors.append(GENERIC_FAILURE)
    return render_form_errors("login_email/signin.html", form=form, next=next_path)


@hookimpl
def login_strategies():
    return [LoginStrategy(name="login_email", label="Email", endpoint="login_email.signin", order=10)]


@hookimpl
def register_blueprints(app):
    return [blueprint]

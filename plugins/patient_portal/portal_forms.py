"""The forms patients fill in: registration, sign-in, password reset, authenticator app.

Labels are what patients read and what the tests find. Dates of birth are
plain text fields, checked by ``registration.parse_birth_date`` so that a
badly typed date is a message, never a counted wrong try.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, RadioField, StringField, TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from pfcore.api import EmailAddress, NoControlCharacters


def _required(what: str):
    return DataRequired(message=f"Enter {what}.")


def _birth_date():
    return StringField(
        "Date of birth",
        validators=[_required("your date of birth"), Length(max=20)],
        render_kw={"placeholder": "MM/DD/YYYY", "autocomplete": "bday"},
    )


class PinForm(FlaskForm):
    date_of_birth = _birth_date()
    pin = StringField(
        "PIN",
        validators=[_required("the 6-digit PIN from your practice"), Length(max=20)],
        render_kw={"inputmode": "numeric", "autocomplete": "off"},
    )


class PhoneForm(FlaskForm):
    phone = TelField(
        "Phone number", validators=[_required("your phone number"), Length(max=40)], render_kw={"autocomplete": "tel"}
    )
    date_of_birth = _birth_date()
    channel = RadioField(
        "Send the code by",
        choices=[SelectChoice("sms", "Text message"), SelectChoice("voice", "Phone call")],
        default="sms",
        validators=[DataRequired(message="Choose text or call.")],
    )


class CodeForm(FlaskForm):
    code = StringField(
        "Security code",
        validators=[_required("the 6-digit code"), Length(max=20)],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"},
    )


class _NewPassword:
    """Password and confirmation; the rules themselves are checked in ``accounts``."""

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("The two passwords are not the same.")


class CreateAccountForm(_NewPassword, FlaskForm):
    username = StringField(
        "Username",
        validators=[
            _required("a username"),
            Length(min=3, max=254),
            NoControlCharacters(),
            Regexp(r"^\S+$", message="Use no spaces."),
        ],
        render_kw={"autocomplete": "username"},
    )
    email = EmailField(
        "Email",
        validators=[_required("your email"), Length(max=254), EmailAddress()],
        render_kw={"autocomplete": "email"},
    )
    password = PasswordField(
        "Password", validators=[_required("a password")], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        "Confirm password", validators=[_required("the password again")], render_kw={"autocomplete": "new-password"}
    )


class SignInForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[_required("your username"), Length(max=254), NoControlCharacters()],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[_required("your password"), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class TotpCodeForm(FlaskForm):
    code = StringField(
        "Code from your authenticator app",
        validators=[_required("the 6-digit code"), Length(max=20)],
        render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"},
    )


class PasswordCheckForm(FlaskForm):
    password = PasswordField(
        "Password",
        validators=[_required("your password"), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[_required("the email of your portal account"), Length(max=254), EmailAddress()],
        render_kw={"autocomplete": "email"},
    )


class NewPasswordForm(_NewPassword, FlaskForm):
    password = PasswordField(
        "New password", validators=[_required("a new password")], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        "Confirm password", validators=[_required("the password again")], render_kw={"autocomplete": "new-password"}
    )

"""The core's forms. Field labels are what people read and what tests find."""

from __future__ import annotations

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TelField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, Regexp, ValidationError

from ..models import ACCESS_LEVELS
from ..security import phones
from ..text import has_control_characters


def show_account_error(form, error) -> None:
    """Show an ``accounts.AccountError`` on the form: under the field it names, else above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = list(field.errors) + [error.message]
    else:
        form.form_errors.append(error.message)


SPECIALTIES = [
    "Family medicine",
    "Internal medicine",
    "Pediatrics",
    "Obstetrics and gynecology",
    "Cardiology",
    "Dermatology",
    "Psychiatry",
    "Orthopedics",
    "Chiropractic",
    "Other",
]
USERNAME_RULE = Regexp(r"^[A-Za-z0-9._-]+$", message="Use letters, digits, dots, dashes and underscores only.")


def _required(label: str):
    return DataRequired(message=f"Enter {label}.")


class EmailAddress(Email):
    def __init__(self):
        super().__init__(message="Enter a valid email address, like name@example.com.", check_deliverability=False)


class PhoneNumber:
    """A phone number as people type it, stored in E.164 (the field's data is replaced).

    ``for_codes``: the number will receive codes by text or call, so it must
    be one pfcore may text or call (``phones.for_codes``).
    """

    def __init__(self, *, for_codes: bool = False):
        self.for_codes = for_codes

    def __call__(self, form, field):
        settings = current_app.config["PFCORE"]
        if field.data:
            try:
                field.data = (
                    phones.for_codes(field.data, settings)
                    if self.for_codes
                    else phones.to_e164(field.data, settings["phone_default_region"])
                )
            except phones.PhoneError as problem:
                raise ValidationError(str(problem)) from None


CONTROL_CHARACTERS = "Remove the invisible control characters."


class NoControlCharacters:
    """Refuse NUL and other control characters in one-line text (``multiline``: in longer text)."""

    def __init__(self, *, multiline: bool = False):
        self.multiline = multiline

    def __call__(self, form, field):
        if isinstance(field.data, str) and has_control_characters(field.data, multiline=self.multiline):
            raise ValidationError(CONTROL_CHARACTERS)


def _name_field(label: str):
    return StringField(label, validators=[_required(label.lower()), Length(max=100), NoControlCharacters()])


class SignupForm(FlaskForm):
    practice_name = StringField(
        "Practice name", validators=[_required("the practice name"), Length(max=200), NoControlCharacters()]
    )
    first_name = _name_field("First name")
    last_name = _name_field("Last name")
    email = EmailField("Email", validators=[_required("your email"), Length(max=254), EmailAddress()])
    phone = TelField(
        "Phone",
        validators=[
            _required("a contact phone"),
            Length(max=40),
            Regexp(r"^[0-9+().\- ]{7,40}$", message="Enter a phone number, like 415-555-0100."),
        ],
    )
    specialty = SelectField(
        "Specialty", choices=[SelectChoice(s, s) for s in SPECIALTIES], validators=[_required("a specialty")]
    )
    password = PasswordField("Password", validators=[_required("a password")])


class AddUserForm(FlaskForm):
    first_name = _name_field("First name")
    last_name = _name_field("Last name")
    email = EmailField("Login email", validators=[_required("a login email"), Length(max=254), EmailAddress()])
    access_level = SelectField(
        "Access level",
        coerce=int,
        choices=[SelectChoice(k, v) for k, v in ACCESS_LEVELS.items()],
        validators=[DataRequired(message="Choose an access level.")],
    )
    is_admin = BooleanField("Administrator")


class AccessLevelForm(FlaskForm):
    access_level = SelectField(
        "Access level", coerce=int, choices=[SelectChoice(k, v) for k, v in ACCESS_LEVELS.items()]
    )


class PracticeCodeForm(FlaskForm):
    pac = StringField("Practice ID", validators=[_required("the Practice ID"), Length(max=40), NoControlCharacters()])


class ChooseUsernamePasswordForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[_required("a username"), Length(min=3, max=64, message="Use 3 to 64 characters."), USERNAME_RULE],
    )
    password = PasswordField("Password", validators=[_required("a password")])
    confirm = PasswordField("Confirm password", validators=[_required("the password again")])

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("The two passwords are not the same.")


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[_required("a new password")])
    confirm = PasswordField("Confirm password", validators=[_required("the password again")])

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("The two passwords are not the same.")


class AuditFilterForm(FlaskForm):
    """GET form: no CSRF (it changes nothing)."""

    class Meta:
        csrf = False

    start = StringField("From", validators=[Optional()])
    end = StringField("To", validators=[Optional()])
    user = SelectField("User", validators=[Optional()], coerce=str)
    action = SelectField("Action", validators=[Optional()], coerce=str)
    outcome = SelectField(
        "Outcome",
        choices=[SelectChoice("", "Any"), SelectChoice("success", "Success"), SelectChoice("failure", "Failure")],
        validators=[Optional()],
    )


class PhoneForm(FlaskForm):
    phone = TelField("Mobile phone", validators=[_required("a phone number"), Length(max=40)])


class CodeForm(FlaskForm):
    code = StringField("Security code", validators=[_required("the 6-digit code"), Length(max=20)])


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[_required("your current password")])
    password = PasswordField("New password", validators=[_required("a new password")])
    confirm = PasswordField("Confirm new password", validators=[_required("the new password again")])

    def validate_confirm(self, field):
        if field.data != self.password.data:
            raise ValidationError("The two passwords are not the same.")


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[_required("your login email"), Length(max=254), EmailAddress()])


class ChangeEmailForm(FlaskForm):
    email = EmailField(
        "New login email",
        id="new-email",
        validators=[_required("the new login email"), Length(max=254), EmailAddress()],
    )
    confirm_email = EmailField(
        "Confirm new login email",
        id="new-email-confirm",
        validators=[_required("the new login email again"), Length(max=254)],
    )

    def validate_confirm_email(self, field):
        if (field.data or "").strip().lower() != (self.email.data or "").strip().lower():
            raise ValidationError("The two email addresses are not the same.")

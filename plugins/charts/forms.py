"""Forms of the chart: patient profile, new encounter, SOAP note, document."""

from __future__ import annotations

import datetime as dt

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError

from pfcore.api import EmailAddress, NoControlCharacters, PhoneNumber

from .sections import DATE_FORMATS

SEXES = [SelectChoice(value, value.capitalize()) for value in ("female", "male", "other", "unknown")]
NOTE_MAX = 20_000


def _name(label: str):
    return StringField(
        label, validators=[InputRequired(message=f"Enter the {label.lower()}."), Length(max=80), NoControlCharacters()]
    )


class PatientForm(FlaskForm):
    first_name = _name("First name")
    last_name = _name("Last name")
    date_of_birth = DateField(
        "Date of birth",
        format=DATE_FORMATS,
        validators=[InputRequired(message="Enter the date of birth as MM/DD/YYYY.")],
        render_kw={"placeholder": "MM/DD/YYYY"},
    )
    sex = SelectField("Sex", choices=SEXES, validators=[InputRequired(message="Choose the sex.")])
    email = EmailField("Email", validators=[Optional(), Length(max=254), EmailAddress()])
    phone = TelField("Phone", validators=[Optional(), Length(max=40), PhoneNumber()])

    def validate_date_of_birth(self, field):
        if field.data and not dt.date(1900, 1, 1) <= field.data <= dt.date.today():
            raise ValidationError("Enter a date of birth between 01/01/1900 and today.")


class EncounterForm(FlaskForm):
    visit_date = DateField(
        "Visit date",
        format=DATE_FORMATS,
        validators=[InputRequired(message="Enter the visit date as MM/DD/YYYY.")],
        render_kw={"placeholder": "MM/DD/YYYY"},
    )
    reason = StringField(
        "Reason for visit",
        validators=[InputRequired(message="Enter the reason for the visit."), Length(max=200), NoControlCharacters()],
    )


def _note(label: str):
    return TextAreaField(
        label, validators=[Optional(), Length(max=NOTE_MAX), NoControlCharacters(multiline=True)], render_kw={"rows": 4}
    )


class SoapForm(FlaskForm):
    subjective = _note("Subjective")
    objective = _note("Objective")
    assessment = _note("Assessment")
    plan = _note("Plan")


class DocumentForm(FlaskForm):
    title = StringField(
        "Document title",
        validators=[InputRequired(message="Enter the document title."), Length(max=200), NoControlCharacters()],
    )
    body = TextAreaField(
        "Text",
        validators=[Optional(), Length(max=NOTE_MAX), NoControlCharacters(multiline=True)],
        render_kw={"rows": 4},
    )

"""The simple chart sections, declared once: title, fields, how an entry is
dated and summed up. One form class per section is built from the
declaration, so every section is added, edited and shown the same way.

Dates are accepted as the date picker sends them (YYYY-MM-DD) and in the US
form (MM/DD/YYYY); appointment times are the practice's local time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, DateTimeLocalField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from pfcore.api import NoControlCharacters

DATE_FORMATS = ["%Y-%m-%d", "%m/%d/%Y"]
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"]


def text(label: str, *, required: bool = False, max_length: int = 200):
    checks = [InputRequired(message=f"Enter the {label.lower()}.")] if required else [Optional()]
    return StringField(label, validators=checks + [Length(max=max_length), NoControlCharacters()])


def date(label: str, *, required: bool = False):
    checks = [InputRequired(message=f"Enter the {label.lower()}.")] if required else [Optional()]
    return DateField(label, format=DATE_FORMATS, validators=checks, render_kw={"placeholder": "MM/DD/YYYY"})


def choice(label: str, options: list[str]):
    return SelectField(label, choices=[SelectChoice(o, o.capitalize()) for o in options], default=options[0])


@dataclass(frozen=True)
class SectionSpec:
    kind: str  # stored in ChartEntry.kind
    slug: str  # in URLs
    title: str
    fields: dict  # name -> unbound WTForms field
    dated_by: str  # the field that dates the entry (ChartEntry.occurred_at)
    summary: tuple[str, ...]  # the fields shown in the list, in order
    shareable: bool = False

    def form_class(self) -> type[FlaskForm]:
        attributes = dict(self.fields)
        if self.shareable:
            attributes["shared"] = BooleanField("Share with patient")
        return type(f"{self.kind.title().replace('_', '')}Form", (FlaskForm,), attributes)


SECTIONS: dict[str, SectionSpec] = {
    spec.slug: spec
    for spec in [
        SectionSpec(
            "medication",
            "medications",
            "Medications",
            {
                "name": text("Medication", required=True),
                "instructions": text("Instructions", max_length=300),
                "started_on": date("Start date"),
                "status": choice("Status", ["active", "stopped"]),
            },
            dated_by="started_on",
            summary=("name", "instructions", "status"),
        ),
        SectionSpec(
            "problem",
            "problems",
            "Problems",
            {
                "name": text("Diagnosis", required=True),
                "code": text("ICD-10 code", max_length=16),
                "onset_on": date("Onset date"),
                "status": choice("Status", ["active", "resolved"]),
            },
            dated_by="onset_on",
            summary=("name", "code", "status"),
        ),
        SectionSpec(
            "allergy",
            "allergies",
            "Allergies",
            {
                "substance": text("Allergen", required=True),
                "reaction": text("Reaction"),
                "severity": choice("Severity", ["mild", "moderate", "severe"]),
            },
            dated_by="",
            summary=("substance", "reaction", "severity"),
        ),
        SectionSpec(
            "immunization",
            "immunizations",
            "Immunizations",
            {
                "vaccine": text("Vaccine", required=True),
                "given_on": date("Date given", required=True),
                "lot": text("Lot number", max_length=40),
            },
            dated_by="given_on",
            summary=("vaccine", "given_on", "lot"),
        ),
        SectionSpec(
            "appointment",
            "appointments",
            "Appointments",
            {
                "starts_at": DateTimeLocalField(
                    "Date and time",
                    format=DATETIME_FORMATS,
                    validators=[InputRequired(message="Enter the date and time.")],
                ),
                "reason": text("Reason", required=True),
                "provider": text("With"),
            },
            dated_by="starts_at",
            summary=("starts_at", "reason", "provider"),
        ),
        SectionSpec(
            "lab_result",
            "lab-results",
            "Lab results",
            {
                "test": text("Test", required=True),
                "value": text("Result", required=True, max_length=100),
                "unit": text("Unit", max_length=40),
                "reference_range": text("Reference range", max_length=60),
                "collected_on": date("Collected on", required=True),
            },
            dated_by="collected_on",
            summary=("test", "value", "unit", "reference_range", "collected_on"),
            shareable=True,
        ),
    ]
}
BY_KIND = {spec.kind: spec for spec in SECTIONS.values()}


def to_data(spec: SectionSpec, form: FlaskForm) -> dict:
    """What is stored in ``ChartEntry.data``: every declared field as text (dates ISO)."""
    data = {}
    for name in spec.fields:
        value = form[name].data
        if isinstance(value, dt.datetime):
            value = value.strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, dt.date):
            value = value.isoformat()
        data[name] = value if value is not None else ""
    return data


def from_data(spec: SectionSpec, data: dict) -> dict:
    """Form values from stored data (dates parsed back)."""
    values = {}
    for name, field in spec.fields.items():
        value = data.get(name, "")
        if value and field.field_class is DateField:
            value = dt.date.fromisoformat(value)
        elif value and field.field_class is DateTimeLocalField:
            value = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M")
        values[name] = value or None
    return values


def occurred_at(spec: SectionSpec, data: dict, timezone: str) -> dt.datetime | None:
    """The entry's moment in UTC: a date at local midnight, a local time as given."""
    value = data.get(spec.dated_by) if spec.dated_by else None
    if not value:
        return None
    local = (
        dt.datetime.fromisoformat(value)
        if "T" in value
        else dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
    )
    return local.replace(tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def display(spec: SectionSpec, name: str, value: str) -> str:
    """A stored value as people read it (US dates, capitalised choices)."""
    if not value:
        return ""
    field = spec.fields[name]
    if field.field_class is DateField:
        return dt.date.fromisoformat(value).strftime("%m/%d/%Y")
    if field.field_class is DateTimeLocalField:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M").strftime("%m/%d/%Y %I:%M %p")
    if field.field_class is SelectField:
        return value.capitalize()
    return value


def label(spec: SectionSpec, name: str) -> str:
    return spec.fields[name].args[0] if spec.fields[name].args else name

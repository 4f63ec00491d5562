"""Chart pages: the patients list, a chart with its sections (edited in place
with htmx), encounters with the SOAP note, documents and Sign.

Every page or fragment that shows a patient's data records
``charts.chart_viewed`` (one place: ``_patient_for``), every change its own
event, both with ``patient_id``.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from flask_login import login_required

from pfcore.api import (
    audit,
    can,
    flatten,
    is_partial_request,
    render,
    render_form_errors,
    require,
    session,
    users_by_id,
    writes_on_get,
)

from . import api, encounters, entries, patients, sections
from .encounters import ChartError
from .forms import DocumentForm, EncounterForm, PatientForm, SoapForm
from .permissions import EDIT, EDIT_CLINICAL, VIEW

blueprint = Blueprint("charts", __name__, url_prefix="/charts")


def _user():
    return g.pfcore_user


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(_user().practice.timezone or "UTC")).date()


def _patient_for(patient_id):
    """The user's practice's patient, or 404; a GET is audited as a view of the chart."""
    patient = api.get_patient(_user().practice_id, patient_id)
    if patient is None:
        abort(404)
    if request.method == "GET":
        audit.record(
            api.CHART_VIEWED,
            practice_id=patient.practice_id,
            object_type="patient",
            object_id=patient.id,
            dimensions={"patient_id": patient.id},
            details={"view": request.endpoint},
        )
        session().commit()
    return patient


def _spec(slug: str) -> sections.SectionSpec:
    spec = sections.SECTIONS.get(slug)
    if spec is None:
        abort(404)
    return spec


def _edit_action(spec: sections.SectionSpec) -> str:
    """Front-desk staff keep the schedule; clinical sections need a clinical access level."""
    return EDIT if spec.kind == "appointment" else EDIT_CLINICAL


def _require(action: str) -> None:
    if not can(_user(), action):
        abort(403)


# --- patients ---------------------------------------------------------------------------


@blueprint.get("/patients", endpoint="patients")
@writes_on_get
@login_required
@require(VIEW)
def patients_list():
    query = request.args.get("q", "").strip()
    found = patients.search(_user().practice_id, query)
    if query:
        audit.record(
            "charts.patients_searched",
            practice_id=_user().practice_id,
            object_type="patient",
            details={"results": len(found)},
        )
        session().commit()
    return render("charts/patients.html", block="results", patients=found, query=query, today=_today())


@blueprint.route("/patients/new", methods=["GET", "POST"])
@login_required
@require(EDIT)
def add_patient():
    form = PatientForm()
    if request.method == "GET":
        return render("charts/patient_form.html", form=form, patient=None)
    if not form.validate():
        return render_form_errors("charts/patient_form.html", form=form, patient=None)
    patient = patients.create(_user().practice_id, form, _user())
    session().commit()
    return redirect(url_for("charts.chart", patient_id=patient.id))


@blueprint.route("/patients/<patient_id>/profile", methods=["GET", "POST"])
@writes_on_get
@login_required
@require(EDIT)
def edit_profile(patient_id):
    patient = _patient_for(patient_id)
    form = PatientForm(obj=patient) if request.method == "GET" else PatientForm()
    if request.method == "GET":
        return render("charts/patient_form.html", form=form, patient=patient)
    if not form.validate():
        return render_form_errors("charts/patient_form.html", form=form, patient=patient)
    patients.update(patient, form)
    session().commit()
    return redirect(url_for("charts.chart", patient_id=patient.id))


# --- the chart --------------------------------------------------------------------------


def _chart_context(patient, **extra) -> dict:
    practice, user = _user().practice, _user()
    hooks = current_app.extensions["pfcore.plugins"].hook(practice)
    return dict(
        patient=patient,
        age=api.age(patient, _today()),
        sections=sections.SECTIONS.values(),
        header_items=flatten(hooks.chart_header_items(practice=practice, user=user, patient=patient)),
        actions=flatten(hooks.chart_actions(practice=practice, user=user, patient=patient)),
        encounters=encounters.encounters_of(patient),
        encounter_form=extra.pop("encounter_form", None) or EncounterForm(),
        section_state=_section_state,
        **extra,
    )


def _section_state(patient, spec, form=None, editing=None, error=None) -> dict:
    """What ``charts/_section.html`` needs for one section."""
    now = dt.datetime.now(dt.UTC)
    rows = entries.entries_of(patient, spec)
    upcoming = [row for row in rows if row.occurred_at is not None and row.occurred_at >= now][::-1]
    past = [row for row in rows if row not in upcoming]
    return dict(
        patient=patient,
        spec=spec,
        rows=rows,
        upcoming=upcoming,
        past=past,
        form=form,
        editing=editing,
        error=error,
        can_edit=can(_user(), _edit_action(spec)),
        display=sections.display,
        label=sections.label,
    )


@blueprint.get("/patients/<patient_id>")
@writes_on_get
@login_required
@require(VIEW)
def chart(patient_id):
    patient = _patient_for(patient_id)
    return render("charts/chart.html", **_chart_context(patient))


def _section_response(patient, spec, status: int = 200, **state):
    """The section alone for htmx; without JavaScript the section on a page of its own."""
    template = "charts/_section.html" if is_partial_request() else "charts/section_page.html"
    return render(template, status=status, state=_section_state(patient, spec, **state))


@blueprint.get("/patients/<patient_id>/sections/<slug>")
@writes_on_get
@login_required
@require(VIEW)
def section(patient_id, slug):
    spec = _spec(slug)
    return _section_response(_patient_for(patient_id), spec)


@blueprint.get("/patients/<patient_id>/sections/<slug>/new")
@writes_on_get
@login_required
@require(VIEW)
def new_entry(patient_id, slug):
    spec = _spec(slug)
    _require(_edit_action(spec))
    return _section_response(_patient_for(patient_id), spec, form=spec.form_class()(), editing="new")


@blueprint.post("/patients/<patient_id>/sections/<slug>")
@login_required
@require(VIEW)
def add_entry(patient_id, slug):
    spec = _spec(slug)
    _require(_edit_action(spec))
    patient = _patient_for(patient_id)
    form = spec.form_class()()
    if not form.validate():
        return _section_response(patient, spec, status=422, form=form, editing="new")
    entries.save(patient, spec, form, _user())
    session().commit()
    return _section_response(patient, spec)


@blueprint.get("/patients/<patient_id>/sections/<slug>/<entry_id>/edit")
@writes_on_get
@login_required
@require(VIEW)
def edit_entry(patient_id, slug, entry_id):
    spec = _spec(slug)
    _require(_edit_action(spec))
    patient = _patient_for(patient_id)
    entry = entries.get_entry(patient, spec, entry_id) or abort(404)
    form = spec.form_class()(data={**sections.from_data(spec, entry.data or {}), "shared": entry.shared})
    return _section_response(patient, spec, form=form, editing=entry.id)


@blueprint.post("/patients/<patient_id>/sections/<slug>/<entry_id>")
@login_required
@require(VIEW)
def update_entry(patient_id, slug, entry_id):
    spec = _spec(slug)
    _require(_edit_action(spec))
    patient = _patient_for(patient_id)
    entry = entries.get_entry(patient, spec, entry_id) or abort(404)
    form = spec.form_class()()
    if not form.validate():
        return _section_response(patient, spec, status=422, form=form, editing=entry.id)
    entries.save(patient, spec, form, _user(), entry=entry)
    session().commit()
    return _section_response(patient, spec)


@blueprint.post("/patients/<patient_id>/lab-results/<entry_id>/share")
@login_required
@require(EDIT_CLINICAL)
def share_lab_result(patient_id, entry_id):
    spec = sections.SECTIONS["lab-results"]
    patient = _patient_for(patient_id)
    entry = entries.get_entry(patient, spec, entry_id) or abort(404)
    entries.set_shared(patient, entry, request.form.get("shared") == "1")
    session().commit()
    return _section_response(patient, spec)


# --- encounters -------------------------------------------------------------------------


@blueprint.post("/patients/<patient_id>/encounters")
@login_required
@require(EDIT_CLINICAL)
def start_encounter(patient_id):
    patient = _patient_for(patient_id)
    form = EncounterForm()
    if not form.validate():
        return render_form_errors("charts/chart.html", **_chart_context(patient, encounter_form=form))
    encounter = encounters.start(patient, form, _user())
    session().commit()
    return redirect(url_for("charts.encounter", patient_id=patient.id, encounter_id=encounter.id))


def _encounter_page(
    patient,
    encounter,
    *,
    status: int = 200,
    soap_form=None,
    document_form=None,
    error: str | None = None,
    message: str | None = None,
):
    people = users_by_id(patient.practice_id, (encounter.provider_id, encounter.signed_by_id))
    return render(
        "charts/encounter.html",
        status=status,
        patient=patient,
        encounter=encounter,
        soap_form=soap_form or SoapForm(obj=encounter),
        document_form=document_form or DocumentForm(),
        documents=encounters.documents_of(encounter),
        people=people,
        error=error,
        message=message,
        can_edit=can(_user(), EDIT_CLINICAL),
        age=api.age(patient, _today()),
    )


def _change(patient, visit, change, done: str):
    """Make a change to the encounter and show it; a refusal is shown with its
    status, and committed too (a refused signature is audited)."""
    try:
        change()
    except ChartError as refused:
        session().commit()
        return _encounter_page(patient, visit, status=refused.status, error=str(refused))
    session().commit()
    return _encounter_page(patient, visit, message=done)


def _encounter_for(patient, encounter_id):
    return encounters.get_encounter(patient, encounter_id) or abort(404)


@blueprint.get("/patients/<patient_id>/encounters/<encounter_id>")
@writes_on_get
@login_required
@require(VIEW)
def encounter(patient_id, encounter_id):
    patient = _patient_for(patient_id)
    return _encounter_page(patient, _encounter_for(patient, encounter_id))


@blueprint.post("/patients/<patient_id>/encounters/<encounter_id>")
@login_required
@require(EDIT_CLINICAL)
def save_note(patient_id, encounter_id):
    patient = _patient_for(patient_id)
    visit = _encounter_for(patient, encounter_id)
    form = SoapForm()
    if not form.validate():
        return _encounter_page(patient, visit, status=422, soap_form=form)
    return _change(patient, visit, lambda: encounters.save_note(visit, form), "Note saved.")


@blueprint.post("/patients/<patient_id>/encounters/<encounter_id>/sign")
@login_required
@require(VIEW)
def sign_encounter(patient_id, encounter_id):
    patient = _patient_for(patient_id)
    visit = _encounter_for(patient, encounter_id)
    return _change(patient, visit, lambda: encounters.sign_note(patient, visit, _user()), "Note signed.")


@blueprint.post("/patients/<patient_id>/encounters/<encounter_id>/documents")
@login_required
@require(EDIT_CLINICAL)
def add_document(patient_id, encounter_id):
    patient = _patient_for(patient_id)
    visit = _encounter_for(patient, encounter_id)
    form = DocumentForm()
    if not form.validate():
        return _encounter_page(patient, visit, status=422, document_form=form)
    encounters.add_document(visit, form, _user())
    session().commit()
    return _encounter_page(patient, visit, message="Document added.")


@blueprint.post("/patients/<patient_id>/encounters/<encounter_id>/documents/<document_id>/sign")
@login_required
@require(VIEW)
def sign_document(patient_id, encounter_id, document_id):
    patient = _patient_for(patient_id)
    visit = _encounter_for(patient, encounter_id)
    document = encounters.get_document(visit, document_id) or abort(404)
    return _change(patient, visit, lambda: encounters.sign_document(document, _user()), "Document signed.")

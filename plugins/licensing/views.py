"""Account > Licenses: the table of license slots, assigning (search as you type),
revoking, buying more; and the license section's forms on a user's page."""

from __future__ import annotations

from flask import Blueprint, g, redirect, request, url_for
from flask_login import login_required
from jinja2_fragments.flask import render_block
from sqlalchemy import func

from pfcore.api import User, get_in_practice, is_partial_request, render, require, scoped_select, session, users_by_id

from .licenses import (
    CLINICIAN,
    MAX_PURCHASE,
    SECONDARY,
    SECONDARY_PER_CLINICIAN,
    TYPE_LABELS,
    LicenseError,
    LicenseSlot,
    assign,
    candidates,
    counts,
    ensure_slots,
    heading,
    license_of,
    purchase,
    remove,
    renewal_date,
    revoke,
    save_profile,
    slots_of,
)

blueprint = Blueprint("licensing", __name__, url_prefix="/licensing")


def _practice():
    return g.pfcore_user.practice


def _rows(practice_id: int):
    slots = slots_of(practice_id)
    users = users_by_id(practice_id, (s.user_id for s in slots))
    return [{"number": n, "slot": s, "user": users.get(s.user_id)} for n, s in enumerate(slots, 1)]


def _row(practice_id: int, slot_id: int):
    """One row of the table, numbered as in the whole table (the order of ``slots_of``:
    Clinician slots first, then the others, each by id): its number is counted in the
    database, not by loading every slot."""
    slot = get_in_practice(LicenseSlot, slot_id, practice_id)
    if slot.license_type == CLINICIAN:
        before = (LicenseSlot.license_type == CLINICIAN) & (LicenseSlot.id <= slot.id)
    else:
        before = (LicenseSlot.license_type == CLINICIAN) | (LicenseSlot.id <= slot.id)
    number = session().scalar(scoped_select(LicenseSlot, practice_id, func.count()).where(before))
    user = get_in_practice(User, slot.user_id, practice_id) if slot.user_id else None
    return {"number": number, "slot": slot, "user": user}


def _context(**extra):
    practice = _practice()
    return dict(
        practice=practice,
        rows=_rows(practice.id),
        heading=heading(practice.id),
        renews_on=renewal_date(practice.id),
        type_labels=TYPE_LABELS,
        **extra,
    )


def _row_response(slot_id: int, template: str = "licensing/_row.html", **extra):
    html = render_block(template, "row", row=_row(_practice().id, slot_id), type_labels=TYPE_LABELS, **extra)
    return html


def _table(status: int, error: str | None = None, message: str | None = None):
    """The whole table (after a conflict): htmx swaps it in place of the row that was clicked."""
    response = render(
        "licensing/index.html", block="licenses_table", status=status, **_context(error=error, message=message)
    )
    if is_partial_request():
        response.headers["HX-Retarget"] = "#licenses-table"
        response.headers["HX-Reswap"] = "outerHTML"
    return response


@blueprint.get("/")
@login_required
@require("users.manage")
def index():
    ensure_slots(_practice(), g.pfcore_user)
    session().commit()
    done = {
        "purchased": "Licenses added.",
        "removed": "Licenses removed.",
        "user_added": "User added. Assign them a license below.",
    }
    message = next((text for key, text in done.items() if request.args.get(key)), None)
    return render(
        "licensing/index.html",
        block="licenses_table" if request.args.get("fragment") else None,
        **_context(message=message),
    )


@blueprint.get("/slots/<slot_id>")
@login_required
@require("users.manage")
def row(slot_id):
    slot = get_in_practice(LicenseSlot, slot_id, _practice().id)
    if not is_partial_request():
        return redirect(url_for("licensing.index"))
    return _finish(_row_response(slot.id))


def _finish(html: str, status: int = 200):
    from flask import make_response

    response = make_response(html, status)
    response.vary.add("HX-Request")
    return response


@blueprint.get("/slots/<slot_id>/assign")
@login_required
@require("users.manage")
def assign_form(slot_id):
    practice = _practice()
    slot = get_in_practice(LicenseSlot, slot_id, practice.id)
    if slot.user_id is not None:
        return _table(409, error="That license was just assigned. The table shows who holds each license now.")
    query = request.args.get("q", "")[:100]
    context = dict(
        row=_row(practice.id, slot.id), q=query, found=candidates(practice.id, query), type_labels=TYPE_LABELS
    )
    if is_partial_request():
        return _finish(render_block("licensing/_assign_row.html", "row", **context))
    return render("licensing/assign.html", **context)


@blueprint.get("/slots/<slot_id>/candidates")
@login_required
@require("users.manage")
def search(slot_id):
    practice = _practice()
    slot = get_in_practice(LicenseSlot, slot_id, practice.id)
    query = request.args.get("q", "")[:100]
    if not is_partial_request():
        return redirect(url_for("licensing.assign_form", slot_id=slot.id, q=query))
    # The candidates block only names the slot: no row number to count at every keystroke.
    return _finish(
        render_block(
            "licensing/_assign_row.html",
            "candidates",
            row={"slot": slot},
            q=query,
            found=candidates(practice.id, query),
            type_labels=TYPE_LABELS,
        )
    )


def _change(change, slot_id):
    try:
        slot = change()
        session().commit()
    except LicenseError as error:
        session().rollback()
        if error.conflict:
            return _table(409, error=error.message)
        if is_partial_request():
            return _table(422, error=error.message)
        return render("licensing/index.html", status=422, **_context(error=error.message))
    if is_partial_request():
        return _finish(_row_response(slot.id))
    return redirect(url_for("licensing.index"))


@blueprint.post("/slots/<slot_id>/assign")
@login_required
@require("users.manage")
def assign_slot(slot_id):
    get_in_practice(LicenseSlot, slot_id, _practice().id)  # another practice's slot: 404
    return _change(lambda: assign(_practice(), slot_id, request.form.get("user_id"), g.pfcore_user), slot_id)


@blueprint.post("/slots/<slot_id>/revoke")
@login_required
@require("users.manage")
def revoke_slot(slot_id):
    get_in_practice(LicenseSlot, slot_id, _practice().id)
    return _change(lambda: revoke(_practice(), slot_id, g.pfcore_user), slot_id)


@blueprint.route("/purchase", methods=["GET", "POST"])
@login_required
@require("users.manage")
def purchase_form():
    practice = _practice()
    if request.method == "GET":
        return render(
            "licensing/purchase.html",
            quantity="1",
            error=None,
            max_purchase=MAX_PURCHASE,
            renews_on=renewal_date(practice.id),
        )
    quantity = request.form.get("quantity", "")
    try:
        order = purchase(practice, g.pfcore_user, quantity)
        session().commit()
    except LicenseError as error:
        session().commit() if error.keep else session().rollback()
        return render(
            "licensing/purchase.html",
            status=422,
            quantity=quantity[:10],
            error=error.message,
            max_purchase=MAX_PURCHASE,
            renews_on=renewal_date(practice.id),
        )
    return redirect(url_for("licensing.index", purchased=order.quantity))


def _remove_page(quantity: str, error: str | None = None, status: int = 200):
    practice = _practice()
    clinicians, secondaries = counts(practice.id)
    assigned = [s.license_type for s in slots_of(practice.id) if s.user_id is not None]
    return render(
        "licensing/remove.html",
        status=status,
        quantity=quantity,
        error=error,
        heading=heading(practice.id),
        clinicians=clinicians,
        secondaries=secondaries,
        assigned_clinician=assigned.count(CLINICIAN),
        assigned_secondary=assigned.count(SECONDARY),
        per_clinician=SECONDARY_PER_CLINICIAN,
    )


@blueprint.route("/remove", methods=["GET", "POST"])
@login_required
@require("users.manage")
def remove_form():
    practice = _practice()
    if request.method == "GET":
        ensure_slots(practice, g.pfcore_user)
        session().commit()
        return _remove_page("1")
    quantity = request.form.get("quantity", "")
    try:
        removed = remove(practice, g.pfcore_user, quantity)
        session().commit()
    except LicenseError as error:
        session().rollback()
        return _remove_page(quantity[:10], error=error.message, status=422)
    return redirect(url_for("licensing.index", removed=removed["clinician"]))


# --- the license section on a user's page ---------------------------------------------------


def _back_to_user(user):
    return redirect(url_for("core.user_detail", user_id=user.id))


def _user_change(user_id, change):
    practice = _practice()
    user = get_in_practice(User, user_id, practice.id)
    try:
        change(practice, user)
        session().commit()
    except LicenseError as error:
        session().rollback()
        return render("licensing/refused.html", status=409 if error.conflict else 422, error=error.message, user=user)
    return _back_to_user(user)


@blueprint.post("/users/<user_id>/assign")
@login_required
@require("users.manage")
def assign_user(user_id):
    wanted = request.form.get("license_type")

    def change(practice, user):
        if wanted not in (CLINICIAN, SECONDARY):
            raise LicenseError("Choose a license type.")
        free = [s for s in slots_of(practice.id) if s.license_type == wanted and s.user_id is None]
        if not free:
            raise LicenseError(f"Every {TYPE_LABELS[wanted]} is assigned. Revoke one or add licenses first.")
        assign(practice, free[0].id, user.id, g.pfcore_user)

    return _user_change(user_id, change)


@blueprint.post("/users/<user_id>/revoke")
@login_required
@require("users.manage")
def revoke_user(user_id):
    def change(practice, user):
        slot = license_of(user)
        if slot is None:
            raise LicenseError(f"{user.full_name} holds no license.", conflict=True)
        revoke(practice, slot.id, g.pfcore_user)

    return _user_change(user_id, change)


@blueprint.post("/users/<user_id>/profile")
@login_required
@require("users.manage")
def profile(user_id):
    return _user_change(
        user_id,
        lambda practice, user: save_profile(
            practice,
            user,
            npi=request.form.get("npi", ""),
            dea=request.form.get("dea", ""),
            identity_verified=request.form.get("identity_verified") == "1",
        ),
    )

"""The licensing rules: slots, assignment, purchase and removal, and why a user may
not take a licensed action (``reason``). The hooks in ``__init__.py`` and the pages
in ``views.py`` ask this module; every query is scoped to one practice."""

from __future__ import annotations

import datetime as dt

from flask import current_app, g
from sqlalchemy import func, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from pfcore.api import (
    ACCESS_LEVELS,
    Practice,
    User,
    audit,
    find_in_practice,
    for_update,
    parse_id,
    scoped_select,
    session,
    utcnow,
    without_control_characters,
)

from .models import CLINICIAN, SECONDARY, TYPE_LABELS, LicenseOrder, LicenseProfile, LicenseSlot

SECONDARY_PER_CLINICIAN = 3
MAX_PURCHASE = 50
TRIAL_CLINICIANS = 1

# The licensed actions, and how they read in a refusal.
ACTIONS = {
    "sign_chart_note": "Signing chart notes",
    "sign_document": "Signing documents",
    "sign_soap_note": "Signing SOAP notes",
    "e_prescribe": "Electronic prescribing",
}


class LicenseError(Exception):
    """An assignment, revocation or purchase that is refused; ``conflict`` when another
    administrator got there first (HTTP 409, the table is shown again)."""

    def __init__(self, message: str, *, conflict: bool = False, keep: bool = False):
        super().__init__(message)
        self.message = message
        self.conflict = conflict
        # Commit what was written (the audit record of a refused purchase) instead of rolling back.
        self.keep = keep


def plural(count: int, word: str, verb: str) -> str:
    """``1 Clinician License purchased``, ``2 Clinician Licenses purchased``."""
    return f"{count} {word} License{'' if count == 1 else 's'} {verb}"


# --- reading ---------------------------------------------------------------------


def slots_of(practice_id: int) -> list[LicenseSlot]:
    """Every slot of the practice: Clinician first, then Secondary, oldest first."""
    rows = session().scalars(scoped_select(LicenseSlot, practice_id).order_by(LicenseSlot.id)).all()
    return sorted(rows, key=lambda s: (s.license_type != CLINICIAN, s.id))


def license_of(user) -> LicenseSlot | None:
    """The slot the user holds (read afresh: a revocation counts at the next request)."""
    if user is None or getattr(user, "id", None) is None:
        return None
    return (
        session()
        .scalars(scoped_select(LicenseSlot, user.practice_id).where(LicenseSlot.user_id == user.id))
        .one_or_none()
    )


def profile_of(user) -> LicenseProfile | None:
    return (
        session()
        .scalars(scoped_select(LicenseProfile, user.practice_id).where(LicenseProfile.user_id == user.id))
        .one_or_none()
    )


def counts(practice_id: int) -> tuple[int, int]:
    """(Clinician licenses purchased, Secondary licenses available to the practice)."""
    rows = dict(
        session()
        .execute(
            scoped_select(LicenseSlot, practice_id, LicenseSlot.license_type, func.count()).group_by(
                LicenseSlot.license_type
            )
        )
        .all()
    )
    return rows.get(CLINICIAN, 0), rows.get(SECONDARY, 0)


def heading(practice_id: int) -> str:
    clinicians, secondaries = counts(practice_id)
    return (
        f"Manage users with licenses ({plural(clinicians, 'Clinician', 'purchased')}, "
        f"{plural(secondaries, 'Secondary', 'available')})"
    )


def renewal_date(practice_id: int) -> dt.date | None:
    return session().scalar(scoped_select(LicenseOrder, practice_id, func.max(LicenseOrder.renews_on)))


def search_text():
    """What the license search matches a word against: first name, last name and email in one text.

    A word (no spaces) matches the joined text exactly when it matches one of
    the three. On PostgreSQL it is lower-cased and served by the trigram index
    ``ix_users_search_trgm`` (migration licensing_0002), written here exactly
    as in the index so the planner can use it. SQLite's LIKE ignores (ASCII)
    case by itself, which is all its lower() knows. (docs/performance.md, P6)
    """
    space = literal_column("' '")
    joined = User.first_name.concat(space).concat(User.last_name).concat(space).concat(User.email)
    if session().get_bind().dialect.name == "sqlite":
        return joined
    return func.lower(joined)


def candidates(practice_id: int, query: str = "", limit: int = 10) -> list[User]:
    """Active users of the practice who hold no license, matching ``query`` (name or email)."""
    holders = scoped_select(LicenseSlot, practice_id, LicenseSlot.user_id).where(LicenseSlot.user_id.is_not(None))
    statement = scoped_select(User, practice_id).where(User.status == "active", User.id.not_in(holders))
    words = without_control_characters(query).lower().split()[:4]  # NUL: 500 on PostgreSQL
    for word in words:
        like = f"%{word.replace('%', '').replace('_', '')}%"
        statement = statement.where(search_text().like(like))
    if words and min(map(len, words)) >= 3 and session().get_bind().dialect.name == "postgresql":
        return _matches_then_first_by_name(statement, limit)
    return session().scalars(statement.order_by(User.last_name, User.first_name, User.id).limit(limit)).all()


def _matches_then_first_by_name(statement, limit: int) -> list[User]:
    """On PostgreSQL, when the trigram index can serve every word (three letters or more):
    the matches first, then the first ``limit`` of them by name. Asked as one query,
    PostgreSQL walks the practice's users in name order until enough match, reading most
    of 10,000 users for a name late in the alphabet ("nguy": 7 ms against 0.8 ms;
    docs/performance.md change 20). Shorter words match so many users that name order
    finds them at once."""
    matches = statement.cte("license_candidates").prefix_with("MATERIALIZED")
    found = aliased(User, matches)
    return session().scalars(select(found).order_by(found.last_name, found.first_name, found.id).limit(limit)).all()


# --- changing -------------------------------------------------------------------


def _add_slots(practice_id: int, clinicians: int, order: LicenseOrder) -> None:
    now = utcnow()
    for license_type, number in ((CLINICIAN, clinicians), (SECONDARY, clinicians * SECONDARY_PER_CLINICIAN)):
        session().add_all(
            LicenseSlot(practice_id=practice_id, license_type=license_type, order_id=order.id, created_at=now)
            for _ in range(number)
        )


def ensure_slots(practice, actor=None) -> None:
    """A practice starts (or switches licensing on) with the trial: 1 Clinician, 3 Secondary."""
    exists = scoped_select(LicenseOrder, practice.id, LicenseOrder.id).limit(1)
    if session().scalar(exists) is not None:
        return
    # Two first visits at once: the practice row serialises them.
    session().execute(for_update(select(Practice.id).where(Practice.id == practice.id))).scalar_one()
    if session().scalar(exists) is not None:
        return
    order = LicenseOrder(
        practice_id=practice.id,
        user_id=actor.id if actor else None,
        quantity=TRIAL_CLINICIANS,
        status="trial",
        reference="",
        renews_on=None,
        created_at=utcnow(),
    )
    session().add(order)
    session().flush()
    _add_slots(practice.id, TRIAL_CLINICIANS, order)
    audit.record(
        "licensing.trial_started",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={"clinician": TRIAL_CLINICIANS, "secondary": TRIAL_CLINICIANS * SECONDARY_PER_CLINICIAN},
        actor=actor,
    )


def _locked_slot(practice_id: int, slot_id) -> LicenseSlot:
    slot_id = parse_id(slot_id)
    if slot_id is None:
        raise LicenseError("No such license.")
    slot = (
        session()
        .scalars(
            for_update(scoped_select(LicenseSlot, practice_id).where(LicenseSlot.id == slot_id)).execution_options(
                populate_existing=True
            )
        )
        .one_or_none()
    )
    if slot is None:
        raise LicenseError("No such license.")
    return slot


def assign(practice, slot_id, user_id, actor) -> LicenseSlot:
    """Assign a free slot to an active user of the practice who holds no license.

    The slot row is locked (SELECT ... FOR UPDATE): of two administrators
    assigning it at once, the second waits and then finds it taken. The
    unique ``user_id`` stops one user getting two slots at once.
    """
    slot = _locked_slot(practice.id, slot_id)
    if slot.user_id is not None:
        raise LicenseError("That license was just assigned. The table shows who holds each license now.", conflict=True)
    user_id = parse_id(user_id)
    if user_id is None:
        raise LicenseError("Choose an EHR user.")
    user = find_in_practice(User, user_id, practice.id)
    if user is None:
        raise LicenseError("Choose an EHR user of your practice.")
    if user.status != "active":
        raise LicenseError(f"{user.full_name} is not an active user; only active users can hold a license.")
    held = license_of(user)
    if held is not None:
        raise LicenseError(
            f"{user.full_name} already holds a {TYPE_LABELS[held.license_type]}; a user holds at most one license.",
            conflict=True,
        )
    name = user.full_name
    try:
        # The change is made inside the savepoint: begin_nested() flushes what is pending
        # before it sets the savepoint, and a unique-key failure there aborted the whole
        # transaction (then reading the user's name failed with a 500; found by
        # tests/test_crash_safety.py under load on PostgreSQL).
        with session().begin_nested():
            slot.user_id, slot.assigned_at, slot.assigned_by_id = user.id, utcnow(), actor.id
            session().flush()
    except IntegrityError:
        raise LicenseError(
            f"{name} was just given another license; a user holds at most one license.", conflict=True
        ) from None
    audit.record(
        "licensing.assigned",
        practice_id=practice.id,
        object_type="user",
        object_id=user.id,
        details={"slot_id": slot.id, "license_type": slot.license_type, "user": user.email},
    )
    return slot


def revoke(practice, slot_id, actor) -> LicenseSlot:
    """Free the slot; its holder loses the licensed actions at their next request."""
    slot = _locked_slot(practice.id, slot_id)
    if slot.user_id is None:
        raise LicenseError("That license was just revoked. The table shows who holds each license now.", conflict=True)
    user = find_in_practice(User, slot.user_id, practice.id)
    slot.user_id, slot.assigned_at, slot.assigned_by_id = None, None, None
    session().flush()
    audit.record(
        "licensing.revoked",
        practice_id=practice.id,
        object_type="user",
        object_id=user.id,
        details={"slot_id": slot.id, "license_type": slot.license_type, "user": user.email},
    )
    return slot


def a_year_from(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def purchase(practice, actor, quantity) -> LicenseOrder:
    """Buy ``quantity`` Clinician licenses (each with 3 Secondary) through ``license_purchase``."""
    try:
        quantity = int(quantity)
    except (TypeError, ValueError):
        raise LicenseError(f"Enter a number of Clinician licenses from 1 to {MAX_PURCHASE}.") from None
    if not 1 <= quantity <= MAX_PURCHASE:
        raise LicenseError(f"Enter a number of Clinician licenses from 1 to {MAX_PURCHASE}.")
    ensure_slots(practice, actor)
    result = (
        current_app.extensions["pfcore.plugins"]
        .hook(practice)
        .license_purchase(practice=practice, user=actor, quantity=quantity)
        or {}
    )
    status = result.get("status", "recorded")
    if status == "refused":
        audit.record(
            "licensing.purchase_refused",
            practice_id=practice.id,
            outcome="failure",
            object_type="practice",
            object_id=practice.id,
            details={"quantity": quantity, "message": result.get("message", "")},
        )
        raise LicenseError(result.get("message") or "The purchase was refused.", keep=True)
    order = LicenseOrder(
        practice_id=practice.id,
        user_id=actor.id,
        quantity=quantity,
        status=status,
        reference=str(result.get("reference", ""))[:200],
        renews_on=a_year_from(utcnow().date()),
        created_at=utcnow(),
    )
    session().add(order)
    session().flush()
    _add_slots(practice.id, quantity, order)
    audit.record(
        "licensing.purchased",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={
            "order_id": order.id,
            "clinician": quantity,
            "secondary": quantity * SECONDARY_PER_CLINICIAN,
            "status": status,
            "reference": order.reference,
            "renews_on": order.renews_on.isoformat(),
        },
    )
    return order


def _licenses(count: int, word: str) -> str:
    """``1 Clinician license``, ``2 Secondary licenses``."""
    return f"{count} {word} license{'' if count == 1 else 's'}"


def remove(practice, actor, quantity) -> dict:
    """Remove ``quantity`` Clinician licenses, each with 3 Secondary; only free slots go.

    Every slot row of the practice is locked first, so an assignment cannot slip
    in between the check and the delete (it waits, then finds its slot gone).
    """
    ensure_slots(practice, actor)
    locked = (
        session()
        .scalars(
            for_update(scoped_select(LicenseSlot, practice.id).order_by(LicenseSlot.id)).execution_options(
                populate_existing=True
            )
        )
        .all()
    )
    total = {t: [s for s in locked if s.license_type == t] for t in (CLINICIAN, SECONDARY)}
    purchased = len(total[CLINICIAN])
    try:
        quantity = int(str(quantity).strip())
    except (TypeError, ValueError):
        quantity = None
    if purchased <= 1:
        raise LicenseError("Your practice has 1 Clinician license; the last Clinician license cannot be removed.")
    if quantity is None or not 1 <= quantity <= purchased:
        raise LicenseError(
            f"Enter a number of Clinician licenses from 1 to {purchased - 1}; "
            f"your practice has {_licenses(purchased, 'Clinician')}."
        )
    if quantity == purchased:
        raise LicenseError(
            f"Your practice has {_licenses(purchased, 'Clinician')}; removing "
            f"{quantity} would remove the last Clinician license. At least one must remain."
        )
    take = {CLINICIAN: quantity, SECONDARY: min(quantity * SECONDARY_PER_CLINICIAN, len(total[SECONDARY]))}
    for license_type, word in ((CLINICIAN, "Clinician"), (SECONDARY, "Secondary")):
        assigned = sum(1 for s in total[license_type] if s.user_id is not None)
        left = len(total[license_type]) - take[license_type]
        if assigned > left:
            raise LicenseError(
                f"{_licenses(assigned, word)} {'is' if assigned == 1 else 'are'} assigned; removing "
                f"{_licenses(quantity, 'Clinician')} would leave {left} {word} slot{'' if left == 1 else 's'}. "
                "Revoke licenses first."
            )
    removed = {}
    for license_type in (CLINICIAN, SECONDARY):
        free = [s for s in reversed(total[license_type]) if s.user_id is None][: take[license_type]]
        removed[license_type] = [s.id for s in free]
        for slot in free:
            session().delete(slot)
    session().flush()
    left = {t: len(total[t]) - take[t] for t in (CLINICIAN, SECONDARY)}
    audit.record(
        "licensing.removed",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={
            "clinician": take[CLINICIAN],
            "secondary": take[SECONDARY],
            "clinician_left": left[CLINICIAN],
            "secondary_left": left[SECONDARY],
            "slot_ids": removed[CLINICIAN] + removed[SECONDARY],
        },
        actor=actor,
    )
    return {"clinician": take[CLINICIAN], "secondary": take[SECONDARY]}


def save_profile(practice, user, *, npi: str, dea: str, identity_verified: bool) -> LicenseProfile:
    npi, dea = (npi or "").strip(), (dea or "").strip().upper()
    if npi and not (len(npi) == 10 and npi.isdigit()):
        raise LicenseError("An NPI number has 10 digits.")
    if dea and not (len(dea) == 9 and dea[:2].isalpha() and dea[2:].isdigit()):
        raise LicenseError("A DEA number has 2 letters and 7 digits.")
    profile = profile_of(user) or LicenseProfile(user_id=user.id, practice_id=practice.id)
    session().add(profile)
    changed = {}
    if profile.npi != npi:
        changed["npi"] = "set" if npi else "removed"
    if profile.dea != dea:
        changed["dea"] = "set" if dea else "removed"
    if identity_verified != (profile.identity_verified_at is not None):
        changed["identity_verified"] = identity_verified
        profile.identity_verified_at = utcnow() if identity_verified else None
        actor = g.get("pfcore_user")
        profile.identity_verified_by_id = actor.id if identity_verified and actor else None
    profile.npi, profile.dea, profile.updated_at = npi, dea, utcnow()
    session().flush()
    if changed:
        audit.record(
            "licensing.profile_changed",
            practice_id=practice.id,
            object_type="user",
            object_id=user.id,
            details={"user": user.email, **changed},
        )
    return profile


# --- the licensed actions ------------------------------------------------------------

EXPIRED_NOTICE = "Your subscription has expired. Sign-in and administration still work; licensed actions are paused."


def subscription_expired(practice) -> bool:
    """The practice's subscription has run out: licensed actions pause, and every page says so."""
    return practice.subscription_status == "expired"


def reason(practice, user, action: str) -> str | None:
    """Why ``user`` may not take the licensed ``action`` (None: they may)."""
    what = ACTIONS[action]
    if subscription_expired(practice):
        return f"{what} is not possible: your practice's subscription has expired. Renew it to continue."
    if user.status != "active":
        return f"{what} needs an active user."
    slot = license_of(user)
    if action == "e_prescribe":
        if slot is None or slot.license_type != CLINICIAN:
            return (
                f"{what} needs a Clinician license; {user.full_name} has none. "
                "An administrator assigns one under Licenses."
            )
        profile = profile_of(user)
        missing = [
            label
            for label, ok in (
                ("an NPI number", profile is not None and bool(profile.npi)),
                ("a DEA number", profile is not None and bool(profile.dea)),
                ("identity verification", profile is not None and profile.identity_verified_at is not None),
            )
            if not ok
        ]
        if missing:
            return f"{what} needs {', '.join(missing)} on {user.full_name}'s license profile."
        return None
    if slot is None:
        return (
            f"{what} needs a Clinician or Secondary license; {user.full_name} has none. "
            "An administrator assigns one under Licenses."
        )
    if action == "sign_soap_note" and user.access_level != 4:
        return (
            f"{what} needs access level 4 ({ACCESS_LEVELS[4].split(', ', 1)[1]}) as well as a license; "
            f"{user.full_name} is {user.access_level_label}."
        )
    return None

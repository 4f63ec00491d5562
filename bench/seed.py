"""Seed the benchmark's own data through pfcore's own code.

Practices are created with ``accounts.create_practice`` (the sign-up code),
licenses are bought and assigned with the licensing plugin's functions, and
every audit event that those make is recorded by ``audit.record``. Only the
bulk of the audit log (100k / 1M events) and of the user list (10,000
users) take a faithful bulk path, because one ``audit.record`` per event
would take half an hour:

* users: the same columns the add-user code writes, with argon2id hashes
  made by ``pfcore.security.passwords.hash_password`` (a few distinct
  hashes are reused, so seeding 10,000 users does not take 10,000 hashes);
* audit events: each event's fields are made as ``audit.record`` makes them
  (the same text cuts, the same details JSON) and hashed with
  ``audit.event_hash`` onto the practice's chain, continuing after the
  chain head, and the head row is moved with each batch in the same
  transaction. ``audit.verify`` checks the result (P9 runs it on every
  chain and the harness fails if a chain is broken).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field

from sqlalchemy import insert, select, text, update

from pfcore import accounts, audit
from pfcore.db import session
from pfcore.models import AuditChainHead, AuditEvent, Practice, PracticePlugin, User, utcnow
from pfcore.security.passwords import hash_password

PASSWORD = "bench practice password 2026"
# Chart views carry the charts plugin's audit dimension patient_id, one of PATIENTS
# patients; BUSY_PATIENT has a tenth of them (P3's patient filter pages through them).
PATIENTS = 400
BUSY_PATIENT = 7

FIRST_NAMES = (
    "Ada Grace Alan Edsger Barbara Donald Frances John Katherine Margaret Linus Guido Ken Dennis Bjarne Niklaus "
    "Tim Radia Shafi Leslie Hedy Annie Joan Mary Sophie Carl Emmy Marie Rosalind Lise Chien Dorothy Jean Evelyn "
    "Ida Karen Lynn Sally Judith Ruth Nora Paul Omar Priya Ravi Sanjay Wei Yuki Hana Mateo Lucia Diego Elena "
    "Pierre Amelie Lars Ingrid Olu Chidi Amara Kofi Zara Layla Samir Noor Tariq Mina Jae Min Soo Arjun Meera "
    "Tomas Anya Ivan Olga Pavel Kai Leilani Mason Ava Liam Emma Noah Olivia Ethan Mia Lucas Chloe Henry Isla "
    "Oscar Ruby Felix Iris"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall "
    "Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins Reyes "
    "Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard "
    "Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes Price "
    "Alvarez Castillo Sanders Patel Myers Long Ross Foster"
).split()

# What a practice's audit log is made of, roughly in these proportions.
ACTIONS = [
    ("signin.success", 30, lambda r: {"method": r.choice(["email", "practice_id", "email+sms", "practice_id+totp"])}),
    ("signin.failure", 4, lambda r: {"method": "email", "reason": "wrong password"}),
    ("session.locked", 8, lambda r: {"reason": "idle"}),
    ("session.unlocked", 6, lambda r: {}),
    ("signout", 10, lambda r: {}),
    ("mfa.success", 12, lambda r: {"factor": r.choice(["sms", "totp", "webauthn"])}),
    ("user.updated", 5, lambda r: {"access_level": r.randint(1, 4)}),
    ("user.created", 2, lambda r: {"access_level": r.randint(1, 4), "admin": False}),
    ("licensing.assigned", 3, lambda r: {"license_type": "secondary", "slot_id": r.randint(1, 40)}),
    ("licensing.revoked", 2, lambda r: {"license_type": "secondary", "slot_id": r.randint(1, 40)}),
    ("audit.exported", 1, lambda r: {"start": "2026-01-01"}),
    ("practice.pac_rotated", 1, lambda r: {"old_code_ends_with": f"{r.randint(0, 999):03d}"}),
    ("chart.viewed", 16, lambda r: {"section": r.choice(["summary", "notes", "medications"])}),
]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
]


@dataclass
class SeededPractice:
    id: int
    name: str
    admin_id: int
    admin_email: str
    user_emails: list[str] = field(default_factory=list)
    user_ids: list[int] = field(default_factory=list)
    events: int = 0


def create_practice(
    name: str, admin_email: str, *, users: int, clinicians: int = 0, assign: int = 0, rng: random.Random
) -> SeededPractice:
    """A practice signed up through the real code, every plugin on, ``users`` active users
    (the administrator included) and ``clinicians`` Clinician licenses (each with 3 Secondary),
    ``assign`` of them assigned. Runs in an app context; commits."""
    from flask import current_app

    practice, admin = accounts.create_practice(
        name=name,
        specialty="Family medicine",
        phone="415-555-0100",
        email=admin_email,
        first_name="Ada",
        last_name="Admin",
        password=PASSWORD,
    )
    session().flush()
    _enable_every_plugin(practice, current_app.extensions["pfcore.plugins"])
    _second_factor_optional(practice)
    session().commit()
    seeded = SeededPractice(
        id=practice.id,
        name=practice.name,
        admin_id=admin.id,
        admin_email=admin.email,
        user_emails=[admin.email],
        user_ids=[admin.id],
    )
    add_users(seeded, users - 1, rng)
    if clinicians:
        _licenses(practice, admin, seeded, clinicians, assign)
    return seeded


def _enable_every_plugin(practice: Practice, registry) -> None:
    """P8 asks for every plugin enabled: switch on what the defaults left off."""
    on = set(session().scalars(select(PracticePlugin.plugin_name).where(PracticePlugin.practice_id == practice.id)))
    for name in sorted(registry.available - on):
        session().add(PracticePlugin(practice_id=practice.id, plugin_name=name, enabled_at=utcnow()))
        audit.record("plugin.enabled", practice_id=practice.id, object_type="plugin", object_id=name)
    session().flush()
    registry.forget_enabled()


def _second_factor_optional(practice: Practice) -> None:
    """Settings > Sign-in security, "Everyone must use a second factor" unticked, as the
    settings page saves it (same JSON, same audit event). Users with no factor enrolled
    then finish signing in with email and password; nothing else changes (argon2
    parameters, CSRF, rate limits and the audit stay as they are)."""
    from pfcore.security import mfa

    before = mfa.policy(practice)
    after = {**before, "required": False}
    practice.settings = {**(practice.settings or {}), "mfa": after}
    audit.record(
        "practice.second_factor_policy_changed",
        practice_id=practice.id,
        object_type="practice",
        object_id=practice.id,
        details={"from": before, "to": after},
    )


def analyze() -> None:
    """VACUUM ANALYZE after the bulk load, as PostgreSQL's documentation advises after
    loading data and as autovacuum does by itself a minute or so later (inserts alone
    start it since PostgreSQL 13). Measured before that, the license search over 10,000
    just-loaded users ran on plans made without statistics (P6 p95 18-23 ms, 10 ms after
    ANALYZE), and with the users' trigram index still unvacuumed (its new entries in
    GIN's pending list, its size unknown to the planner) a search read every user of
    the practice instead of the index (7.6 ms against 1.1 ms a query). SQLite's planner
    is not given statistics (pfcore does not run ANALYZE there)."""
    bind = session().get_bind()
    if bind.dialect.name == "postgresql":
        session().commit()
        with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))


def add_users(seeded: SeededPractice, count: int, rng: random.Random, *, batch: int = 2000) -> None:
    """``count`` active users, as the add-user code stores them (bulk insert)."""
    if count <= 0:
        return
    hashes = [hash_password(PASSWORD) for _ in range(4)]
    now = utcnow()
    start = len(seeded.user_ids)
    rows = []
    for i in range(start, start + count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}.{i}@p{seeded.id}.bench.example.org".lower()
        rows.append(
            dict(
                practice_id=seeded.id,
                first_name=first,
                last_name=last,
                email=email,
                username=f"{first[0]}{last}{i}".lower()[:64],
                password_hash=hashes[i % len(hashes)],
                access_level=rng.choice([1, 1, 2, 2, 3, 4]),
                is_admin=False,
                status="active",
                session_generation=0,
                created_at=now,
            )
        )
        seeded.user_emails.append(email)
    for chunk in range(0, len(rows), batch):
        session().execute(insert(User), rows[chunk : chunk + batch])
    # Each addition is audited, as the add-user page does.
    ids = (
        session()
        .scalars(select(User.id).where(User.practice_id == seeded.id, User.id != seeded.admin_id).order_by(User.id))
        .all()
    )
    seeded.user_ids = [seeded.admin_id] + list(ids)
    if count <= 200:
        for row, user_id in zip(rows, ids):
            audit.record(
                "user.created",
                practice_id=seeded.id,
                object_type="user",
                object_id=user_id,
                details={"email": row["email"], "access_level": row["access_level"], "admin": False},
            )
    session().commit()


def _licenses(practice, admin, seeded: SeededPractice, clinicians: int, assign: int) -> None:
    """Buy and assign licenses with the licensing plugin's own functions (audited)."""
    from pfcore_plugins.licensing import licenses as licensing

    practice = session().get(Practice, practice.id)
    admin = session().get(User, admin.id)
    have = licensing.counts(practice.id)[0]
    if clinicians > have:
        licensing.purchase(practice, admin, clinicians - have)
    session().commit()
    slots = [s for s in licensing.slots_of(practice.id) if s.user_id is None]
    for slot, user_id in zip(slots, seeded.user_ids[1 : 1 + assign]):
        licensing.assign(practice, slot.id, user_id, admin)
    session().commit()


# --- the audit log in bulk -------------------------------------------------------------


def add_audit_events(
    seeded: SeededPractice,
    count: int,
    rng: random.Random,
    *,
    days: int = 365,
    filter_user_share: float = 0.10,
    batch: int = 20000,
    progress=None,
) -> None:
    """Append ``count`` events to the practice's chain, spread over the last ``days`` days
    (oldest first, as they would have been written). The administrator is the actor of
    ``filter_user_share`` of them (the audit report's user filter in P3)."""
    if count <= 0:
        return
    engine = session().get_bind()
    now = utcnow()
    start = now - dt.timedelta(days=days)
    span = (now - dt.timedelta(minutes=5) - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(count))
    weights = [w for _name, w, _d in ACTIONS]
    users = (
        session()
        .execute(select(User.id, User.first_name, User.last_name, User.email).where(User.practice_id == seeded.id))
        .all()
    )
    labels = {u.id: f"{u.first_name} {u.last_name} <{u.email}>" for u in users}
    others = [u.id for u in users if u.id != seeded.admin_id] or [seeded.admin_id]
    session().commit()  # the batches below write on their own connection (SQLite: one writer)
    columns = [c.key for c in AuditEvent.__table__.columns if c.key != "id"]
    keyring = audit.current_keyring()
    done = 0
    while done < count:
        size = min(batch, count - done)
        with engine.begin() as connection:
            dialect = connection.dialect.name
            head_statement = select(AuditChainHead).where(AuditChainHead.chain_id == seeded.id)
            if dialect != "sqlite":
                head_statement = head_statement.with_for_update()
            head = connection.execute(head_statement).one_or_none()
            if head is None:
                connection.execute(
                    insert(AuditChainHead).values(chain_id=seeded.id, seq=0, hash=audit.GENESIS_HASH, keyed_from_seq=1)
                )
                seq, prev = 0, audit.GENESIS_HASH
            else:
                seq, prev = head.seq, head.hash
            rows = []
            first_seq = seq + 1
            for offset in offsets[done : done + size]:
                seq += 1
                actor = seeded.admin_id if rng.random() < filter_user_share else rng.choice(others)
                action, _w, details = rng.choices(ACTIONS, weights)[0]
                dimensions = "{}"
                if action == "chart.viewed":
                    patient = BUSY_PATIENT if rng.random() < 0.1 else rng.randint(1, PATIENTS)
                    dimensions = audit.encode_dimensions({"patient_id": patient})
                fields = {
                    "key_id": keyring.signing_id,
                    "chain_id": seeded.id,
                    "seq": seq,
                    "occurred_at": start + dt.timedelta(seconds=offset),
                    "practice_id": seeded.id,
                    "actor_type": "user",
                    "actor_id": actor,
                    "actor_label": labels[actor],
                    "action": action,
                    "object_type": "user",
                    "object_id": str(rng.choice(others)),
                    "outcome": "failure" if action == "signin.failure" else "success",
                    "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    "user_agent": rng.choice(USER_AGENTS),
                    "session_id": rng.randint(1, 50000),
                    "dimensions": dimensions,
                    "details": json.dumps(details(rng), sort_keys=True, separators=(",", ":"), default=str),
                    "prev_hash": prev,
                }
                for name, size_limit in audit._TEXT_SIZES.items():
                    if isinstance(fields.get(name), str):
                        fields[name] = fields[name][:size_limit]
                fields["hash"] = prev = audit.event_hash(fields, keyring)
                rows.append(fields)
            _insert_events(connection, rows, columns)
            _index_dimensions(connection, seeded.id, first_seq, seq)
            connection.execute(
                update(AuditChainHead).where(AuditChainHead.chain_id == seeded.id).values(seq=seq, hash=prev)
            )
        done += size
        seeded.events += size
        if progress:
            progress(done, count)


def _index_dimensions(connection, chain_id: int, first_seq: int, last_seq: int) -> None:
    """The dimension index rows of the events just inserted, as audit.record writes them."""
    value = (
        "CAST(dimensions AS json)->>'patient_id'"
        if connection.dialect.name == "postgresql"
        else "CAST(json_extract(dimensions, '$.patient_id') AS TEXT)"
    )
    connection.execute(
        text(
            "INSERT INTO audit_event_dimensions (event_id, name, value, practice_id, occurred_at)"
            f" SELECT id, 'patient_id', {value}, practice_id, occurred_at FROM audit_events"
            " WHERE chain_id = :c AND seq BETWEEN :lo AND :hi AND dimensions <> '{}'"
        ),
        {"c": chain_id, "lo": first_seq, "hi": last_seq},
    )


def _insert_events(connection, rows: list[dict], columns: list[str]) -> None:
    if connection.dialect.name == "postgresql":
        # COPY: the fastest bulk path into PostgreSQL; values as the column types store them.
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY audit_events ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    values = [row[c] for c in columns]
                    values[columns.index("occurred_at")] = row["occurred_at"].astimezone(dt.UTC).replace(tzinfo=None)
                    copy.write_row(values)
    else:
        connection.execute(insert(AuditEvent), rows)

"""Crash safety: SIGKILL an app server (``pfcore serve``: gunicorn's master and
both workers at once) in the middle of a stream of audited writes (users
added and their access level changed, texted codes, licenses assigned and
revoked through the Licenses page's htmx posts), restart it on the same
database, and check that

- every change whose request got a success answer is there; each license
  slot is held as the last answer about it says (or as the request that was
  in flight at the kill would have left it), and no user holds two slots;
- the audit chains verify, and go on growing after the restart;
- the outbox delivers every message of every committed change to the real
  SMTP server and SMS webhook receiver exactly once: each message arrives
  once, except one whose delivery was under way at the kill (accepted by the
  receiver, not yet marked sent), which arrives again under the same
  Message-ID / Idempotency-Key so that the receiver can drop the repeat;
  nothing arrives for a change that did not commit.

On SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import threading
import time
import urllib.error
from collections import Counter

import pytest
import time_machine
from sqlalchemy import select

from pfcore import audit, create_app, messaging
from pfcore.db import session
from pfcore.models import AuditEvent, OutboxMessage, User, utcnow
from pfcore_plugins.licensing.models import LicenseSlot

from .support.journeys import SIGNUP
from .support.live_server import HttpBrowser, Proxy, ServerProcess, start_pfcore_serve
from .support.records import add_active_user

pytestmark = pytest.mark.slow

SECRET = "crash-safety-secret-" + "c" * 44
TEXTERS = 6
WANTED = {"added": 8, "levels": 5, "texts": 3, "assigned": 6, "revoked": 4}  # successes seen before the kill
LICENSES = "/licensing/"


def start_server(tmp_path, database_url, smtp, texts, name: str, workers: int = 2) -> ServerProcess:
    return start_pfcore_serve(
        tmp_path, database_url, smtp, texts, secret=SECRET, name=f"server-{name}", workers=workers
    )


class Stream:
    """Audited writes from several threads; what got a success answer, and whether the server went away."""

    def __init__(self):
        self.lock = threading.Lock()
        self.enough = threading.Event()
        self.added: dict[str, int] = {}  # email -> user id, for "user added" answered with success
        self.levels: set[int] = set()  # users whose "access level 3" change was answered with success
        self.texts: set[str] = set()  # phones whose "text me a code" was answered with success
        # (audit action, slot id, user id) of each assignment and revocation answered with success, in order
        self.licenses: list[tuple[str, int, int]] = []
        self.pending: dict[int, tuple[str, int]] = {}  # slot id -> (action, user id) sent, not yet answered
        self.refused: list[str] = []  # answers that were neither success nor a dead server
        self.killed = threading.Event()

    def note(self, kind: str, value) -> None:
        with self.lock:
            target = getattr(self, kind)
            if isinstance(target, dict):
                target.update([value])
            elif isinstance(target, list):
                target.append(value)
            else:
                target.add(value)
            if all(len(getattr(self, k)) >= n for k, n in WANTED.items()):
                self.enough.set()

    @property
    def assigned(self) -> list:
        return [change for change in self.licenses if change[0] == "licensing.assigned"]

    @property
    def revoked(self) -> list:
        return [change for change in self.licenses if change[0] == "licensing.revoked"]

    def run(self, work) -> threading.Thread:
        def guarded():
            try:
                work()
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if not self.killed.is_set():  # otherwise: the server was killed, this request got no answer
                    self.refused.append(f"{type(exc).__name__}: {exc}")
            except BaseException as exc:  # noqa: BLE001  (reported by the test)
                self.refused.append(f"{type(exc).__name__}: {exc}")

        thread = threading.Thread(target=guarded)
        thread.start()
        return thread


def test_sigkill_mid_stream_loses_no_answered_change_and_delivers_each_message_once(
    tmp_path, database_url, smtp, inbox, texts
):
    # Setup, inspection, and the worker that takes over claims left by the dead server.
    setup = create_app(
        {
            "database_url": database_url,
            "secret_key": SECRET,
            "instance_path": str(tmp_path / "setup"),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "sms_sender": "webhook",
            "sms_webhook_url": texts.url,
            "sms_webhook_token": texts.token,
        }
    )
    server = start_server(tmp_path, database_url, smtp, texts, "first")
    try:
        admin = HttpBrowser(server.base_url, proxy=Proxy(client="198.51.100.1"))
        # Signing in starts a new CSRF seed, set by this answer: the threads share it from their first request.
        assert admin.submit("/signup", SIGNUP).status == 302
        phones = [f"+1415555{2000 + n}" for n in range(TEXTERS)]
        licensees = {}  # user id -> email: the texters get licenses too
        for n, phone in enumerate(phones):
            email = f"texter{n}@crash.example.com"
            licensees[
                add_active_user(
                    setup,
                    first_name="Texter",
                    last_name=f"Number{n}",
                    email=email,
                    username=f"texter{n}",
                    password="a long enough password",
                    phone=phone,
                )
            ] = email
        with setup.app_context():
            slot_ids = list(session().scalars(select(LicenseSlot.id).order_by(LicenseSlot.id)))
        assert len(slot_ids) == 4  # the trial: 1 Clinician, 3 Secondary
        stream = Stream()
        stop = threading.Event()

        def add_and_promote(thread: int):
            browser = admin.on(server.base_url)
            number = 0
            while not stop.is_set():
                email = f"added{thread}-{number}@crash.example.com"
                number += 1
                answer = browser.submit(
                    "/settings/users/new",
                    {"first_name": "Added", "last_name": f"User{thread}x{number}", "email": email, "access_level": "1"},
                )
                if answer.status != 302:
                    stream.refused.append(f"add {answer.status}")
                    return
                user_id = int(re.search(r"/settings/users/(\d+)", answer.location).group(1))
                stream.note("added", (email, user_id))
                detail = f"/settings/users/{user_id}"
                answer = browser.submit(f"{detail}/access-level", {"access_level": "3"}, page=detail)
                if answer.status != 200 or "Access level changed." not in answer.text:
                    stream.refused.append(f"level {answer.status}")
                    return
                stream.note("levels", user_id)

        def ask_for_codes(thread: int):
            for n in range(thread, TEXTERS, 2):
                if stop.is_set():
                    return
                browser = HttpBrowser(server.base_url, proxy=Proxy(client=f"198.51.100.{10 + n}"))
                first = browser.submit(
                    "/login-email/", {"email": f"texter{n}@crash.example.com", "password": "a long enough password"}
                )
                if first.status != 302 or not first.location.endswith("/signin/verify"):
                    stream.refused.append(f"sign-in {first.status} {first.location}")
                    return
                sent = browser.submit("/mfa-sms/sms", {"action": "send"})
                if sent.status != 200:
                    stream.refused.append(f"send {sent.status}")
                    return
                stream.note("texts", phones[n])

        def assign_and_revoke(thread: int):
            """The Licenses page: this thread's slots in turn, each assigned to the next texter, then revoked.

            The two threads share the texters: an assignment to one who holds the other thread's
            slot is answered 409 and changes nothing.
            """
            browser = admin.on(server.base_url)
            token = browser.token(LICENSES)  # in the page's forms and its <body hx-headers>
            mine = slot_ids[thread::2]
            held: dict[int, int | None] = dict.fromkeys(mine)
            people = list(licensees)
            turn, pick = 0, thread
            while not stop.is_set():
                slot = mine[turn % len(mine)]
                turn += 1
                if held[slot] is None:
                    user_id = people[pick % len(people)]
                    pick += 1
                    if user_id in held.values():
                        continue
                    action, change, fields = "assign", ("licensing.assigned", user_id), {"user_id": user_id}
                    shows = licensees[user_id]  # the row answered shows the holder ...
                else:
                    action, change, fields = "revoke", ("licensing.revoked", held[slot]), {}
                    shows = "Assign license"  # ... or a free slot
                stream.pending[slot] = change
                answer = browser.htmx_submit(
                    f"/licensing/slots/{slot}/{action}",
                    dict(fields, csrf_token=token),
                    page=LICENSES,
                    target=f"tr#license-slot-{slot}",
                )
                del stream.pending[slot]
                if answer.status == 409 and "a user holds at most one license" in answer.text:
                    continue
                if answer.status != 200 or shows not in answer.text:
                    stream.refused.append(f"{action} {answer.status}")
                    return
                held[slot] = change[1] if action == "assign" else None
                stream.note("licenses", (change[0], slot, change[1]))

        threads = [stream.run(lambda t=t: add_and_promote(t)) for t in range(3)]
        threads += [stream.run(lambda t=t: ask_for_codes(t)) for t in range(2)]
        threads += [stream.run(lambda t=t: assign_and_revoke(t)) for t in range(2)]
        reached = stream.enough.wait(timeout=120)
        stream.killed.set()
        server.kill()  # mid-stream: the threads' requests are in flight
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert reached, f"the stream did not get going: {stream.refused}\n{server.output()[-3000:]}"
        assert not stream.refused, f"{stream.refused}\n{server.output()[-3000:]}"

        # Claimed for delivery but not marked sent when the server died.
        with setup.app_context():
            in_flight = set(
                session().scalars(
                    select(OutboxMessage.id).where(OutboxMessage.status == "pending", OutboxMessage.attempts > 0)
                )
            )

        server = start_server(tmp_path, database_url, smtp, texts, "second", workers=1)
        # The chain goes on after the crash; this request's delivery also sends the backlog that is due.
        after = admin.on(server.base_url).submit(
            "/settings/users/new",
            {"first_name": "After", "last_name": "Restart", "email": "after@crash.example.com", "access_level": "2"},
        )
        assert after.status == 302, after.text[:2000]
        # The new server's delivery thread sends the backlog after its answer; the jump in time
        # below must not make its claims look lapsed while it is still sending.
        _wait_until_sent_but(setup, in_flight)
        # A claim outlives its deliverer for messaging.CLAIM_SECONDS; then the worker takes it again.
        later = utcnow() + dt.timedelta(seconds=messaging.CLAIM_SECONDS + 1)
        with time_machine.travel(later, tick=True):
            messaging.deliver_due(setup, limit=10_000)

        with setup.app_context():
            users = {user.email: user for user in session().scalars(select(User))}
            events = session().scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
            slots = {slot.id: slot.user_id for slot in session().scalars(select(LicenseSlot))}
            rows = session().scalars(select(OutboxMessage).order_by(OutboxMessage.id)).all()
            result = audit.verify(session())
    finally:
        server.stop()
        setup.extensions["pfcore.engine"].dispose()

    # Every answered change is there, with its audit event and its message.
    audited = Counter((event.action, event.object_id) for event in events)
    for email, user_id in stream.added.items():
        assert users[email].id == user_id
        assert audited[("user.created", str(user_id))] == 1
    for user_id in stream.levels:
        user = next(u for u in users.values() if u.id == user_id)
        assert user.access_level == 3
        assert audited[("user.access_level_changed", str(user_id))] == 1
    # Each slot's audited changes are the answered ones, in order, and perhaps the one in flight at
    # the kill; the slot is held as the last of them says; no user holds two slots.
    licensing = [
        (event.action, json.loads(event.details)["slot_id"], int(event.object_id))
        for event in events
        if event.action in ("licensing.assigned", "licensing.revoked")
    ]
    for slot in slot_ids:
        answered = [(action, user_id) for action, s, user_id in stream.licenses if s == slot]
        logged = [(action, user_id) for action, s, user_id in licensing if s == slot]
        assert logged in (answered, answered + [stream.pending.get(slot)]), (slot, answered, logged)
        holder = logged[-1][1] if logged and logged[-1][0] == "licensing.assigned" else None
        assert slots[slot] == holder, (slot, slots[slot], logged)
    holders = [user_id for user_id in slots.values() if user_id is not None]
    assert len(holders) == len(set(holders)), slots
    emailed = Counter(row.recipient for row in rows if row.channel == "email")
    texted = Counter(row.recipient for row in rows if row.channel == "sms")
    assert all(emailed[email] == 1 for email in list(stream.added) + ["after@crash.example.com"])
    assert all(texted[phone] >= 1 for phone in stream.texts)
    assert result.intact, [problem.describe() for problem in result.problems]

    # Every committed message was delivered; each arrived once, or twice under
    # the same id if its delivery was under way at the kill.
    assert {row.status for row in rows} == {"sent"}, [
        (r.id, r.status, r.last_error) for r in rows if r.status != "sent"
    ]
    by_id = {row.id: row for row in rows}
    received = Counter()
    for message, recipients in zip(inbox.messages, inbox.recipients):
        outbox_id = _outbox_id(message["Message-ID"])
        assert outbox_id in by_id, f"an email for no committed change: {message['Message-ID']}"
        assert [r.lower() for r in recipients] == [by_id[outbox_id].recipient.lower()]
        received[outbox_id] += 1
    for text in texts.messages:
        outbox_id = _outbox_id(text["_idempotency_key"])
        assert outbox_id in by_id, f"a text for no committed change: {text}"
        assert text["to"] == by_id[outbox_id].recipient and text["body"] == by_id[outbox_id].body
        received[outbox_id] += 1
    for row in rows:
        assert received[row.id] == 1 or (received[row.id] == 2 and row.id in in_flight), (
            row.id,
            row.channel,
            received[row.id],
            row.id in in_flight,
        )


def _wait_until_sent_but(app, in_flight: set[int], timeout: float = 60) -> None:
    """Wait (polling the table: the server is another process) until every message but the
    ``in_flight`` ones, still claimed by the killed server, is sent."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            waiting = (
                session()
                .scalars(
                    select(OutboxMessage.id).where(
                        OutboxMessage.status == "pending", OutboxMessage.id.not_in(in_flight or {0})
                    )
                )
                .all()
            )
        if not waiting:
            return
        time.sleep(0.1)
    raise AssertionError(f"messages {waiting} were not delivered by the restarted server")


def _outbox_id(delivery_id: str | None) -> int:
    match = re.search(r"pfcore-outbox-(\d+)-", delivery_id or "")
    assert match, delivery_id
    return int(match.group(1))

"""Real servers for tests: an SMTP server (mail), an HTTP receiver for the SMS/voice
webhook (texts and calls), Redis, free ports.

Tests that need a service skip with a reason when it is not reachable,
unless PFCORE_REQUIRE_SERVICES=1 (as in CI), where they fail instead.
"""

from __future__ import annotations

import email
import os
import socket
import threading
import time
from email.message import Message

import pytest

REQUIRE_SERVICES = os.environ.get("PFCORE_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_service(reason: str):
    """Skip (on a laptop) or fail (in CI) for a service that is not there."""
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def delivered_so_far() -> None:
    """Wait until the apps in this process have delivered what their requests queued.

    Messages leave in a background thread after the answer
    (pfcore.background_delivery); a test reading what was received first
    lets that thread finish, instead of sleeping. Servers in other processes
    (gunicorn) are waited for with ``wait_for``.
    """
    from pfcore.background_delivery import wait_for_deliveries

    wait_for_deliveries()


class Inbox:
    """Messages received by the test SMTP server (read after the app's deliveries are done)."""

    def __init__(self):
        self._messages: list[Message] = []
        self._recipients: list[list[str]] = []
        self._lock = threading.Lock()

    @property
    def messages(self) -> list[Message]:
        delivered_so_far()
        return self._messages

    @property
    def recipients(self) -> list[list[str]]:
        delivered_so_far()
        return self._recipients

    def add(self, rcpt_tos, raw: bytes):
        with self._lock:
            self._recipients.append(list(rcpt_tos))
            self._messages.append(email.message_from_bytes(raw))

    def clear(self):
        with self._lock:
            self._messages.clear()
            self._recipients.clear()

    def to(self, address: str) -> list[Message]:
        delivered_so_far()
        with self._lock:
            return [m for m, r in zip(self._messages, self._recipients) if address.lower() in [x.lower() for x in r]]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[Message]:
        """Messages to ``address`` once ``count`` have arrived (the browser path delivers after the response)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s) to {address}, got {len(self.to(address))}")


def body_of(message: Message) -> str:
    if message.is_multipart():
        return "".join(
            part.get_payload(decode=True).decode() for part in message.walk() if part.get_content_type() == "text/plain"
        )
    return message.get_payload(decode=True).decode()


class SmtpServer:
    """A real SMTP server. ``delay``: a slow relay, answering each message that many seconds
    late. ``gate``: a stuck one, answering no recipient until the event is set (``reached`` is
    set when a client is waiting there)."""

    def __init__(self, *, delay: float = 0.0, gate: threading.Event | None = None):
        import asyncio

        from aiosmtpd.controller import Controller

        self.inbox = Inbox()
        self.gate = gate
        self.reached = threading.Event()
        inbox, reached = self.inbox, self.reached

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if gate is not None:
                    reached.set()
                    while not gate.is_set():
                        await asyncio.sleep(0.01)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                await asyncio.sleep(delay)
                inbox.add(envelope.rcpt_tos, envelope.original_content or envelope.content)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self):
        self.controller.start()

    def stop(self):
        self.controller.stop()


class WebhookReceiver:
    """A real HTTP server that records the JSON the SMS/voice webhook sender POSTs."""

    def __init__(self, token: str = "webhook-test-token"):
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.token = token
        self.received: list[dict] = []  # as they arrive (the handler's thread); tests read ``messages``
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                if receiver.fail_next:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                body["_authorization"] = self.headers.get("Authorization", "")
                body["_idempotency_key"] = self.headers.get("Idempotency-Key", "")
                receiver.received.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def messages(self) -> list[dict]:
        """What was received, once the apps in this process have delivered what they queued."""
        delivered_so_far()
        return self.received

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()

    def wait_for(self, to: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Texts/calls to ``to`` once ``count`` have arrived (from this process's apps or a server's)."""
        delivered_so_far()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.received if m["to"] == to]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} text(s)/call(s) to {to}, got {[m['to'] for m in self.received]}")

    def next_code(self, to: str):
        """A function returning the code of the next text to ``to`` (one sent after this call).

        For servers in other processes, which text after their answer: ``last_code`` could
        read the previous code while the new one is still on its way.
        """
        already = len([m for m in self.received if m["to"] == to])
        return lambda: self.last_code(to, count=already + 1)

    def last_code(self, to: str, count: int = 1) -> str:
        import re

        body = self.wait_for(to, count)[-1]["body"]
        return "".join(re.findall(r"\d", body.split("is", 1)[1]))[:6]


REDIS_URL = os.environ.get("PFCORE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """The Redis URL for tests, or skip/fail when no Redis answers there."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001 (any failure means: not there)
        missing_service(f"Redis at {REDIS_URL} is not reachable: {exc}")
    return REDIS_URL

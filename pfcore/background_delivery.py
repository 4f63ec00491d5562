"""Delivering the outbox after the answer has gone: one thread per app and process.

A request that queued a message only wakes this thread once its transaction
is over (``wake``); the thread then delivers what is due with
``messaging.deliver_due``. The request never waits for the mail relay or the
SMS webhook, so an answer takes as long whether or not it caused a message
(security review #23, finding 5: "forgot password" answered in 6 ms for an
unknown address and 426 ms for a known one behind a slow relay, which told
anyone which addresses have accounts).

Why a thread and not werkzeug's ``response.call_on_close``: that callback
runs in the worker that answered, after the body is written but before
gunicorn closes the connection (gthread: ``resp.close()``, then
``respiter.close()``, then the socket). pfcore serves with one thread and one
connection per worker and no keep-alive (pfcore.gunicorn_config), so the
answering worker would stay busy for the whole SMTP conversation: the next
request the kernel gives it waits behind the relay, and a client that reads
until the connection closes still sees the delay. The thread costs the
request nothing but a notify.

The outbox keeps its guarantees, because the thread only calls
``deliver_due``: it is woken after the commit and reads committed rows only
(nothing is sent for a change that rolled back), each message is claimed
before it is sent (exactly once, with ``pfcore outbox deliver``,
``pfcore jobs run``, ``pfcore worker`` and the other processes' threads
sharing the backlog), and a message that is still pending when a process
dies stays in the table for the worker (nothing is lost). The thread is
started on the first wake, so in the process that serves (after gunicorn's
fork, never in the master), is a daemon, and at exit (gunicorn's graceful
stop, SIGTERM) finishes what it was asked for within ``DRAIN_SECONDS``.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref

from flask import current_app, g

from .db import close_session
from .messaging import deliver_due

DRAIN_SECONDS = 10.0
EXTENSION = "pfcore.background_delivery"
IDLE_SECONDS = 300.0  # an idle thread ends (and lets go of its app); the next wake starts another
ROUND = 100  # messages per deliver_due call; the thread calls again while rounds come back full

_creating = threading.Lock()
_everyone: weakref.WeakSet[Deliverer] = weakref.WeakSet()


class Deliverer:
    """The delivery thread of one app in this process, and the counts that let callers wait for it."""

    def __init__(self, app):
        self.app = app
        self.pid = os.getpid()
        self._condition = threading.Condition()
        self._asked = 0  # wakes asked for so far
        self._done = 0  # wakes whose due messages have been attempted
        self._stopping = False
        self._running = False  # changed under the condition's lock, unlike Thread.is_alive()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Ask the thread to deliver what is due (starting it if it is not running)."""
        with self._condition:
            self._asked += 1
            if not self._running:
                self._running = True
                self._thread = threading.Thread(target=self._run, name="pfcore-outbox-delivery", daemon=True)
                self._thread.start()
            self._condition.notify_all()

    def wait(self, timeout: float) -> bool:
        """Wait until every wake asked for so far has been delivered; False on timeout."""
        with self._condition:
            target = self._asked
            return self._condition.wait_for(lambda: self._done >= target, timeout)

    def stop(self, timeout: float) -> None:
        """Deliver what was asked for, then end the thread (waiting at most ``timeout``)."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._asked > self._done or self._stopping, IDLE_SECONDS)
                if self._asked == self._done:  # stopping or idle, nothing left: the next wake starts a thread
                    self._running = False
                    return
                target = self._asked
            self._deliver_everything_due()
            with self._condition:
                self._done = target
                self._condition.notify_all()

    def _deliver_everything_due(self) -> None:
        try:
            with self.app.app_context():  # the senders (plugins' deliver_message) may use current_app
                while sum(deliver_due(self.app, limit=ROUND).values()) >= ROUND:
                    pass
        except Exception:  # the outbox keeps them; `pfcore outbox deliver` retries
            self.app.logger.exception("outbox delivery in the background failed")


def deliverer_for(app) -> Deliverer:
    """This process's deliverer of ``app`` (a new one in a process forked after it was made)."""
    deliverer = app.extensions.get(EXTENSION)
    if deliverer is not None and deliverer.pid == os.getpid():
        return deliverer
    with _creating:
        deliverer = app.extensions.get(EXTENSION)
        if deliverer is None or deliverer.pid != os.getpid():
            deliverer = Deliverer(app)
            app.extensions[EXTENSION] = deliverer
            _everyone.add(deliverer)
        return deliverer


def _ours() -> list[Deliverer]:
    return [deliverer for deliverer in list(_everyone) if deliverer.pid == os.getpid()]


def wait_for_deliveries(app=None, timeout: float = DRAIN_SECONDS) -> bool:
    """Wait until the deliveries asked for so far (of ``app``, or of every app in this
    process) are done; False if one is still under way after ``timeout`` seconds.

    Tests call it before they read what the SMTP server or SMS webhook received.
    """
    deliverers = _ours() if app is None else [d for d in [app.extensions.get(EXTENSION)] if d and d.pid == os.getpid()]
    return all([deliverer.wait(timeout) for deliverer in deliverers])


def stop_deliveries(app, timeout: float = DRAIN_SECONDS) -> None:
    """Finish what ``app``'s thread was asked to deliver and end it (an app that is going away)."""
    deliverer = app.extensions.get(EXTENSION)
    if deliverer is not None and deliverer.pid == os.getpid():
        deliverer.stop(timeout)


@atexit.register
def _drain_at_exit() -> None:
    """At exit (gunicorn's graceful stop), finish what was asked; the worker delivers the rest."""
    for deliverer in _ours():
        deliverer.stop(DRAIN_SECONDS)


def deliver_queued_after_request() -> None:
    """After a request that queued messages: wake the process's delivery thread.

    The request's transaction is over (closed here, so a commit is visible to
    the thread); the thread sends after the answer, and the request waits for
    neither the mail relay nor the SMS webhook.
    """
    if g.pop("_pfcore_outbox_queued", False) and current_app.config["PFCORE"]["outbox_deliver_after_commit"]:
        close_session()
        deliverer_for(current_app._get_current_object()).wake()

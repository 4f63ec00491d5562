"""`pfcore jobs run`: the periodic work of the core and of every available plugin."""
from __future__ import annotations

from sqlalchemy import delete

from .db import session
from .messaging import deliver_due
from .models import PendingSignIn, utcnow


def run_all(app) -> list[str]:
    """Run every job once; returns one summary line per job that did something to report."""
    counts = deliver_due(app, limit=10_000)
    pruned = session().execute(delete(PendingSignIn).where(PendingSignIn.expires_at <= utcnow())).rowcount
    session().commit()
    lines = [f"Pruned {pruned} expired half-finished sign-in{'' if pruned == 1 else 's'}."]
    for answer in app.extensions["pfcore.plugins"].hook_all.run_jobs(app=app):
        if answer:
            lines.append(str(answer))
    # What the jobs queued (e.g. emergency access's summary when it expires) goes out in this run.
    more = deliver_due(app, limit=10_000)
    return [f"Outbox: sent {counts['sent'] + more['sent']}, failed {counts['failed'] + more['failed']}."] + lines

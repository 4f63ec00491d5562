"""`pfcore jobs run`: the periodic work of the core and of every available plugin."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import delete

from . import accounts, audit, audit_checkpoints
from .db import session
from .messaging import deliver_due, queue
from .models import PendingSignIn, Practice, utcnow


def run_all(app) -> list[str]:
    """Run every job once; returns one summary line per job that did something to report."""
    counts = deliver_due(app, limit=10_000)
    pruned = session().execute(delete(PendingSignIn).where(PendingSignIn.expires_at <= utcnow())).rowcount
    session().commit()
    lines = [f"Pruned {pruned} expired half-finished sign-in{'' if pruned == 1 else 's'}."]
    settings = app.config["PFCORE"]
    last = audit_checkpoints.latest_time(settings)
    if last is None or utcnow() - last >= dt.timedelta(hours=settings["audit_checkpoint_hours"]):
        lines.append(write_audit_checkpoint(app))
    for answer in app.extensions["pfcore.plugins"].hook_all.run_jobs(app=app):
        if answer:
            lines.append(str(answer))
    # What the jobs queued (e.g. a plugin's summary email) goes out in this run.
    more = deliver_due(app, limit=10_000)
    return [f"Outbox: sent {counts['sent'] + more['sent']}, failed {counts['failed'] + more['failed']}."] + lines


def write_audit_checkpoint(app) -> str:
    """Sign every audit chain's head into a new checkpoint file; when
    ``audit_checkpoint_email`` is on, also email each practice's administrators
    their chain's signed entry (a copy outside the deployment), audited."""
    settings = app.config["PFCORE"]
    path, entries = audit_checkpoints.write(session(), settings)
    emailed = 0
    if settings.get("audit_checkpoint_email"):
        for entry in entries:
            practice = session().get(Practice, entry["chain"]) if entry["chain"] else None
            if practice is None:
                continue
            admins = accounts.active_admins(practice.id)
            body = (
                f"pfcore signed the state of {practice.name}'s audit log at {entry['created_at']}.\n"
                "Keep this message: if the log is ever cut short or rewritten, it shows what it held.\n\n"
                + json.dumps(entry, indent=1)
                + "\n"
            )
            for admin in admins:
                queue("email", admin.email, body, subject="Audit log checkpoint", practice_id=practice.id)
            audit.record(
                "audit.checkpoint_sent",
                practice_id=practice.id,
                object_type="audit_log",
                details={"seq": entry["seq"], "recipients": len(admins)},
            )
            emailed += len(admins)
        session().commit()
    line = f"Audit checkpoint: {len(entries)} chain{'' if len(entries) == 1 else 's'} signed in {path}."
    return line + (f" Emailed to {emailed} administrators." if emailed else "")

"""Operator pages: the health check and, in development, the outbox and the
invitations their recipients reported (in production: ``pfcore reported-invitations``)."""

from __future__ import annotations

from flask import abort, current_app, jsonify, request
from sqlalchemy import text

from ..db import session
from ..invitation_reports import recent_reports_in_all_practices
from ..messaging import recent_messages
from .blueprint import core
from .rendering import render


@core.get("/healthz")
def healthz():
    try:
        session().execute(text("SELECT 1"))
    except Exception:
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up")


def _is_operator() -> bool:
    """In development, the person at the machine: a loopback address."""
    return current_app.config["PFCORE"]["env"] == "development" and request.remote_addr in ("127.0.0.1", "::1")


@core.get("/operator/outbox")
def operator_outbox():
    if not _is_operator():
        abort(404)
    return render("operator_outbox.html", messages=recent_messages())


@core.get("/operator/reported-invitations")
def operator_reported_invitations():
    if not _is_operator():
        abort(404)
    return render("operator_reported_invitations.html", reports=recent_reports_in_all_practices())

"""Prometheus metrics at ``/metrics``.

Each app has its own ``CollectorRegistry`` (tests build many apps in one
process). Counters live in process memory: under gunicorn each worker
process counts its own requests (docs/operations.md, "Monitoring"). The
outbox numbers are read from the database at scrape time, so every worker
answers the same.
"""
from __future__ import annotations

import hmac
import time

from flask import abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

EXTENSION = "pfcore.metrics"


class Metrics:
    def __init__(self, app):
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "pfcore_request_duration_seconds", "Time to answer a request, by endpoint.", ["endpoint"],
            registry=self.registry)
        self.sign_ins = Counter("pfcore_sign_ins", "Completed sign-ins.", registry=self.registry)
        self.sign_in_failures = Counter("pfcore_sign_in_failures", "Failed sign-in attempts.", registry=self.registry)
        self.lockouts = Counter("pfcore_lockouts", "Accounts locked after failed sign-ins.", registry=self.registry)
        self.registry.register(_OutboxCollector(app))


class _OutboxCollector:
    """Outbox backlog and failures, counted in the database when scraped."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []

    def collect(self):
        from .models import OutboxMessage

        maker = self.app.extensions["pfcore.sessionmaker"]
        with maker() as db_session:
            counts = dict(db_session.execute(
                select(OutboxMessage.status, func.count()).where(OutboxMessage.status.in_(("pending", "failed")))
                .group_by(OutboxMessage.status)).all())
            db_session.rollback()
        yield GaugeMetricFamily("pfcore_outbox_pending", "Messages waiting in the outbox.",
                                value=counts.get("pending", 0))
        yield GaugeMetricFamily("pfcore_outbox_failed", "Messages that failed for good (status failed).",
                                value=counts.get("failed", 0))


def init_app(app) -> None:
    app.extensions[EXTENSION] = Metrics(app)
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "core.metrics", metrics_view)


def _start_timer() -> None:
    g._pfcore_request_started = time.perf_counter()


def _observe(response):
    started = g.pop("_pfcore_request_started", None)
    if started is not None:
        current_app.extensions[EXTENSION].request_seconds.labels(
            endpoint=request.endpoint or "unmatched").observe(time.perf_counter() - started)
    return response


def count(name: str) -> None:
    """Add one to the counter ``name`` (sign_ins, sign_in_failures, lockouts) of the current app."""
    metrics = current_app.extensions.get(EXTENSION)
    if metrics is not None:
        getattr(metrics, name).inc()


def metrics_view():
    settings = current_app.config["PFCORE"]
    token = settings["metrics_token"]
    if not token:
        if settings["env"] == "production":
            abort(404)
    else:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            response = current_app.response_class("Unauthorized\n", status=401, mimetype="text/plain")
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    body = generate_latest(current_app.extensions[EXTENSION].registry)
    return current_app.response_class(body, mimetype=CONTENT_TYPE_LATEST)

"""Prometheus metrics at ``/metrics``.

Each app has its own ``CollectorRegistry`` (tests build many apps in one
process). Under gunicorn, ``pfcore serve`` sets ``PROMETHEUS_MULTIPROC_DIR``
before the workers start: every worker then writes its counters and
histograms to files there, and a scrape, whichever worker answers it, adds
up all of them (prometheus_client's multiprocess mode). Without it (``pfcore
run``, tests) the counters live in the process's memory. The outbox numbers
and the plugins' gauges (hook ``metrics_gauges``) are read from the database
at scrape time, so every worker answers the same.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time

from flask import abort, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from .contrib import PluginError
from .models import OutboxMessage

EXTENSION = "pfcore.metrics"
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
log = logging.getLogger(__name__)


def multiprocess_dir() -> str | None:
    """The folder of prometheus_client's multiprocess mode, when it is on."""
    return os.environ.get(MULTIPROCESS_ENV) or None


class Metrics:
    def __init__(self, app):
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_seconds = Histogram(
            "pfcore_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            registry=self.registry,
        )
        self.sign_ins = Counter("pfcore_sign_ins", "Completed sign-ins.", registry=self.registry)
        self.sign_in_failures = Counter("pfcore_sign_in_failures", "Failed sign-in attempts.", registry=self.registry)
        self.lockouts = Counter("pfcore_lockouts", "Accounts locked after failed sign-ins.", registry=self.registry)
        self.phone_sends_refused = Counter(
            "pfcore_phone_sends_refused",
            "Texts and calls refused by a cap, country or number type, by reason.",
            ["reason"],
            registry=self.registry,
        )
        shared = [_OutboxCollector(app), _PluginGauges(app, plugin_gauges(app))]
        for collector in shared:
            self.registry.register(collector)
        if multiprocess_dir():
            # Scrape the sum of every worker's files, not this worker's memory.
            self.scrape_registry = CollectorRegistry()
            MultiProcessCollector(self.scrape_registry)
            for collector in shared:
                self.scrape_registry.register(collector)
        else:
            self.scrape_registry = self.registry


class _OutboxCollector:
    """Outbox backlog and failures, counted in the database when scraped."""

    def __init__(self, app):
        self.app = app

    def describe(self):
        return []

    def collect(self):
        maker = self.app.extensions["pfcore.sessionmaker"]
        with maker() as db_session:
            counts = dict(
                db_session.execute(
                    select(OutboxMessage.status, func.count())
                    .where(OutboxMessage.status.in_(("pending", "failed")))
                    .group_by(OutboxMessage.status)
                ).all()
            )
            db_session.rollback()
        yield GaugeMetricFamily(
            "pfcore_outbox_pending", "Messages waiting in the outbox.", value=counts.get("pending", 0)
        )
        yield GaugeMetricFamily(
            "pfcore_outbox_failed", "Messages that failed for good (status failed).", value=counts.get("failed", 0)
        )


def plugin_gauges(app) -> list[tuple[str, str, object]]:
    """The gauges every available plugin contributes (hook ``metrics_gauges``), checked.

    A plugin names its gauges ``pfcore_<plugin name>_...``; a bad name, a
    name used twice or a ``read`` that cannot be called stops the start-up.
    """
    registry = app.extensions["pfcore.plugins"]
    gauges: list[tuple[str, str, object]] = []
    seen: set[str] = set()
    for name in sorted(registry.available):
        others = [module for other, module in registry.modules.items() if other != name]
        caller = registry.pm.subset_hook_caller("metrics_gauges", remove_plugins=others)
        for answer in caller(app=app):
            for item in answer or []:
                try:
                    metric, help_text, read = item
                except (TypeError, ValueError):
                    raise PluginError(
                        f"plugin {name!r}: metrics_gauges items are (name, help, read), not {item!r}"
                    ) from None
                if (
                    not isinstance(metric, str)
                    or not METRIC_NAME.fullmatch(metric)
                    or not metric.startswith(f"pfcore_{name}_")
                ):
                    raise PluginError(
                        f"plugin {name!r}: gauge {metric!r} must be a metric name starting 'pfcore_{name}_'"
                    )
                if metric in seen:
                    raise PluginError(f"plugin {name!r}: gauge {metric!r} is contributed twice")
                if not callable(read):
                    raise PluginError(f"plugin {name!r}: gauge {metric!r} needs a callable to read it")
                seen.add(metric)
                gauges.append((metric, str(help_text), read))
    return gauges


class _PluginGauges:
    """The plugins' gauges, each read (in an app context) when scraped."""

    def __init__(self, app, gauges):
        self.app = app
        self.gauges = gauges

    def describe(self):
        return []

    def collect(self):
        for name, help_text, read in self.gauges:
            try:
                with self.app.app_context():
                    value = float(read())
            except Exception:  # noqa: BLE001  (one plugin must not break the scrape)
                log.exception("metrics: reading the gauge %s failed; left out of this scrape", name)
                continue
            yield GaugeMetricFamily(name, help_text, value=value)


def init_app(app) -> None:
    app.extensions[EXTENSION] = Metrics(app)
    app.before_request(_start_timer)
    app.after_request(_observe)
    app.add_url_rule("/metrics", "core.metrics", metrics_view)


def _start_timer() -> None:
    g._pfcore_request_started = time.perf_counter()


def _observe(response):
    started = g.pop("_pfcore_request_started", None)
    if started is not None and not g.get("pfcore_attempt_discarded"):  # counted once, by its second run
        current_app.extensions[EXTENSION].request_seconds.labels(endpoint=request.endpoint or "unmatched").observe(
            time.perf_counter() - started
        )
    return response


def count(name: str, **labels: str) -> None:
    """Add one to the counter ``name`` (sign_ins, sign_in_failures, lockouts, phone_sends_refused
    with its ``reason``) of the current app."""
    metrics = current_app.extensions.get(EXTENSION)
    if metrics is not None:
        counter = getattr(metrics, name)
        (counter.labels(**labels) if labels else counter).inc()


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
    body = generate_latest(current_app.extensions[EXTENSION].scrape_registry)
    return current_app.response_class(body, mimetype=CONTENT_TYPE_LATEST)

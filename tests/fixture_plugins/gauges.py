"""Contributes gauges to /metrics (hook ``metrics_gauges``)."""

from sqlalchemy import func, select

from pfcore.contrib import PluginInfo
from pfcore.db import session
from pfcore.hookspecs import hookimpl
from pfcore.models import Practice

PLUGIN = PluginInfo(name="gauges", title="Gauges")

READING = {"rooms": 0}


def practices() -> int:
    """Read inside an app context at each scrape: the database is at hand."""
    return session().scalar(select(func.count()).select_from(Practice))


def broken() -> float:
    raise RuntimeError("the sensor is unplugged")


@hookimpl
def metrics_gauges(app):
    return [
        ("pfcore_gauges_waiting_rooms", "Waiting rooms open now.", lambda: READING["rooms"]),
        ("pfcore_gauges_practices", "Practices in the database.", practices),
        ("pfcore_gauges_broken", "A gauge whose reading fails.", broken),
    ]

"""What goes through every practice at once, for ``pfcore jobs run`` only: no page
imports this module (an import-linter contract in pyproject.toml)."""

from __future__ import annotations

import datetime as dt
from itertools import groupby

from pfcore.api import Practice, session, utcnow
from pfcore_plugins.charts.jobs import unsigned_encounters_in_all_practices

from .auto_invite import after_days, invite_for_encounters, today

# PLUGIN.name: the package starts these jobs (hook run_jobs), so this module does not import it back.
PLUGIN_NAME = "patient_portal"


def auto_invite_in_all_practices(app) -> int:
    """Invite for unsigned encounters whose visit is ``after_days`` old; commits per practice.

    Goes through every practice that enabled this plugin; returns how many were invited.
    """
    registry = app.extensions["pfcore.plugins"]
    wait = dt.timedelta(days=after_days())
    # The latest calendar date on Earth now; each practice then keeps its own visits that are old enough.
    encounters = unsigned_encounters_in_all_practices(utcnow().date() + dt.timedelta(days=1) - wait)
    invited = 0
    for practice_id, rows in groupby(
        sorted(encounters, key=lambda e: (e.practice_id, e.id)), key=lambda e: e.practice_id
    ):
        practice = session().get(Practice, practice_id)
        if PLUGIN_NAME not in registry.enabled_names(practice):
            continue
        on = today(practice)
        invited += invite_for_encounters(practice, [e for e in rows if e.visit_date <= on - wait], on)
        session().commit()
    return invited

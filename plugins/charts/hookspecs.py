"""Hooks the charts plugin offers to plugins that build on it (e.g. the
patient portal). They are added to the app's plugin manager at start-up
(``PluginInfo.hookspecs``) and documented in docs/plugins.md like the core's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pfcore.hookspecs import hookspec

if TYPE_CHECKING:  # for the annotations only
    from pfcore.api import Practice, User
    from pfcore.contrib import InfoItem

    from .api import ChartAction
    from .models import Encounter, Patient


@hookspec
def chart_header_items(practice: Practice, user: User, patient: Patient) -> list[InfoItem]:
    """Contribution: ``pfcore.contrib.InfoItem`` items for the chart header
    (beside name, age and date of birth), e.g. the portal enrolment status.

    :param practice: the practice.
    :param user: the user looking at the chart.
    :param patient: the ``charts.models.Patient``.
    """


@hookspec
def chart_actions(practice: Practice, user: User, patient: Patient) -> list[ChartAction]:
    """Contribution: ``ChartAction(label, url)`` items for the chart's "Actions" menu.

    :param practice: the practice.
    :param user: the user looking at the chart.
    :param patient: the patient.
    """


@hookspec
def chart_note_signed(practice: Practice, user: User, patient: Patient, encounter: Encounter) -> None:
    """Event: ``user`` signed the SOAP note of ``encounter``, in the same
    transaction (what a listener adds is committed with the signature).

    :param practice: the practice.
    :param user: who signed.
    :param patient: the patient.
    :param encounter: the ``charts.models.Encounter``, now read-only.
    """

"""Hooks the charts plugin offers to plugins that build on it (e.g. the
patient portal). They are added to the app's plugin manager at start-up
(``PluginInfo.hookspecs``) and documented in docs/plugins.md like the core's.
"""
from __future__ import annotations

from pfcore.hookspecs import hookspec


@hookspec
def chart_header_items(practice, user, patient):
    """Contribution: ``pfcore.contrib.InfoItem`` items for the chart header
    (beside name, age and date of birth), e.g. the portal enrolment status.

    :param practice: the practice.
    :param user: the user looking at the chart.
    :param patient: the ``charts.models.Patient``.
    """


@hookspec
def chart_actions(practice, user, patient):
    """Contribution: ``ChartAction(label, url)`` items for the chart's "Actions" menu.

    :param practice: the practice.
    :param user: the user looking at the chart.
    :param patient: the patient.
    """


@hookspec
def chart_note_signed(practice, user, patient, encounter):
    """Event: ``user`` signed the SOAP note of ``encounter``, in the same
    transaction (what a listener adds is committed with the signature).

    :param practice: the practice.
    :param user: who signed.
    :param patient: the patient.
    :param encounter: the ``charts.models.Encounter``, now read-only.
    """

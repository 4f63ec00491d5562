"""Hooks the licensing plugin offers to other plugins (e.g. a billing plugin that
charges a card). They are added to the app's plugin manager at start-up
(``PluginInfo.hookspecs``) and documented in docs/plugins.md like the core's.
"""
from __future__ import annotations

from pfcore.hookspecs import hookspec


@hookspec(firstresult=True)
def license_purchase(practice, user, quantity):
    """Decision (``firstresult``): buy ``quantity`` more Clinician licenses for ``practice``.

    Return a dict ``{"status": "paid" | "recorded" | "refused", "reference": str, "message": str}``:
    ``"refused"`` (with a ``message`` saying why) adds nothing. The licensing
    plugin's own answer, ``trylast``, records the order without payment.

    :param practice: the practice buying.
    :param user: the administrator placing the order.
    :param quantity: how many Clinician licenses (1 to 50); each brings 3 Secondary ones.
    """

"""Hooks the licensing plugin offers to other plugins (e.g. a billing plugin that
charges a card). They are added to the app's plugin manager at start-up
(``PluginInfo.hookspecs``) and documented in docs/plugins.md like the core's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pfcore.hookspecs import hookspec

if TYPE_CHECKING:  # for the annotations only
    from pfcore.api import Practice, User


@hookspec(firstresult=True)
def license_purchase(practice: Practice, user: User, quantity: int) -> dict | None:
    """Decision (``firstresult``): buy ``quantity`` more Clinician licenses for ``practice``.

    Return a dict ``{"status": "paid" | "recorded" | "refused", "reference": str, "message": str}``:
    ``"refused"`` (with a ``message`` saying why) adds nothing. The licensing
    plugin's own answer, ``trylast``, records the order without payment.

    :param practice: the practice buying.
    :param user: the administrator placing the order.
    :param quantity: how many Clinician licenses (1 to 50); each brings 3 Secondary ones.
    """

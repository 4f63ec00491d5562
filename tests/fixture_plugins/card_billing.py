"""A billing plugin for ``license_purchase``: charges a (pretend) card, or refuses without one."""

from __future__ import annotations

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(
    name="card_billing", title="Card billing", description="Charges a card for licenses.", version="1.0"
)
CHARGED: list[tuple[int, int]] = []


@hookimpl
def license_purchase(practice, user, quantity):
    if not (practice.settings or {}).get("card"):
        return {"status": "refused", "reference": "", "message": "Add a payment card first."}
    CHARGED.append((practice.id, quantity))
    return {"status": "paid", "reference": f"charge-{len(CHARGED)}", "message": ""}

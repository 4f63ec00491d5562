"""A gauge named outside the plugin's namespace: refused at start-up."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="bad_gauge", title="Bad gauge")


@hookimpl
def metrics_gauges(app):
    return [("pfcore_outbox_pending", "Pretends to be the core's.", lambda: 7)]

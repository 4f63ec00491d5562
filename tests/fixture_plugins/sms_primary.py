"""Sends SMS to North American numbers; asks first (``tryfirst``)."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="sms_primary", title="SMS (North America)")

SENT: list[tuple[str, str]] = []


@hookimpl(tryfirst=True)
def deliver_message(message, settings):
    if message.channel != "sms" or not message.recipient.startswith("+1"):
        return None
    SENT.append((message.recipient, message.body))
    return True

"""Sends any SMS the other senders did not take (or fails, when told to)."""

from pfcore.contrib import PluginInfo
from pfcore.hookspecs import hookimpl

PLUGIN = PluginInfo(name="sms_backup", title="SMS (anywhere)")

SENT: list[tuple[str, str]] = []
# Set to an exception to make every attempt fail with it.
FAILURE: Exception | None = None


@hookimpl
def deliver_message(message, settings):
    if message.channel != "sms":
        return None
    if FAILURE is not None:
        raise FAILURE
    SENT.append((message.recipient, message.body))
    return True

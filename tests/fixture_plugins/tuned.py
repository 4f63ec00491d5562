"""A plugin with settings of both scopes (tests/test_plugin_settings.py)."""

from pfcore.contrib import PluginInfo, PluginSetting

PLUGIN = PluginInfo(
    name="tuned",
    title="Tuned feature",
    enabled_by_default=True,
    settings=(
        PluginSetting("greeting", str, "Hello", maximum=20, label="Greeting", help="Said on every page."),
        PluginSetting(
            "reminder_days",
            int,
            3,
            scope="practice",
            minimum=1,
            maximum=30,
            label="Reminder days",
            help="Remind this many days before.",
        ),
        PluginSetting("loud", bool, False, scope="practice", label="Loud reminders"),
        PluginSetting("colour", str, "blue", scope="practice", choices=("blue", "green"), label="Colour"),
    ),
)

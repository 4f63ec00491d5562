"""Small plugins the tests register through ``create_app(extra_plugins=[...])``.

Each module (or package, when it has templates or static files) is one
plugin, written the way a third party would write it. Modules that break the
plugin contract on purpose are used by tests/test_plugin_contract.py; do not
import ``bad_table`` here or anywhere in the test process: it maps a table on
the shared ``Base`` (that test imports it in a subprocess).
"""

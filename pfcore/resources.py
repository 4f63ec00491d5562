"""Where pfcore's own data folders are, installed or in a source checkout.

The repository keeps ``templates/``, ``static/``, ``migrations/`` and
``config/`` at the top level (ARCHITECTURE.md). A wheel carries them inside
the ``pfcore`` package; an editable install or a checkout finds them beside it.
"""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED_NAMES = {"config": "config_files"}


def resource_path(name: str) -> Path:
    """Return the folder ``name`` (templates, static, migrations, config)."""
    installed = PACKAGE_DIR / _INSTALLED_NAMES.get(name, name)
    if installed.is_dir():
        return installed
    return PACKAGE_DIR.parent / name

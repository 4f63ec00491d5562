"""pfcore's first-party plugins (installed as the package ``pfcore_plugins``).

Each subpackage is a plugin declared through the ``pfcore.plugins`` entry
point in pyproject.toml, exactly as a third-party plugin is.
"""

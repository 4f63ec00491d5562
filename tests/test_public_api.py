"""pfcore.api is the one door for plugins (issue #17): every name it exports is
documented in docs/plugins.md, and the docs name nothing it does not export."""

from __future__ import annotations

import re
from pathlib import Path

import pfcore.api

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def documented_names() -> set[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## The public API: `pfcore.api`", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", line.split("|")[1]))
    return names


def test_every_exported_name_is_documented_and_only_those():
    exported = set(pfcore.api.__all__)
    assert len(exported) == len(pfcore.api.__all__), "a name is listed twice in __all__"
    assert sorted(exported - documented_names()) == [], "exported but not in docs/plugins.md"
    assert sorted(documented_names() - exported) == [], "documented but not exported"
    assert all(hasattr(pfcore.api, name) for name in exported)


def test_nothing_public_is_exported_by_accident():
    """A name at module level that is not in __all__ is one the module imported for itself."""
    public = {name for name in vars(pfcore.api) if not name.startswith("_")}
    assert sorted(public - set(pfcore.api.__all__) - {"annotations"}) == []

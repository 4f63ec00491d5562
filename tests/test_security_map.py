"""docs/security.md (the standards map, issue #10 item 9): every test it names
exists, and every requirement family it must cover has at least one row."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(\w+)")
# The first cell of every table row.
ROW_IDS = [m.group(1).strip() for m in re.finditer(r"^\|([^|\n]*)\|", DOC, re.MULTILINE)]

FAMILIES = (
    [rf"V{chapter}\.\d+\.\d+\b" for chapter in (6, 7, 8, 3)]
    + [rf"170\.315\(d\)\({n}\)(?!\d)" for n in range(1, 14)]
    + [r"170\.315\(e\)\(1\)"]
    + [rf"164\.312\({p}\)" for p in "abcde"]
)


def test_the_map_names_tests():
    assert len(set(REFERENCE.findall(DOC))) >= 100


@pytest.mark.parametrize("path, name", sorted(set(REFERENCE.findall(DOC))))
def test_every_named_test_exists(path, name):
    source = ROOT / path
    assert source.is_file(), f"docs/security.md names {path}, which does not exist"
    assert re.search(rf"^\s*(async\s+)?def {name}\(", source.read_text(encoding="utf-8"), re.MULTILINE), (
        f"docs/security.md names {path}::{name}, which {path} does not define"
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_every_requirement_family_has_a_row(family):
    assert any(re.match(family, cell) for cell in ROW_IDS), f"no row for {family} in docs/security.md"


def test_figures_come_first():
    assert DOC.index("## Figures") < DOC.index("## OWASP ASVS")

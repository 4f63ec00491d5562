"""docs/plugins.md documents every hook in pfcore/hookspecs.py (as datasette's
tests/test_docs.py does for its hooks).

Each hook has a heading ``### name(arguments)`` with the arguments of the
hook specification, says what kind of hook it is, and shows an example
implementation that at least parses.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from pfcore import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
HEADING = re.compile(r"^### (\w+)\((.*)\)\s*$", re.MULTILINE)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def hook_specs() -> dict:
    """The core's hooks and those the installed plugins offer (``PluginInfo.hookspecs``)."""
    from pfcore.plugins import _entry_point_modules

    modules = [hookspecs] + [m.PLUGIN.hookspecs for m in _entry_point_modules() if m.PLUGIN.hookspecs is not None]
    return {name: value for module in modules for name, value in vars(module).items() if hasattr(value, "pfcore_spec")}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sections(doc) -> dict[str, tuple[str, str]]:
    """hook name -> (the arguments in its heading, the text up to the next heading)."""
    found = {}
    matches = list(HEADING.finditer(doc))
    for match in matches:
        rest = doc[match.end() :]
        following = re.search(r"^#{1,3} ", rest, re.MULTILINE)
        found[match.group(1)] = (match.group(2), rest[: following.start()] if following else rest)
    return found


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_hook_is_documented_with_its_signature(hook, sections):
    assert hook in sections, f"docs/plugins.md has no '### {hook}(...)' heading"
    documented = [a.strip() for a in sections[hook][0].split(",") if a.strip()]
    assert documented == list(inspect.signature(hook_specs()[hook]).parameters)


@pytest.mark.parametrize("hook", sorted(hook_specs()))
def test_hook_documentation_says_its_kind_and_shows_an_example(hook, sections):
    text = sections[hook][1]
    assert re.search(r"Kind: \*\*(contribution|decision|event|gathered decision)\*\*", text), "no 'Kind: **...**'"
    if hook_specs()[hook].pfcore_spec.get("firstresult"):
        assert "firstresult" in text
    examples = [block for block in PYTHON_BLOCK.findall(text) if "@hookimpl" in block]
    assert examples, "no example implementation"
    assert any(re.search(rf"^def {hook}\(", block, re.MULTILINE) for block in examples)


def test_every_documented_hook_exists(sections):
    assert sorted(set(sections) - set(hook_specs())) == []


def test_every_python_example_in_the_guide_parses(doc):
    blocks = PYTHON_BLOCK.findall(doc)
    assert len(blocks) >= len(hook_specs())
    for block in blocks:
        ast.parse(block)


def test_the_hook_table_lists_every_hook(doc):
    for name, spec in hook_specs().items():
        arguments = ", ".join(inspect.signature(spec).parameters)
        assert f"| `{name}({arguments})` |" in doc, f"{name} is missing from the table of hooks"

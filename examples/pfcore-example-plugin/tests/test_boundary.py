"""The example imports from pfcore only its public doors."""

import ast
from importlib.util import find_spec
from pathlib import Path

PUBLIC = {"pfcore.api", "pfcore.hookspecs", "pfcore.contrib"}


def imported_modules(source: Path):
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_the_package_imports_nothing_of_pfcore_but_its_public_api():
    package = Path(find_spec("pfcore_example_notes").origin).parent
    sources = sorted(package.rglob("*.py"))
    assert len(sources) >= 4, "the package, its models, its follow-ups and its migration"
    used = {
        (source.name, name)
        for source in sources
        for name in imported_modules(source)
        if name == "pfcore" or name.startswith("pfcore.")
    }
    assert used and {name for _, name in used} <= PUBLIC, sorted(used)

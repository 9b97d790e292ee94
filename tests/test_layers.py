"""The layers keep to their imports: the pure rules import nothing else of the service, the
web layer never reaches the model, and state names are spelled only in their enums."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[1] / "service"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("layer,forbidden", [
    ("domain", r"service\.(?!domain\b)"),
    ("web", r"service\.llm\b"),
])
def test_when_a_layer_is_read_then_it_imports_nothing_it_must_not(layer, forbidden):
    wrong = {f"{path.name}: {name}" for path in (SERVICE / layer).glob("*.py")
             for name in _imports(path) if re.match(forbidden, name)}
    assert not wrong, f"{layer}/ imports {sorted(wrong)}"


def test_when_the_service_compares_a_chapter_or_job_state_then_it_names_an_enum_member():
    names = "pending|writing|complete|failed|interrupted|running|done"
    bare = re.compile(rf"""(?:\.state\s*(?:==|!=|in)\s*\(?|\bstate=)["'](?:{names})["']""")
    found = [f"{path.relative_to(SERVICE)}:{number}" for path in SERVICE.rglob("*.py")
             for number, line in enumerate(path.read_text().splitlines(), 1) if bare.search(line)]
    assert not found, f"bare state strings at {found}"

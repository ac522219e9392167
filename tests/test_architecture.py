"""The halves meet only in results.json: the runner (`conformance`) and the docs (`docgen`) never import each other,
and the seam (`umami_results`) imports neither; the CLI (`umami_conformance`) composes them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"conformance": {"docgen", "umami_conformance"},
             "docgen": {"conformance", "umami_conformance"},
             "umami_results": {"conformance", "docgen", "umami_conformance"}}


def imported_packages(source: str) -> set[str]:
    """Top-level packages a module imports, at any depth (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_the_check_sees_imports_anywhere() -> None:
    source = "import json\ndef f():\n    from conformance.results import write_results\n    import docgen.render\n"
    assert imported_packages(source) == {"json", "conformance", "docgen"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_across_the_seam(package: str) -> None:
    crossings = {f"{path.relative_to(ROOT)}: {name}"
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for name in imported_packages(path.read_text(encoding="utf-8")) & FORBIDDEN[package]}
    assert not crossings, sorted(crossings)

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


def test_the_results_schema_means_the_same_in_draft_07() -> None:
    """umami_results compiles the 2020-12 schema as draft-07 (fastjsonschema): only keywords both drafts share."""
    import json

    import umami_results

    used: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                used.add(key)
                for child in (value.values() if key in ("properties", "$defs") and isinstance(value, dict)
                              else [value]):
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(json.loads(umami_results.SCHEMA_PATH.read_text()))
    walk(json.loads(umami_results.REFERENCE_SCHEMA_PATH.read_text()))  # the reference's document, compiled alike
    assert used <= umami_results.SHARED_KEYWORDS, used - umami_results.SHARED_KEYWORDS
    with pytest.raises(umami_results.ResultsError, match="must contain"):
        umami_results.validate({"tool": "umami-conformance", "items": []})


def test_the_vocabulary_is_written_once() -> None:
    """The schema's enums are the vocabulary's words: outcomes, item kinds, skip codes and finding classes."""
    import json

    import umami_results
    from umami_results import vocabulary as v

    schema = json.loads(umami_results.SCHEMA_PATH.read_text())
    item = schema["$defs"]["item"]["properties"]
    assert set(item["outcome"]["enum"]) - {None} == {o.value for o in v.Outcome}
    assert item["kind"]["enum"] == [k.value for k in v.Kind]
    assert schema["$defs"]["skip_code"]["enum"] == [c.value for c in v.SkipCode] == [c.value for c in v.SKIP_CODES]
    assert list(v.OUTCOMES) == list(v.Outcome)
    assert schema["$defs"]["finding"]["properties"]["class"]["enum"] == list(v.FINDING_CLASSES)


def test_docgen_switches_on_codes_never_on_the_runners_words() -> None:
    """No skip reason of the engine is matched in docgen: it reads `skip.code` (umami_results.vocabulary)."""
    wording = ("not on this server", "not in the recording", "read-only run", "has no credentials", "not available:",
               "cannot delete websites", "which this run does not have")
    found = {f"{path.relative_to(ROOT)}: {words}" for path in sorted((ROOT / "docgen").rglob("*"))
             if path.is_file() for words in wording if words in path.read_text(encoding="utf-8")}
    assert not found, sorted(found)

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
    assert schema["properties"]["verdict"]["properties"]["code"]["enum"] == [c.value for c in v.Verdict]


def test_docgen_switches_on_codes_never_on_the_runners_words() -> None:
    """No skip reason of the engine is matched in docgen: it reads `skip.code` (umami_results.vocabulary)."""
    wording = ("not on this server", "not in the recording", "read-only run", "has no credentials", "not available:",
               "cannot delete websites", "which this run does not have")
    found = {f"{path.relative_to(ROOT)}: {words}" for path in sorted((ROOT / "docgen").rglob("*"))
             if path.is_file() and "__pycache__" not in path.parts for words in wording
             if words in path.read_text(encoding="utf-8")}
    assert not found, sorted(found)


# The layers, lowest first: a module imports only modules of its own layer or below (and within a layer no cycle).
# A new module must be placed here. The CLI (umami_conformance) is the composition root on top.
LAYERS: list[tuple[str, set[str]]] = [
    ("words", {"umami_results.vocabulary", "umami_results", "umami_results.releases", "conformance",
               "conformance.errors", "conformance.values", "conformance.yamlfile", "conformance.versions",
               "conformance.redact"}),
    ("specs and transport", {"conformance.model", "conformance.validation", "conformance.expand", "conformance.loader",
                             "conformance.client", "conformance.har", "conformance.server"}),
    ("checks and references", {"conformance.checks", "conformance.known", "conformance.contract",
                               "conformance.discovery", "conformance.negative", "conformance.replay",
                               "conformance.options", "conformance.objects", "conformance.describe",
                               "conformance.coverage", "conformance.openapi", "conformance.reference"}),
    ("the run's objects", {"conformance.cleanup", "conformance.seed", "conformance.sandbox"}),
    ("items", {"conformance.items", "conformance.context"}),
    ("session", {"conformance.session", "conformance.results"}),
    ("execution", {"conformance.execute", "conformance.setup_drift", "conformance.schedule"}),
    ("driver and its handlers", {"conformance.events", "conformance.console", "conformance.writers",
                                 "conformance.driver"}),
    ("front ends", {"conformance.cli_adapter", "conformance.plugin"}),
    ("docs", {"docgen", "docgen.legend", "docgen.history", "docgen.diff", "docgen.upgrade_report", "docgen.render",
              "docgen.report", "docgen.reference"}),
    ("composition root", {"umami_conformance", "umami_conformance.upgrade", "umami_conformance.reference",
                          "umami_conformance.cli"}),
]
PACKAGES = ("umami_results", "conformance", "docgen", "umami_conformance")
LAZY_IMPORTS_ALLOWED = {"umami_conformance.cli"}  # the root: nothing imports it; it imports what a command needs


def project_modules() -> dict[str, Path]:
    return {(p.parent.name if p.stem == "__init__" else f"{p.parent.name}.{p.stem}"): p
            for package in PACKAGES for p in sorted((ROOT / package).glob("*.py"))}


def project_imports(source: str, modules: set[str]) -> tuple[set[str], set[str]]:
    """The project modules a module imports at its top level, and those it imports anywhere else (in a function,
    or under `if TYPE_CHECKING:`)."""
    top: set[str] = set()
    nested: set[str] = set()
    tree = ast.parse(source)
    top_nodes = set(map(id, tree.body))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found = {name for name in names if name in modules}
        (top if id(node) in top_nodes else nested).update(found)
    return top, nested


def test_the_layer_check_sees_what_it_must() -> None:
    modules = {"conformance.items", "conformance.session", "conformance"}
    source = ("from conformance import __version__\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from conformance.session import Session\ndef f():\n    import conformance.items\n")
    assert project_imports(source, modules) == ({"conformance"}, {"conformance.session", "conformance.items"})


def test_every_module_is_in_one_layer() -> None:
    placed = [m for _, layer in LAYERS for m in layer]
    assert len(placed) == len(set(placed)), "a module in two layers"
    assert set(placed) == set(project_modules()), {"not placed": sorted(set(project_modules()) - set(placed)),
                                                   "gone": sorted(set(placed) - set(project_modules()))}


def test_imports_point_down_and_never_hide_in_functions() -> None:
    modules = project_modules()
    rank = {m: i for i, (_, layer) in enumerate(LAYERS) for m in layer}
    upward, nested = [], []
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        top, inner = project_imports(path.read_text(encoding="utf-8"), set(modules))
        graph[name] = (top | inner) - {name}
        upward += [f"{name} ({LAYERS[rank[name]][0]}) imports {m} ({LAYERS[rank[m]][0]})"
                   for m in sorted(top | inner) if rank[m] > rank[name]]
        if name not in LAZY_IMPORTS_ALLOWED:
            nested += [f"{name}: {m}" for m in sorted(inner)]
    assert not upward, upward
    assert not nested, nested
    cycles = {name for name in graph if name in _reachable(graph, name)}
    assert not cycles, sorted(cycles)


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += graph.get(name, set())
    return seen


def test_no_module_over_500_lines() -> None:
    long = {name: n for name, path in project_modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


def code_map() -> str:
    """The README's code map, from the modules' opening docstrings (their first sentence)."""
    rows = ["| module | what it does |", "|---|---|"]
    for path in sorted(project_modules().values(), key=lambda p: str(p.relative_to(ROOT))):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        sentence = first.split(". ")[0].rstrip(".")
        rows.append(f"| `{path.relative_to(ROOT)}` | {sentence.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def test_the_readme_code_map_is_the_modules_own_words() -> None:
    """Every module has an opening docstring, and README.md's code map is made of their first sentences (a new,
    renamed or redescribed module shows here: paste the table this test prints)."""
    modules = project_modules()
    missing = [name for name, path in modules.items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert not missing, f"modules without an opening docstring: {missing}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- code-map: start -->\n", "\n<!-- code-map: end -->"
    assert start in readme and end in readme, "README.md has no code map markers"
    current = readme.split(start, 1)[1].split(end, 1)[0]
    assert current == code_map(), "README.md's code map differs from the modules' docstrings:\n" + code_map()

"""The cross-release API reference (issue 28): docs/api/ is what `scripts/reference` writes today, its links
resolve, MkDocs builds it strictly, and its pages say what an integrator needs per release."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import umami_results
from conformance import reference
from conformance.known import load_known

from conftest import ROOT, SPEC_CACHE, bundled_specs, cli_in_process, shared_recording

DOCS = ROOT / "docs" / "api"
OBSERVED = ("2.10.0", "2.20.2", "3.1.0")


@pytest.fixture(scope="module")
def regenerated(full_recheck, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`umami-conformance reference` of the vendored full recordings (what scripts/reference runs), in this process,
    into a fresh directory: the first recording rechecked by the command, the others given as the results.json of
    the session's rechecks of them (`--results`, the same recheck), so that both ways in are taken."""
    out = tmp_path_factory.mktemp("reference") / "api"
    first, *others = (f"umami-{v}-full.har.gz" for v in OBSERVED)
    results = [str(full_recheck(name)[2] / "results.json") for name in others]
    proc = cli_in_process("reference", str(shared_recording(first)), "--results", *results, "--out", str(out),
                          "--json", str(out.parent / "reference.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_committed_reference_is_current(regenerated: Path) -> None:
    """docs/api/ is byte-identical to a regeneration: run scripts/reference and commit docs/api/ when this fails."""
    committed, fresh = _files(DOCS), _files(regenerated)
    assert sorted(committed) == sorted(fresh), "pages added or removed: run scripts/reference"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"stale pages (run scripts/reference): {stale[:10]}"


def test_the_reference_document_follows_its_schema(regenerated: Path) -> None:
    doc = json.loads((regenerated.parent / "reference.json").read_text())
    umami_results.validate_reference(doc)
    with pytest.raises(umami_results.ResultsError, match="reference"):
        umami_results.validate_reference({**doc, "kind": "results"})


def test_every_endpoint_has_a_page_and_the_grid_shows_the_observed_releases() -> None:
    pages = sorted((DOCS / "endpoints").rglob("*.md"))
    assert len(pages) == len(bundled_specs().endpoints) >= 200
    index = (DOCS / "index.md").read_text()
    for version in OBSERVED:
        assert f"| {version} 🔍 |" in index, version  # a grid column of its own, marked observed
        assert f"[{version}](releases/{version}.md) 🔍" in index
    inventory = json.loads((ROOT / "specs" / "references" / "umami-routes.json").read_text())["versions"]
    assert {p.stem for p in (DOCS / "releases").glob("*.md")} >= set(inventory)


def _slug(heading: str) -> str:
    """The anchor GitHub and MkDocs give a heading (for the headings the reference writes)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# The Markdown the reference writes, read as MarkdownIt reads it (the same 2,941 links and every anchor on
# 2026-12-07, in 1/25 of the time): fenced blocks and code spans hold no link, a heading is a line of #s.
FENCED, CODE_SPAN = re.compile(r"^```.*?^```", re.S | re.M), re.compile(r"`[^`\n]*`")
LINK, HEADING = re.compile(r"\]\(([^)\s]+)\)"), re.compile(r"^#{1,6} +(.*?) *#*$", re.M)


def test_every_link_resolves() -> None:
    """Relative links to .md files (they read on GitHub and build in MkDocs), each to a page and an anchor that
    exist. (The build tier's `mkdocs build --strict` checks them again, as MkDocs reads them.)"""
    anchors: dict[Path, set[str]] = {}
    links: list[tuple[Path, str]] = []
    for page in sorted(DOCS.rglob("*.md")):
        text = FENCED.sub("", page.read_text(encoding="utf-8"))
        anchors[page.resolve()] = {_slug(heading) for heading in HEADING.findall(text)}
        links += [(page, href) for href in LINK.findall(CODE_SPAN.sub("", text))]
    assert len(links) > 1000
    broken = []
    for page, href in links:
        target, _, anchor = href.partition("#")
        assert not re.match(r"^[a-z]+:|^/", target), (page, href)  # relative links only
        assert target.endswith(".md"), (page, href)
        path = (page.parent / target).resolve()
        if path not in anchors or (anchor and anchor not in anchors[path]):
            broken.append(f"{page.relative_to(DOCS)}: {href}")
    assert not broken, broken[:20]


@pytest.mark.build
def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "search" / "search_index.json").exists()
    assert (tmp_path / "site" / "endpoints" / "website-stats" / "get-stats" / "index.html").exists()


def test_an_endpoint_page_reads_per_release() -> None:
    """GET /websites/{websiteId}/stats: releases, auth, parameters, field tables per release (never raw JSON
    Schema), known defects with reasons, a real example per observed release, what changed."""
    page = (DOCS / "endpoints" / "website-stats" / "get-stats.md").read_text()
    assert "**Releases:** 2.0.0–3.1.0 (first [2.0.0]" in page
    assert "| share | 200 |" in page and "| anonymous | 401 |" in page and "API key (Umami Cloud)" in page
    assert "| `startAt` | query | integer | yes | `<epoch ms: now-7d>` |" in page
    assert "| `$.uniques.value` | number | no | yes |" in page  # 2.10's shape
    assert "| `$.comparison.visits` | number | no | yes |" in page  # 3.x's shape
    assert "$ref" not in page and '"type":' not in page
    for version in OBSERVED:
        assert f"## Observed on {version}" in page
    assert "- **2.11.3 → 2.12.0**: 200: field(s) added: `$.bounces.prev`" in page
    assert "Observed 2.20.2 → 3.1.0" in page and "| field-retyped | yes | `$.visits` | object | integer |" in page
    assert "getWebsiteStats()" in page  # a known defect's reason


def test_examples_are_normalised_and_redacted() -> None:
    """Real answers, with no id, time or run prefix of the recording's run and no secret."""
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    examples = [block for page in sorted((DOCS / "endpoints").rglob("*.md"))
                for block in re.findall(r"```json\n(.*?)```", page.read_text(), re.S)]
    assert len(examples) > 250
    text = "\n".join(examples)
    assert not uuid.findall(text)
    assert "ucf-2026" not in text and "T12:" not in text and "$2b$" not in text and "$2a$" not in text
    assert '"token": "***"' in text  # the login's token, redacted


def test_a_release_without_a_recording_is_specified_not_observed() -> None:
    page = (DOCS / "releases" / "2.13.0.md").read_text()
    assert "Specified, not observed" in page
    assert "## Added since 2.12.1" in page and "## Removed since 2.12.1" in page
    observed = (DOCS / "releases" / "2.20.2.md").read_text()
    assert "Observed 🔍" in observed and "## Observed changes since 2.10.0" in observed


def test_the_specs_part_is_fast_and_knows_every_release() -> None:
    specs = bundled_specs()
    doc = reference.build(specs, load_known(specs.root, SPEC_CACHE))
    releases = [r["version"] for r in doc["releases"]]
    assert releases[0] == "1.30.0" and "3.1.0" in releases and doc["releases"][-1]["source"] == "contract"
    stats = next(e for e in doc["endpoints"] if e["id"] == "website-stats/get-stats")
    assert stats["releases"][0] == "2.0.0"
    assert [v["releases"][0] for v in stats["variants"]][:4] == ["2.0.0", "2.10.0", "2.11.0", "2.12.0"]
    assert all(v["releases"] for e in doc["endpoints"] for v in e["variants"])


def test_a_regeneration_removes_pages_that_are_gone_and_nothing_else(regenerated: Path, tmp_path: Path) -> None:
    """A renamed endpoint leaves no stale page behind; files of your own beside the reference stay. Without any
    observed release every page says it is specified, not observed."""
    from docgen.reference import render_reference
    doc = json.loads((regenerated.parent / "reference.json").read_text())
    out = tmp_path / "api"
    (out / "endpoints" / "old").mkdir(parents=True)
    gone, mine = out / "endpoints" / "old" / "gone.md", out / "notes.md"
    gone.write_text("an endpoint that was renamed\n")
    mine.write_text("my notes\n")
    written = render_reference(doc, [], out)
    assert not gone.exists() and mine.read_text() == "my notes\n"
    assert len(written) == len(doc["endpoints"]) + len(doc["releases"]) + 1
    page = (out / "endpoints" / "website-stats" / "get-stats.md").read_text()
    assert "**Observed:** none; every release is specified, not observed." in page
    assert "## Observed on" not in page

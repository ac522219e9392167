"""Docs, markers, history and the upgrade diff, from real runs against the local Umami."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from conformance import server

from docgen.render import LEGEND, render_docs, update_markers

from umami_results.vocabulary import OUT_OF_RELEASE

from conftest import bundled_specs, run_cli, user_env
from proxy import RecordingProxy


@pytest.fixture(scope="module")
def two_runs(umami: server.ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A plain run, and a run where GET /api/me lost its `isAdmin` field (the injected change);
    both archive into one history directory, the second under another version label (a post-release:
    the same endpoints apply, 2.10.1 differs in its routes)."""
    base = tmp_path_factory.mktemp("docs")
    history = base / "history"
    first = run_cli("run", "--url", umami.url, "--out", str(base / "a"), "--history", str(history),
                    env=user_env(umami))
    assert first.returncode == 0, first.stdout[-2000:]

    def drop_is_admin(method: str, path: str, status: int, body: bytes):
        data = json.loads(body) if method == "GET" and path == "/api/me" and status == 200 else None
        if isinstance(data, dict):  # a share token gets `null` from 2.10.0's /me
            data.pop("isAdmin", None)
            return status, json.dumps(data).encode()
        return None

    with RecordingProxy(umami.url, mutate=drop_is_admin) as proxy:
        second = run_cli("run", "--url", proxy.url, "--out", str(base / "b"), "--history", str(history),
                         "--umami-version", "2.10.0.post1", env=user_env(umami))
    assert second.returncode == 1, second.stdout[-2000:]
    return base / "a", base / "b", history


def _on_this_release(out: Path) -> set[str]:
    """The endpoints of the run's release: those with an item that is not skipped as of another release."""
    items = json.loads((out / "results.json").read_text())["items"]
    return {i["endpoint"] for i in items if i.get("skip", {}).get("code") not in OUT_OF_RELEASE}


def test_index_has_legend_and_a_table_per_area(two_runs) -> None:
    a, _, _ = two_runs
    index = (a / "docs" / "index.md").read_text()
    for symbol, _, meaning in LEGEND:
        assert f"| {symbol} | {meaning} |" in index
    tokens = MarkdownIt().enable("table").parse(index)
    areas = {e.area for e in bundled_specs().endpoints if e.id in _on_this_release(a)}  # only this release's
    # security (2.10.0's admin/users hash leak, known) + legend + one per area; security comes first
    assert sum(t.type == "table_open" for t in tokens) == 1 + 1 + len(areas)
    security = index.index("\n## Security\n")
    assert security < index.index("\n## Legend\n")
    row = next(line for line in index[security:].splitlines() if line.startswith("| [admin/users]"))
    assert "`$.data[*].password`" in row and "Umami 2.10" in row  # listed, as known
    for area in areas:
        assert f"\n## {area}\n" in index and (a / "docs" / "areas" / f"{area}.md").exists()


def test_every_link_resolves_and_every_endpoint_has_a_page(two_runs) -> None:
    a, _, _ = two_runs
    docs = a / "docs"
    md = MarkdownIt().enable("table")
    pages = list(docs.rglob("*.md"))
    present = _on_this_release(a)
    assert len(pages) == 1 + len({e.split("/")[0] for e in present}) + len(present)
    for page in pages:
        for token in md.parse(page.read_text()):
            for child in token.children or []:
                href = child.attrs.get("href") if child.type == "link_open" else None
                if href and not href.startswith(("http", "#")):
                    assert (page.parent / href).resolve().exists(), f"{page}: broken link {href}"


def test_endpoint_page_content(two_runs) -> None:
    a, _, _ = two_runs
    page = (a / "docs" / "endpoints" / "website-stats" / "get-stats.md").read_text()
    for heading in ("## Parameters", "## Auth per role", "## Results per role and case",
                    "## Response 200: fields", "## Example response"):
        assert heading in page
    assert "| `$.pageviews.value` | number | yes |" in page
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", page), "ids redacted"


def test_render_is_byte_identical(two_runs, tmp_path: Path) -> None:
    a, _, history = two_runs
    render_docs(a / "results.json", tmp_path / "one", history_dir=history)
    render_docs(a / "results.json", tmp_path / "two", history_dir=history)
    cmp = filecmp.dircmp(tmp_path / "one", tmp_path / "two")
    files = [p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.md")]
    match, mismatch, errors = filecmp.cmpfiles(tmp_path / "one", tmp_path / "two", files, shallow=False)
    assert not mismatch and not errors and len(match) == len(files) and not cmp.left_only


def test_marker_blocks_are_replaced_in_place(two_runs, tmp_path: Path) -> None:
    a, _, _ = two_runs
    readme = tmp_path / "README.md"
    before = ("# My notes\n\nLogin: <!--status:auth/login-->⏳<!--status-end--> keep this.\n\n"
              "<!--table:me-->\nold table\n<!--table-end-->\n\nUnknown: <!--status:nope/nothing-->x<!--status-end-->\n"
              "Tail text.\n")
    readme.write_text(before)
    assert update_markers(readme, a / "results.json", "docs/") == (
        2, [f"{readme}:9: <!--status:nope/nothing--> names no endpoint of the results"])
    after = readme.read_text()
    assert "Login: <!--status:auth/login-->✅<!--status-end--> keep this." in after
    assert "old table" not in after and "| [me/get](docs/endpoints/me/get.md) |" in after
    assert after.startswith("# My notes\n\nLogin: ") and after.endswith(
        "Unknown: <!--status:nope/nothing-->x<!--status-end-->\nTail text.\n")


def test_diff_reports_exactly_the_injected_change(two_runs, tmp_path: Path) -> None:
    a, b, _ = two_runs
    same = run_cli("diff", str(a / "results.json"), str(a / "results.json"))
    assert same.returncode == 0 and "**0 change(s) on 0 endpoint(s), 0 breaking.**" in same.stdout
    out = tmp_path / "upgrade.md"
    proc = run_cli("diff", str(a / "results.json"), str(b / "results.json"), "--out", str(out))
    assert proc.returncode == 1, proc.stdout
    rows = [line for line in out.read_text().splitlines() if line.startswith("| 💥") or line.startswith("| no")]
    assert rows == ["| 💥 yes | me/get | field-removed | `$.isAdmin` | boolean | absent |"], out.read_text()
    assert "**1 change(s) on 1 endpoint(s), 1 breaking.**" in proc.stdout


def test_history_and_version_grid(two_runs) -> None:
    _, b, history = two_runs
    assert len(list(history.glob("*.json.gz"))) == 2
    index = (b / "docs" / "index.md").read_text()
    assert "## Versions" in index and "| Endpoint | 2.10.0 | 2.10.0.post1 |" in index
    row = next(line for line in index.splitlines() if line.startswith("| me/get | "))
    old_cell, new_cell = row.split("|")[2].strip(), row.split("|")[3].strip()
    assert new_cell == "🚨" and old_cell in ("✅", "📝"), row
    page = (b / "docs" / "endpoints" / "me" / "get.md").read_text()
    date = json.loads((b / "results.json").read_text())["started"][:10]
    assert f"History: first seen {date}, failing since {date}, last changed {date}." in page

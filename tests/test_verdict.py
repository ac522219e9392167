"""The verdict: one code and one line, decided once by the runner (results.verdict) and shown by the terminal, the
report and the docs as it travels in results.json."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.results import verdict
from docgen.report import render_report
from umami_results.vocabulary import Verdict

from conftest import in_process, shared_recording


def _item(outcome: str, *findings: tuple[str, bool], kind: str = "spec") -> dict:
    return {"outcome": outcome, "kind": kind,
            "findings": [{"class": cls, "known": "reviewed" if known else None} for cls, known in findings]}


@pytest.mark.parametrize("records, interrupted, stopped, code, text", [
    ([_item("passed"), _item("known", ("field-added", True)), _item("skipped")], False, None,
     Verdict.CONFORMS, "conforms: 2 items checked (1 passed, 0 passed without a response schema, 1 known "
                       "differences); 1 not checked on this server"),
    ([_item("failed", ("security", False), ("field-added", False)), _item("passed")], False, None,
     Verdict.DRIFT, "drift: 2 open finding(s) in 1 item(s) (1 security) of 2 checked"),
    ([_item("passed"), _item("failed", ("status-changed", False), kind="setup")], False, None,
     Verdict.DRIFT, "drift: 1 open finding(s) in 1 item(s) of 1 checked"),  # the set-up's drift counts
    ([_item("passed"), _item("error")], False, None, Verdict.ERROR,
     "error: the tool failed on 1 item(s), a bug to report"),
    ([_item("passed"), _item("unavailable")], False, None, Verdict.UNAVAILABLE,
     "unavailable: 1 item(s) not checked after transient failures, 1 checked without drift"),
    ([_item("passed"), _item("failed", ("field-added", False))], True, None, Verdict.INCOMPLETE,
     "incomplete: interrupted after 2 of 2 items; 1 open finding(s) so far"),
    ([_item("passed")], False, "server gone; cleanup: removed 3", Verdict.INCOMPLETE,
     "incomplete: server gone after 1 of 1 items"),
    ([_item("skipped"), _item("skipped")], False, None, Verdict.NOTHING_TESTED,
     "nothing tested: all 2 selected items were skipped"),
])
def test_the_verdict(records: list[dict], interrupted: bool, stopped: str | None, code: Verdict, text: str) -> None:
    assert verdict(records, interrupted, stopped) == {"code": code.value, "text": text}


def test_the_report_banner_is_red_only_when_something_is_open(full_recheck, tmp_path: Path) -> None:
    proc, results, reports = full_recheck("umami-3.1.0-full.har.gz")
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1].startswith("umami-conformance: conforms: ")
    assert results["verdict"]["code"] == "conforms"
    assert 'class="verdict calm"' in (reports / "report.html").read_text()
    drift = {**results, "verdict": verdict([*results["items"], _item("failed", ("security", False))])}
    html = render_report(drift, tmp_path / "drift.html").read_text()
    assert '<p id="verdict" class="verdict open">drift: 1 open finding(s) in 1 item(s) (1 security) of ' in html


def test_only_this_servers_release_by_default(full_recheck) -> None:
    """Issue 27: on 2.10.0, 157 of the 218 rows of the docs index were endpoints 2.10.0 lacks, and junit.xml had
    1,025 skipped cases. Now they are one collapsed list; junit.xml has no case of another release."""
    proc, results, reports = full_recheck("umami-2.10.0-full.har.gz")
    assert proc.returncode == 0, proc.stdout[-2000:]
    other = ("out-of-range", "case-out-of-range")
    absent = {i["endpoint"] for i in results["items"]} - {
        i["endpoint"] for i in results["items"] if i.get("skip", {}).get("code") not in other}
    index = (reports / "docs" / "index.md").read_text()
    rows = re.findall(r"^\| \S+ \| \[([a-z0-9-]+/[a-z0-9-]+)\]", index, re.M)
    assert len(absent) == 157 and rows and not absent & set(rows), absent & set(rows)
    assert f"<summary>Not on Umami 2.10.0 ({len(absent)} endpoints)</summary>" in index
    assert "| – | no item" in index  # every symbol in the legend
    junit = (reports / "junit.xml").read_text()
    assert "not on this server" not in junit
    html = (reports / "report.html").read_text()
    assert "not on Umami 2.10.0: 1032 items of 157 endpoints, not listed" in html
    # no spec placeholder reaches the user: parameters and skip reasons say what a `${...}` stands for
    shown = {p: p.read_text() for p in (reports / "docs").rglob("*.md")} | {"terminal": proc.stdout, "html": html}
    assert not [name for name, text in shown.items() if "${" in text]
    assert "`<team id>` (run-team)" in (reports / "docs" / "endpoints" / "teams" / "get.md").read_text()


def test_the_plugin_leaves_other_releases_out_of_its_test_cases_too(tmp_path: Path) -> None:
    """`pytest specs/` with its own --junitxml: the items of another release are deselected once the server's
    release is known, so JUnit and pytest's counts have none; results.json still has them as skips of that kind."""
    proc = in_process(pytest.main, "specs", "-q", "-p", "no:cacheprovider", "-k", "me or teams",
                      f"--umami-replay={shared_recording('umami-2.10.0-full.har.gz')}",
                      f"--umami-results={tmp_path / 'results.json'}", f"--junitxml={tmp_path / 'junit.xml'}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    items = json.loads((tmp_path / "results.json").read_text())["items"]
    other = [i for i in items if i.get("skip", {}).get("code") in ("out-of-range", "case-out-of-range")]
    cases = [c.get("name") for c in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")]
    assert other and sorted(cases) == sorted(i["id"] for i in items if i not in other)
    assert not {i["id"] for i in other} & set(cases)
    counts = re.search(r"(\d+) passed(?:, (\d+) skipped)?, \d+ deselected", proc.stdout)
    assert counts and int(counts[1]) + int(counts[2] or 0) == len(cases), proc.stdout[-500:]

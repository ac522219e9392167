"""The CLI's adapter without pytest: it selects what pytest's -k/-m select, writes JUnit that CI systems read,
prints progress, failures and the summary, and a bad selection is one clear message. No server: the shared
recordings and a port nobody listens on."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.items import collect
from conformance.cli_adapter import select
from umami_results.vocabulary import OUT_OF_RELEASE

from conftest import bundled_specs, cli_in_process, in_process, shared_recording

EXPRESSIONS = [("teams and not delete", None), ("WEBSITE-STATS/GET-STATS and share", None), (None, "teams or me"),
               ("v3", "not websites"), ("routes or admin-negative", "discovery or negative")]


def _pytest_selection(keyword: str | None, marker: str | None) -> list[str]:
    args = ["specs", "--collect-only", "-q", "-p", "no:cacheprovider", "--umami-negative=2", "--umami-discover"]
    args += ["-k", keyword] if keyword else []
    args += ["-m", marker] if marker else []
    proc = in_process(pytest.main, *args)
    return [line.split("::", 1)[1] for line in proc.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize(("keyword", "marker"), EXPRESSIONS)
def test_the_runner_selects_what_pytest_selects(keyword: str | None, marker: str | None) -> None:
    items = list(collect(bundled_specs(), negative_examples=2, discover=True))
    chosen = [i.id for i in select(items, keyword, marker)]
    assert chosen == _pytest_selection(keyword, marker)
    assert 0 < len(chosen) < len(items)


@pytest.mark.parametrize("flag", ["-k", "-m"])
def test_a_wrong_expression_is_one_clear_message(flag: str, tmp_path: Path) -> None:
    proc = cli_in_process("run", "--url", "http://127.0.0.1:9", "--out", str(tmp_path), flag, "teams and (")
    assert proc.returncode == 2, proc.stderr
    assert f"wrong expression passed to {flag}: 'teams and ('" in proc.stderr and "Traceback" not in proc.stderr


def test_a_selection_of_nothing_sends_nothing(tmp_path: Path) -> None:
    proc = cli_in_process("run", "--url", "http://127.0.0.1:9", "--out", str(tmp_path), "-k", "no-such-endpoint")
    assert proc.returncode == 2 and "no spec items selected (check -k/-m)" in proc.stderr
    assert "cannot connect" not in proc.stderr + proc.stdout  # no request was sent


@pytest.fixture(scope="module")
def me_and_teams(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """A recheck of the shared 2.20.2 recording's me/* and teams/* items, with progress lines."""
    out = tmp_path_factory.mktemp("runner")
    proc = cli_in_process("recheck", str(shared_recording("umami-2.20.2-run.har.gz")), "--out", str(out),
                          "--no-docs", "-m", "me or teams")
    return proc, out


def test_progress_lines_name_the_spec_files_and_the_counts_close(me_and_teams) -> None:
    proc, _ = me_and_teams
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    progress = [line for line in lines if line.endswith("%]")]
    files = [line.split()[0] for line in progress]
    assert sorted(set(files)) == ["me.yaml", "teams.yaml"] == files[:1] + files[-1:] and progress[-1].endswith("[100%]")
    assert set("".join(line.split()[1] for line in progress)) <= set(".Fs")
    assert any(line.strip("= ") == "Umami conformance" for line in lines)
    # one set of counts, the outcomes of results.json; then the verdict, the last line
    assert lines[-2].startswith("=") and " passed," in lines[-2] and " skipped in " in lines[-2], lines[-2:]
    assert lines[-1].startswith("umami-conformance: conforms: "), lines[-1]


def test_junit_has_a_testcase_per_item_with_skips_and_known_differences(me_and_teams) -> None:
    _, out = me_and_teams
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    results = json.loads((out / "results.json").read_text())
    other_release = {i["id"] for i in results["items"] if i.get("skip", {}).get("code") in OUT_OF_RELEASE}
    items = [i.id for i in select(collect(bundled_specs()), None, "me or teams")]
    assert other_release and not other_release & set(cases)  # only this server's release: no case of another
    assert list(cases) == [i for i in items if i not in other_release] and suite.get("tests") == str(len(cases))
    assert {c.get("classname") for c in cases.values()} == {"me.yaml", "teams.yaml"}
    skipped = [c for c in cases.values() if c.find("skipped") is not None]
    assert skipped and suite.get("skipped") == str(len(skipped)) and suite.get("failures") == "0"
    assert all(c.find("skipped").get("message") for c in skipped)
    known = [c for c in cases.values() if c.find("properties") is not None]
    assert known, "the recording's me/teams known differences"
    for case in known:
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        assert props[0] == ("outcome", "known") and {"finding_class", "json_path", "known_reason"} <= dict(props).keys()

"""Reports as a user meets them, offline (recheck of a shared recording, a port nobody listens on): a failed
run keeps the last good reports; report.html opens on a summary; JUnit marks known differences; messages
name the CLI's flags once; no secret in results.json, whatever characters it has; a quiet install."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from conformance import server
from conformance.client import Exchange, Target, send_cache
from conformance.options import cli_flags
from conformance.redact import REDACTED, Redactor

from conformance.results import example_body, write_results
from umami_results import load as load_results
from umami_results.vocabulary import Outcome
from conformance.items import Item, ItemResult
from conformance.options import Options
from conformance.session import Session
from docgen.report import render_report

from conftest import ROOT, bundled_specs, cli_in_process, in_process, shared_recording

UNREACHABLE = "http://127.0.0.1:9"
REPORTS = ("results.json", "junit.xml", "report.html", "docs/index.md")


@pytest.fixture
def good(recheck_2_20_2: tuple[subprocess.CompletedProcess, Path]) -> Path:
    """A recheck of the shared 2.20.2 recording, with docs: the last good reports (copied before a change)."""
    proc, out = recheck_2_20_2
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def _snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in REPORTS}


def _copy(good: Path, tmp_path: Path) -> Path:
    out = tmp_path / "reports"
    shutil.copytree(good, out)
    return out


def test_results_json_has_a_line_per_item(good: Path) -> None:
    """results.json: each item (and each endpoint view) on a line of its own, in the document's order."""
    text = (good / "results.json").read_text()
    doc = load_results(good / "results.json")
    lines = text.splitlines()
    start = lines.index('  "items": [')
    rows = lines[start + 1:start + 1 + len(doc["items"])]
    assert [json.loads(row.strip().rstrip(",")) for row in rows] == doc["items"]
    assert lines[start + 1 + len(doc["items"])].startswith("  ]")
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("}\n")
    assert sum(line.startswith('  "') for line in lines) == len(doc)  # a top-level key per line


def test_a_run_that_cannot_connect_keeps_the_last_good_reports(good: Path, tmp_path: Path) -> None:
    out = _copy(good, tmp_path)
    before = _snapshot(out)
    proc = cli_in_process("run", "--url", UNREACHABLE, "--out", str(out), "--retry-wait", "0")
    assert proc.returncode == 3
    assert _snapshot(out) == before
    assert f"the reports in {out} are left as they were" in proc.stderr
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [], "no staging directory is left"
    # One message, with no pytest banner.
    both = proc.stdout + proc.stderr
    assert both.count("cannot connect") == 1 and "_pytest.outcomes.Exit" not in both and "Traceback" not in both


def test_a_run_that_tests_nothing_keeps_the_last_good_reports(good: Path, tmp_path: Path) -> None:
    out = _copy(good, tmp_path)
    before = _snapshot(out)
    recording = shared_recording("umami-2.20.2-run.har.gz")
    # api-keys is >=3.2 only: all skipped
    proc = cli_in_process("recheck", str(recording), "--out", str(out), "-q", "-k", "api-keys")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.count("nothing was tested") == 1 and _snapshot(out) == before


def test_plain_pytest_keeps_the_last_results_file(good: Path, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    shutil.copy(good / "results.json", results)
    before = results.read_bytes()
    proc = in_process(pytest.main, "specs", "-q", "-p", "no:cacheprovider", "-k", "api-keys",
                      f"--umami-replay={shared_recording('umami-2.20.2-run.har.gz')}", f"--umami-results={results}")
    assert proc.returncode == 4, proc.stdout[-2000:]
    assert results.read_bytes() == before
    assert f"no results: {results} of an earlier run is left as it was" in proc.stdout


def test_report_html_opens_on_the_summary(good: Path, tmp_path: Path) -> None:
    html = (good / "report.html").read_text()
    results = load_results(good / "results.json")
    summary = html[html.index('id="summary"'):html.index('id="failed"')]
    assert "recording: umami-2.20.2-run.har.gz" in summary and "&gt;=2.18.0,&lt;3.0.0" in summary
    assert "<td>2.18.0–2.20.2 (range" in summary  # told by the route fingerprint: the range, not its newest
    assert re.search(r'<p id="verdict" class="verdict calm">conforms: \d+ items checked ', html)
    assert html.index('id="verdict"') < html.index('id="summary"')
    for outcome, count in results["summary"]["outcomes"].items():
        assert f"<td>{outcome}</td><td>{count}</td>" in summary
    classes = re.findall(r"<tr(?: class=\"security\")?><td>([a-z-]+)</td><td>(\d+)</td><td>(\d+)</td>", summary)
    assert classes == [("security", "0", "2"), ("status-changed", "0", "68"), ("type-changed", "0", "35"),
                       ("value-changed", "0", "2")], classes
    # Known differences with their reasons, security first; passed and skipped items collapsed, after them.
    known = html[html.index('id="known"'):html.index('id="passed"')]
    rows = re.findall(r"<tr(?: class=\"[a-z-]+\")?><td>([a-z-]+)</td><td>([a-z/-]+)</td><td>([^<]+)</td>", known)
    assert rows[0][:2] == ("security", "admin/users") and "bcrypt password hash" in rows[0][2]
    assert all(cls != "security" for cls, _, _ in rows[1:])
    assert html.index('id="known"') < html.index('id="passed"') < html.index('id="skipped"')
    skipped = html[html.index('<section id="skipped">') + len('<section id="skipped">'):]
    assert skipped.lstrip().startswith("<details>\n<summary>Skipped items (") and "not in the recording" in skipped
    assert "('" not in html, "no raw skip tuples"
    # The same results give the same page.
    assert render_report(results, tmp_path / "again.html").read_text() == html


def test_junit_marks_known_differences(good: Path) -> None:
    cases = {c.get("name"): c for c in ET.parse(good / "junit.xml").getroot().iter("testcase")}
    props = [(p.get("name"), p.get("value")) for p in cases["admin/users[admin-first-page]"].iter("property")]
    assert props[:3] == [("outcome", "known"), ("finding_class", "security"), ("json_path", "$.data[*].password")]
    assert props[3][0] == "known_reason" and "bcrypt" in props[3][1]
    known = load_results(good / "results.json")["summary"]["outcomes"]["known"]
    marked = [c for c in cases.values() if ("outcome", "known") in [(p.get("name"), p.get("value"))
                                                                    for p in c.iter("property")]]
    assert len(marked) == known
    assert all(c.find("failure") is None and c.find("skipped") is None for c in marked)


def test_pytest_option_names_become_the_cli_flags() -> None:
    assert cli_flags("login refused: check --umami-username/--umami-password") == \
        "login refused: check --username/--password"
    assert cli_flags("pass --umami-url (or set UMAMI_URL)") == "pass --url (or set UMAMI_URL)"
    assert cli_flags("pass --umami-version") == "pass --umami-version"  # the same flag in both


def test_plain_pytest_without_a_url_stops_and_writes_no_results(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UMAMI_URL", raising=False)
    proc = in_process(pytest.main, "specs", "-q", "-p", "no:cacheprovider", "-k", "me/get",
                      f"--umami-results={tmp_path / 'r.json'}")
    assert proc.returncode == 3 and "pass --umami-url" in proc.stdout + proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_read_only_without_website_id_says_what_it_skips(tmp_path: Path) -> None:
    proc = cli_in_process("run", "--url", UNREACHABLE, "--out", str(tmp_path), "--read-only", "--retries", "0")
    assert "--read-only without --website-id" in proc.stderr and "--website-id ID of an existing website" in proc.stderr


@pytest.mark.parametrize("content", ["not json at all", "[1, 2]", '{"items": []}'])
@pytest.mark.parametrize("command", ["docs", "diff"])
def test_docs_and_diff_refuse_a_file_that_is_not_a_results_file(good: Path, tmp_path: Path, command: str,
                                                                content: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    args = [str(bad), "--out", str(tmp_path / "docs")] if command == "docs" else [str(good / "results.json"), str(bad)]
    proc = cli_in_process(command, *args)
    assert proc.returncode == 2, proc.stderr
    assert f"{bad}: not a results file of umami-conformance" in proc.stderr and "Traceback" not in proc.stderr


def test_server_info_repr_hides_passwords() -> None:
    info = server.ServerInfo(url="http://x", pid=1, port=2, pg_port=3, database="d", version="2.10.0", log="l",
                             user_username="u", user_password="user-pass-123", admin2_username="a",
                             admin2_password="admin-pass-123", viewer_username="v", viewer_password="view-pass-123")
    assert "pass-123" not in repr(info) and "user_username='u'" in repr(info)


def _exchange(body: bytes, ctype: str) -> Exchange:
    request = httpx.Request("POST", "http://umami/api/send", json={"type": "event"})
    return Exchange(request=request, response=httpx.Response(200, content=body, headers={"content-type": ctype},
                                                             request=request), seconds=0.0)


def test_send_cache_token_is_a_secret() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9." + "eyJzZXNzaW9uSWQiOiJ4In0" * 12 + ".c2lnbmF0dXJlLXZhbHVl"  # > 200 characters
    assert send_cache(_exchange(jwt.encode(), "text/plain")) == jwt  # 2.10
    assert send_cache(_exchange(json.dumps({"cache": jwt, "sessionId": "s"}).encode(), "application/json")) == jwt
    # The example written to results.json: the whole token redacted before the text is cut.
    redactor = Redactor()
    assert example_body(_exchange(jwt.encode(), "text/plain"), redactor) == REDACTED
    assert example_body(_exchange(json.dumps({"cache": jwt}).encode(), "application/json"), redactor) == \
        {"cache": REDACTED}


SECRETS = ["pässwörd-long-1", 'quote"secret-22', "back\\slash-secret-3", "eyJhbGciOiJIUzI1NiJ9.cache.token-4"]


def test_results_json_is_redacted_string_by_string(tmp_path: Path) -> None:
    specs = bundled_specs()
    session = Session(options=Options(target=Target(url=UNREACHABLE), specs_dir=specs.root,
                                      results_path=tmp_path / "results.json"), specs=specs, known=[])
    for secret in SECRETS:
        session.client.redactor.add(secret)
    endpoint = next(e for e in specs.endpoints if e.id == "me/get")
    result = ItemResult(Item("me/get[admin-default]", endpoint, endpoint.cases[0], "admin"), None,
                        outcome=Outcome.PASSED, reason=f"saw {SECRETS[0]} and {SECRETS[1]}", schema_checked=True)
    result.answer = {"actual_status": 200, "url": f"http://x/api/me?q={SECRETS[2]}",
                     "example": {"note": SECRETS[2], "cache": "a-session-cache-value", SECRETS[0]: 1}}
    session.results.append(result)
    try:
        text = write_results(session).read_text()
    finally:
        session.client.close()
    for secret in SECRETS + ["a-session-cache-value"]:
        assert secret not in text and json.dumps(secret)[1:-1] not in text and \
            json.dumps(secret, ensure_ascii=False)[1:-1] not in text, secret
    doc = json.loads(text)
    assert doc["items"][0]["example"] == {"note": REDACTED, "cache": REDACTED, REDACTED: 1}


@pytest.mark.build
def test_install_is_quiet_and_ships_the_templates(tmp_path: Path) -> None:
    """Building the package prints no setuptools warning (license table, docgen.templates) and the wheel
    holds the templates, the results schema and the specs (with their schemas and references). Built with the
    venv's setuptools (the test extras hold the build-system's): an isolated build environment costs seconds, and
    the live install test builds in one."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Warning" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[:3000]
    import zipfile
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    assert "docgen/templates/report.html.j2" in names and "umami_results/results.schema.json" in names
    assert {f"umami_results/data/umami-{v}.results.json.gz" for v in ("2.10.0", "2.20.2", "3.1.0")} <= set(names)
    specs = {n.removeprefix("umami_specs/") for n in names if n.startswith("umami_specs/")}
    shipped = {str(p.relative_to(ROOT / "specs")) for p in (ROOT / "specs").rglob("*")
               if p.is_file() and p.suffix in (".yaml", ".json", ".md", ".py")}
    assert shipped <= specs and {"meta-schema.yaml", "schemas/common.yaml", "references/umami-routes.json",
                                  "references/umami-source-history.json"} <= specs


def test_readme_bench_commands_use_the_venv_python() -> None:
    for doc in ("README.md", "bench/README.md"):
        text = (ROOT / doc).read_text()
        commands = re.findall(r"`([^`]*bench/bench_\w+\.py[^`]*)`", text)
        assert commands and all(c.startswith(".venv/bin/python bench/") for c in commands), (doc, commands)

"""A flaky gateway in front of the real local Umami: transient failures are retried, reported apart as
`unavailable`, never as drift, and the run completes and cleans up."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from conformance import server
from conformance.cleanup import find_leftovers
from conformance.client import Target, UmamiClient
from conformance.objects import list_rows

from conftest import run_cli, user_env
from proxy import Faults, RecordingProxy


def _open_findings(results: dict) -> set[tuple[str, str, str]]:
    return {(i["id"], f["class"], f["json_path"]) for i in results["items"] for f in i["findings"] if not f["known"]}


def _left_on_server(umami: server.ServerInfo, prefix: str) -> set[str]:
    client = UmamiClient(Target(url=umami.url, username="admin", password="umami"))
    admin = client.login("admin", "umami")
    return {o.id for o in find_leftovers(client, admin, prefix)}


@pytest.fixture(scope="module")
def clean(umami: server.ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("clean")
    proc = run_cli("run", "--url", umami.url, "--out", str(out), "--no-docs", "-q", env=user_env(umami))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def test_five_percent_gateway_errors_and_dropped_connections_are_not_drift(
        umami: server.ServerInfo, clean: dict, tmp_path: Path) -> None:
    faults = Faults(bad_gateway=0.05, dropped=0.02, seed=18)
    with RecordingProxy(umami.url, faults=faults) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "--no-docs", "-q",
                       "--retry-wait", "0.05", env=user_env(umami))
    assert faults.injected["502"] > 20 and faults.injected["dropped"] > 5, faults.injected
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    unavailable = [i for i in results["items"] if i["outcome"] == "unavailable"]
    # The run completed: every item of the clean run ran, and the exit code tells a flaky night from drift.
    assert {i["id"] for i in results["items"]} == {i["id"] for i in clean["items"]}
    assert proc.returncode == (5 if unavailable else 0), proc.stdout[-3000:] + proc.stderr[-2000:]
    # Not one finding comes from an injected fault: the same drift findings as the clean run (none here).
    assert _open_findings(results) == _open_findings(clean) == set()
    assert results["summary"]["findings"] == clean["summary"]["findings"]
    # Only writes that may have landed stay unchecked: every read was retried until it got an answer.
    assert all(i["method"] != "GET" for i in unavailable), [i["id"] for i in unavailable]
    assert all("502" in i["reason"] or "connection dropped" in i["reason"] for i in unavailable)
    # results.json counts the retries and the transient failures.
    assert results["timing"]["retries"] >= faults.injected["502"] // 2 > 0
    assert results["timing"]["unavailable"] >= len(unavailable)
    assert sum(i.get("retries", 0) for i in results["items"]) > 0
    # Nothing left behind but what the server cannot delete (2.10.0: websites), as in the clean run.
    assert {r["kind"] for r in results["residue"]} <= {r["kind"] for r in clean["residue"]} | set()
    assert all("HTTP 500" in r["reason"] for r in results["residue"]), results["residue"]
    assert _left_on_server(umami, results["prefix"]) <= {r["id"] for r in results["residue"]}
    assert "transient failures" in proc.stdout and "not drift" in proc.stdout


def test_a_create_whose_answer_is_lost_is_found_not_made_twice(umami: server.ServerInfo, tmp_path: Path) -> None:
    def reports_lost(method: str, path: str, status: int, body: bytes) -> tuple | None:
        return (502, b"<html>502 Bad Gateway</html>", {"content-type": "text/html"}) \
            if method == "POST" and path == "/api/reports" else None

    with RecordingProxy(umami.url, mutate=reports_lost) as proxy:  # the server makes the report; the answer is lost
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "--no-docs", "-q", "-m", "reports",
                       "--retry-wait", "0.01", env=user_env(umami))
    results = json.loads((tmp_path / "results.json").read_text())
    prefix = results["prefix"]
    targets = Counter(json.loads(s.request_body)["name"] for s in proxy.seen if s.method == "POST"
                      and s.path == "/api/reports" and f'"{prefix}report-'.encode() in s.request_body)
    assert targets and set(targets.values()) == {1}, f"each throwaway report was found, not sent again: {targets}"
    on_target = [i for i in results["items"] if i["endpoint"] in ("reports/get", "reports/update", "reports/delete")
                 and i["outcome"] not in ("skipped",)]
    assert on_target and all(i["outcome"] in ("passed", "passed-no-schema", "known") for i in on_target), on_target
    unavailable = {i["id"] for i in results["items"] if i["outcome"] == "unavailable"}
    assert unavailable and all(i.startswith("reports/create") for i in unavailable), unavailable
    assert proc.returncode == 5 and _open_findings(results) == set(), proc.stdout[-3000:] + proc.stderr[-2000:]
    # The reports the lost answers hid were found by the run prefix and removed with the rest.
    left = _reports_named(umami, prefix)
    assert left == [] and results["residue"] == [], (left, results["residue"])


def _reports_named(umami: server.ServerInfo, prefix: str) -> list[str]:
    client = UmamiClient(Target(url=umami.url, username="admin", password="umami"))
    admin = client.login("admin", "umami")
    names = []
    for site in list_rows(client, admin, "/admin/websites") or []:
        names += [r["name"] for r in list_rows(client, admin, "/reports", {"websiteId": site["id"]}) or []
                  if r["name"].startswith(prefix)]
    return names


def test_set_up_that_keeps_failing_says_what_how_often_and_what_was_cleaned(
        umami: server.ServerInfo, tmp_path: Path) -> None:
    # The seed's requests (and its check whether the kept websites hold a fresh seed) never get through.
    faults = Faults(bad_gateway=1.0, only=lambda method, path: path == "/api/send"
                    or (method == "GET" and "/stats?startAt=" in path))
    with RecordingProxy(umami.url, faults=faults) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "--no-docs", "-q",
                       "--retry-wait", "0.01", env=user_env(umami))
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    message = next(line for line in proc.stderr.splitlines() if "error:" in line)
    assert "POST /api/send answered HTTP 502 (tried 4 times)" in message, message
    assert "; cleanup: " in message and "nothing remains" in message, message

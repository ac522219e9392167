"""Safety against the real local Umami: no trace left (beyond reported residue), read-only mode,
interrupts, cleanup after SIGKILL, and one clear message per bad server behaviour."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from conformance import server
from conformance.client import Target, UmamiClient
from conformance.sandbox import Created, Sandbox, remove

from conftest import CLI, ROOT, run_cli, user_env
from proxy import RecordingProxy
from snapshot import compare, snapshot


def _assert_only_residue(umami: server.ServerInfo, before: dict, out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    residue_ids = {r["id"] for r in results["residue"]}
    assert compare(before, snapshot(umami), residue_ids, results["prefix"]) == []
    # On Umami 2.10.0 websites cannot be deleted (DELETE answers 500): that is the only residue allowed.
    assert all(r["kind"] == "website" and "HTTP 500" in r["reason"] for r in results["residue"])
    return results


def _residue_of_a_stopped_run(umami: server.ServerInfo, before: dict, out: Path, stderr: str) -> set[str]:
    """What a stopped run left: only reported residue, from results.json when items had run (the run is marked
    interrupted), else from the ledger (no results: the last reports are kept, and the run says so)."""
    if (out / "results.json").exists():
        results = _assert_only_residue(umami, before, out)
        assert results["interrupted"] is True
        return {r["id"] for r in results["residue"]}
    assert "are left as they were: this run produced no results" in stderr
    ledgers = list(out.glob("sandbox-ledger-*.json"))
    ledger = json.loads(ledgers[0].read_text()) if ledgers else {"created": [], "prefix": None}
    residue = {o["id"] for o in ledger["created"]}
    assert compare(before, snapshot(umami), residue, ledger["prefix"]) == []
    assert all(o["kind"] == "website" for o in ledger["created"])  # 2.10.0 cannot delete websites
    return residue


def test_passing_run_leaves_only_reported_residue(umami: server.ServerInfo, tmp_path: Path) -> None:
    before = snapshot(umami)
    proc = run_cli("run", "--url", umami.url, "--out", str(tmp_path), "--no-docs", env=user_env(umami))
    assert proc.returncode == 0, proc.stdout[-2000:]
    results = _assert_only_residue(umami, before, tmp_path)
    assert results["residue"], "2.10.0 keeps the run's websites, and the run says so"
    assert not any("still listed" in r["reason"] for r in results["residue"])
    # The team website outlives its team (deleteTeam leaves it): an orphan, named and said to be one.
    orphans = [r for r in results["residue"] if "orphaned" in r["reason"]]
    assert [r["name"] for r in orphans] == [f"{results['prefix']}team-site"]
    # The ledger keeps exactly what remains, and `cleanup` finds all of it again, the orphan included.
    ledger = json.loads(next(tmp_path.glob("sandbox-ledger-*.json")).read_text())
    assert {o["id"] for o in ledger["created"]} == {r["id"] for r in results["residue"]}
    cleanup = run_cli("cleanup", "--url", umami.url, "--prefix", results["prefix"], "--out", str(tmp_path))
    assert cleanup.returncode == 1 and f"found {len(results['residue'])} object(s)" in cleanup.stdout, cleanup.stdout
    assert f"{results['prefix']}team-site ({orphans[0]['id']}): DELETE /websites/" in cleanup.stdout
    assert results["seeded"]["revenue"] > 0 and "skipped" not in results["seeded"]  # 2.10.0 has no revenue table


def test_seeded_website_goes_with_its_owner_and_gone_objects_are_not_residue(umami: server.ServerInfo,
                                                                             tmp_path: Path) -> None:
    """What 2.10.0 can show of deletability: it cannot delete any website (DELETE answers 500), but deleting the
    owner removes the user's websites; a website with the full seed of this version (sessions, pageviews,
    events with data, revenue events, a share link) goes with its owner, and nothing of it is left behind."""
    name = f"ucf-{time.strftime('%Y%m%dt%H%M%S', time.gmtime())}-beef-owner"
    password = server.create_user_sql(umami.pg_port, umami.database, server.app_dir(umami.version), name, "user")
    client = UmamiClient(Target(url=umami.url, username="admin", password="umami"))
    try:
        admin = client.login("admin", "umami")
        sandbox = Sandbox(client, admin, name.removesuffix("owner"), tmp_path / "ledger.json",
                          versions=[umami.version])
        owner, user = client.login_user(name, password)
        site = sandbox.create_website("site", user["id"], owner, share_id="beefbeefbeefbeef")
        sandbox.seed(site)
        assert sandbox.seeded["revenue"] > 0
        assert _count(umami, "session", site["id"]) == 5 and _count(umami, "event_data", site["id"]) > 0
        objects = [Created("user", user["id"], name), *sandbox.created]
        gone = Created("website", "6f1d0c8e-0000-4000-8000-00000000beef", f"{name}-gone")  # DELETE answers 500
        assert remove(client, admin, [*objects, gone]) == []
    finally:
        client.close()
    for table in ("website", "session", "website_event", "event_data"):
        assert _count(umami, table, site["id"]) == 0, f"{table} rows of the seeded website remain"


def _count(umami: server.ServerInfo, table: str, website_id: str) -> int:
    sql = f"SELECT count(*) FROM \"{table}\" WHERE website_id = '{website_id}'"
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(umami.pg_port), "-U", "postgres", "-d", umami.database,
                          "-At", "-c", sql], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def test_failing_run_leaves_only_reported_residue(umami: server.ServerInfo, tmp_path: Path) -> None:
    def break_verify(method: str, path: str, status: int, body: bytes):
        return (200, b'{"id": 1}') if path == "/api/auth/verify" else None

    before = snapshot(umami)
    with RecordingProxy(umami.url, mutate=break_verify) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "--no-docs", env=user_env(umami))
    assert proc.returncode == 1, proc.stdout[-2000:]
    _assert_only_residue(umami, before, tmp_path)


def _wait_for_ledger(out: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not list(out.glob("sandbox-ledger-*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sandbox was never created"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_still_cleans_up(umami: server.ServerInfo, tmp_path: Path, signum: int) -> None:
    def slow(method: str, path: str, status: int, body: bytes):
        if path.startswith("/api/websites/"):
            time.sleep(0.2)
        return None

    before = snapshot(umami)
    with RecordingProxy(umami.url, mutate=slow) as proxy:
        proc = subprocess.Popen([*CLI, "run", "--url", proxy.url, "--out", str(tmp_path), "--no-docs"],
                                cwd=ROOT, env={**os.environ, **user_env(umami)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        _wait_for_ledger(tmp_path, proc)
        time.sleep(0.5)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "Traceback" not in stderr
    residue = _residue_of_a_stopped_run(umami, before, tmp_path, stderr)
    assert "umami-conformance: interrupted; cleanup: removed " in stderr, stderr[-1500:]
    assert (f"{len(residue)} remain, listed in" if residue else "nothing remains") in stderr


def test_sigkill_then_cleanup_command(umami: server.ServerInfo, tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLI, "run", "--url", umami.url, "--out", str(tmp_path), "--no-docs"],
                            cwd=ROOT, env={**os.environ, **user_env(umami)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for_ledger(tmp_path, proc)
    time.sleep(0.3)
    proc.kill()
    proc.wait()
    ledger = json.loads(next(tmp_path.glob("sandbox-ledger-*.json")).read_text())
    prefix = ledger["prefix"]
    cleanup = run_cli("cleanup", "--url", umami.url, "--prefix", prefix, "--out", str(tmp_path))
    created = {o["id"] for o in ledger["created"]}
    assert f"found {len(created)} object(s)" in cleanup.stdout or "found" in cleanup.stdout, cleanup.stdout
    # Everything of that run is gone or reported with the server's reason (2.10.0 cannot delete websites).
    lines = [line for line in cleanup.stdout.splitlines() if line.startswith("  could not remove")]
    assert all(prefix in line and "HTTP 500" in line for line in lines), cleanup.stdout
    assert cleanup.returncode == (1 if lines else 0)


def test_read_only_sends_only_get_and_login(umami: server.ServerInfo, admin_token: str, tmp_path: Path) -> None:
    # A website that exists before the run: the read-only run reads it and must leave it as it is.
    site = httpx.post(f"{umami.url}/api/websites", headers={"Authorization": f"Bearer {admin_token}"},
                      json={"name": "pre-existing", "domain": "pre.example.com"}).json()
    website_id = site["id"]
    before = snapshot(umami)
    with RecordingProxy(umami.url) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "--read-only",
                       "--website-id", website_id)
    assert proc.returncode == 0, proc.stdout[-2000:]
    writes = [(s.method, s.path) for s in proxy.seen if s.method != "GET"]
    assert writes and set(writes) == {("POST", "/api/auth/login")}
    results = json.loads((tmp_path / "results.json").read_text())
    skipped = {i["endpoint"] for i in results["items"] if i["reason"] and "read-only" in i["reason"]}
    assert {"websites/create", "websites/update", "websites/delete", "websites/reset", "auth/logout"} <= skipped
    checked = {i["endpoint"] for i in results["items"] if i["outcome"] in ("passed", "passed-no-schema")}
    assert {"websites/get", "website-stats/get-stats", "me/get", "auth/login"} <= checked
    assert compare(before, snapshot(umami), set(), None) == []


def test_read_only_without_website_id_says_what_it_skipped(umami: server.ServerInfo, tmp_path: Path) -> None:
    proc = run_cli("run", "--url", umami.url, "--out", str(tmp_path), "--read-only", "-m", "websites or me")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    no_site = [i for i in results["items"] if (i["reason"] or "").startswith("read-only run without")]
    assert {i["endpoint"] for i in no_site} >= {"websites/get"}
    assert f"{len(no_site)} items that read one website were skipped; pass --website-id" in proc.stdout
    assert "skipped" in proc.stdout and "read-only run: write endpoint not checked" in proc.stdout
    assert "--umami-website-id" not in proc.stdout + proc.stderr


def test_server_answering_5xx(umami: server.ServerInfo, tmp_path: Path) -> None:
    with RecordingProxy(umami.url, mutate=lambda *a: (502, b"Bad Gateway")) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path))
    assert proc.returncode == 3, proc.stderr
    assert "GET /api/heartbeat answered HTTP 502 (tried 4 times)" in proc.stderr


def test_hanging_server_times_out(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held = []
    threading.Thread(target=lambda: held.append(listener.accept()), daemon=True).start()
    port = listener.getsockname()[1]
    start = time.monotonic()
    proc = run_cli("run", "--url", f"http://127.0.0.1:{port}", "--timeout", "1", "--out", str(tmp_path))
    listener.close()
    assert proc.returncode == 3 and "no answer within 1s" in proc.stderr
    assert time.monotonic() - start < 30


def test_rate_limit_retry_after_is_honoured(umami: server.ServerInfo, tmp_path: Path) -> None:
    limited: list[float] = []

    def limit_once(method: str, path: str, status: int, body: bytes):
        if path == "/api/me" and not limited:
            limited.append(time.monotonic())
            return 429, b"Too Many Requests", {"Retry-After": "2"}
        return None

    with RecordingProxy(umami.url, mutate=limit_once) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "-k", "me/", env=user_env(umami))
        me_calls = [s for s in proxy.seen if s.path == "/api/me"]
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert me_calls[0].status == 429 and me_calls[1].status == 200
    assert me_calls[1].at - me_calls[0].at >= 1.9, "the retry waited for Retry-After"


def test_wrong_api_key(umami: server.ServerInfo, tmp_path: Path) -> None:
    proc = run_cli("run", "--url", f"{umami.url}/api", "--out", str(tmp_path),
                   env={"UMAMI_API_KEY": "wrong-key-123456"})
    assert proc.returncode == 3 and "API key was refused" in proc.stderr, proc.stderr


def test_max_time_stops_and_cleans_up(umami: server.ServerInfo, tmp_path: Path) -> None:
    def slow(method: str, path: str, status: int, body: bytes):
        time.sleep(0.05)
        return None

    before = snapshot(umami)
    with RecordingProxy(umami.url, mutate=slow) as proxy:
        proc = run_cli("run", "--url", proxy.url, "--out", str(tmp_path), "--max-time", "2", env=user_env(umami))
    assert proc.returncode == 6 and "exceeded --max-time 2s and was stopped; cleanup: removed" in proc.stderr, \
        proc.stderr[-1500:]
    residue = _residue_of_a_stopped_run(umami, before, tmp_path, proc.stderr)
    assert (f"{len(residue)} remain, listed in" if residue else "nothing remains") in proc.stderr

"""The safety rules a user relies on, offline through the commands (the live ones are in test_safety_live.py): set-up
drift fails the run, a read-only run sends only GETs and logins, `cleanup` removes a killed run's objects by
prefix and ledger and nothing else. The servers: a recording of a real one served over HTTP, and the in-memory
model (tests/fake_umami.py), each behind a proxy that records every request."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

from conformance.replay import Replay
from conftest import bundled_specs, cli_in_process, recheck, shared_recording
from fake_umami import FakeUmami
from proxy import RecordingProxy

PREFIX = "ucf-20260101t000000-abcd-"  # a killed run's


def _entries(name: str) -> tuple[dict, list[dict]]:
    har = json.loads(gzip.decompress(shared_recording(name).read_bytes()))
    return har, har["log"]["entries"]


def test_setup_drift_fails_the_run(tmp_path: Path) -> None:
    """The set-up's first login answers its token under another name: the run goes on with it, and the set-up's
    finding fails the run (exit 1, the verdict in results.json and on the console) although every item passed."""
    har, entries = _entries("umami-2.20.2-run.har.gz")
    login = next(e for e in entries
                 if e["request"]["url"].endswith("/api/auth/login") and e["response"]["status"] == 200)
    body = json.loads(login["response"]["content"]["text"])
    body["accessToken"] = body.pop("token")
    login["response"]["content"]["text"] = json.dumps(body)
    drifted = tmp_path / "drifted.har.gz"
    drifted.write_bytes(gzip.compress(json.dumps(har).encode()))
    proc, results = recheck(tmp_path / "out", drifted, args=("-k", "me/get"))
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    failed = [(i["id"], [(f["class"], f["json_path"]) for f in i["findings"]])
              for i in results["items"] if i["outcome"] == "failed"]
    assert failed == [("auth/login[admin-setup]", [("field-removed", "$.token")])]
    assert all(i["outcome"] != "failed" for i in results["items"] if i["case"] != "setup"), "only the set-up drifted"
    assert results["summary"]["outcomes"]["failed"] == 1 and results["summary"]["findings"] == {"field-removed": 1}
    assert results["verdict"] == {"code": "drift", "text": "drift: 1 open finding(s) in 1 item(s) of 13 checked"}
    assert "umami-conformance: drift: 1 open finding(s) in 1 item(s) of 13 checked" in proc.stdout
    assert "items: failed 1," in proc.stdout and "auth/login[admin-setup] $.token" in proc.stdout


def test_read_only_sends_only_gets_and_logins(tmp_path: Path) -> None:
    """A whole read-only run (every area, every role) against the 2.20.2 recording served over HTTP: nothing but
    GETs and the logins reach the server, the write endpoints are reported as not checked, nothing is created."""
    _, entries = _entries("umami-2.20.2-run.har.gz")
    site = next(json.loads(e["response"]["content"]["text"])["id"] for e in entries
                if e["request"]["method"] == "POST" and e["request"]["url"].endswith("/api/websites"))
    specs = bundled_specs()
    replay = Replay.load([shared_recording("umami-2.20.2-run.har.gz")],
                         [e.path for e in specs.endpoints] + list(specs.inventory.templates))
    with RecordingProxy("http://umami", transport=replay) as server:
        proc = cli_in_process("run", "--url", server.url, "--out", str(tmp_path), "--read-only", "--website-id", site,
                              "--retries", "0", "-q", "--no-docs")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    sent = Counter(s.method for s in server.seen)
    writes = {(s.method, s.path) for s in server.seen if s.method != "GET"}
    assert writes == {("POST", "/api/auth/login")} and sent == {"GET": 329, "POST": 3}, sent  # admin, user, viewer
    results = json.loads((tmp_path / "results.json").read_text())
    skipped = {i["endpoint"] for i in results["items"] if (i.get("skip") or {}).get("code") == "read-only"}
    assert {"websites/create", "websites/update", "websites/delete", "auth/logout", "send/event"} <= skipped
    ran = {i["endpoint"] for i in results["items"] if i["outcome"] not in ("skipped", "error")}
    assert {"websites/get", "website-stats/get-stats", "me/get"} <= ran
    assert not [i["id"] for i in results["items"] if i["outcome"] != "skipped" and i["method"] != "GET"
                and i["endpoint"] != "auth/login"]
    assert "cleanup: the run had created nothing; nothing remains" in proc.stdout


def test_cleanup_removes_a_killed_run_s_objects_by_prefix_and_ledger_and_nothing_else(tmp_path: Path) -> None:
    """`cleanup` finds the run's user and website by their prefix in the admin lists, the orphaned website (no user,
    no team: in no list) through the run's ledger, removes them, and leaves every object it did not make, even
    one whose name merely starts like a run's."""
    fake = FakeUmami.release("2.20.2")  # /admin/websites lists one user's websites: an orphan is in no list
    user = fake.add_user(f"{PREFIX}user")
    own = fake.add_website(f"{PREFIX}site", user_id=user["id"])
    orphan = fake.add_website(f"{PREFIX}team-site", team_id="a-team-that-is-gone")
    before = {"websites": {fake.add_website("production-site", user_id="owner")["id"],
                           fake.add_website("ucf-notes", user_id="owner")["id"]},
              "users": {fake.add_user("alice")["id"], fake.add_user("ucf-ops")["id"]},
              "teams": {fake.add_team("marketing")["id"]}}
    with RecordingProxy("http://fake-umami", transport=fake.transport()) as server:
        ledger = tmp_path / f"sandbox-ledger-{PREFIX.rstrip('-')}.json"
        ledger.write_text(json.dumps({"prefix": PREFIX, "url": server.url, "created": [
            {"kind": "website", "id": orphan["id"], "name": orphan["name"]},
            {"kind": "website", "id": "6f1d0c8e-0000-4000-8000-000000000003", "name": f"{PREFIX}gone"}]}))
        proc = cli_in_process("cleanup", "--url", server.url, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "found 3 object(s) with a run prefix; removed 3" in proc.stdout, proc.stdout
    deleted = [s.path for s in server.seen if s.method == "DELETE"]
    assert sorted(deleted) == sorted([f"/api/websites/{own['id']}", f"/api/websites/{orphan['id']}",
                                      f"/api/users/{user['id']}"]) and deleted[-1].startswith("/api/users/"), deleted
    assert (set(fake.websites), set(fake.users), set(fake.teams)) == (before["websites"], before["users"],
                                                                      before["teams"])
    assert not ledger.exists(), "a ledger lists only what remains"

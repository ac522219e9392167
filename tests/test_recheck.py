"""Record and recheck: HAR recordings of a run, and the checks of the current specs replayed against them."""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance import server
from conformance.client import NOT_RECORDED_HEADER, REPLAYED_HEADER
from conformance.har import HarRecorder, exchange_item, load_har
from conformance.redact import Redactor

from conformance.replay import Recording, Replay, Templates, body_key, identities_of, query_key
from conformance.versions import template_key

from conftest import RECORDINGS, bundled_specs, copy_specs, recheck, run_cli, shared_recording, user_env
from proxy import RecordingProxy

PREFIX = "ucf-20261125t234625-4431-"
SITE = "e46d4189-ebdf-4687-bfb8-d77ec38eadd4"
OTHER_SITE = "3b86176a-0a2d-4660-9dcf-deb30a538691"
UNKNOWN = "7e1c2a9b-3f4d-4c6e-9a8b-0c1d2e3f4a5b"
TEMPLATES = ["/auth/login", "/websites", "/websites/{websiteId}", "/websites/{websiteId}/stats", "/share/{shareId}",
             "/teams/join", "/teams/{teamId}", "/version"]


def entry(method: str, path: str, status: int = 200, body: Any = None, *, token: str | None = None,
          share: str | None = None, query: str = "", sent: Any = None, item: str | None = None,
          ctype: str = "application/json") -> dict[str, Any]:
    """One hand-made HAR entry (the shape of the shared recordings)."""
    headers = [{"name": "Accept", "value": "application/json"}]
    if token:
        headers.append({"name": "Authorization", "value": f"Bearer {token}"})
    if share:
        headers.append({"name": "x-umami-share-token", "value": share})
    request: dict[str, Any] = {"method": method, "url": f"http://umami/api{path}" + (f"?{query}" if query else ""),
                               "headers": headers, "queryString": []}
    if sent is not None:
        request["postData"] = {"mimeType": "application/json", "text": json.dumps(sent)}
    text = body if isinstance(body, str) else json.dumps(body)
    out = {"request": request, "response": {"status": status, "headers": [{"name": "content-type", "value": ctype}],
                                            "content": {"text": text, "mimeType": ctype}}}
    return {**out, "_item": item} if item else out


def login(name: str, role: str, token: str) -> dict[str, Any]:
    return entry("POST", "/auth/login", body={"token": token, "user": {"username": name, "role": role}},
                 sent={"username": name, "password": "***"})


def har(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"log": {"version": "1.2", "entries": list(entries)}}


def replay(*recordings: dict[str, Any]) -> Replay:
    return Replay([Recording.from_har(r, f"r{i}") for i, r in enumerate(recordings)], Templates(TEMPLATES))


def ask(rp: Replay, method: str, path: str, *, token: str | None = None, share: str | None = None,
        query: dict[str, str] | None = None, body: Any = None, item: str | None = None) -> httpx.Response:
    """A request through the replay as the run's client sends it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if share:
        headers["x-umami-share-token"] = share
    with httpx.Client(base_url="http://umami/api", transport=rp) as client, exchange_item(item or "setup"):
        return client.request(method, path, params=query, headers=headers, json=body)


RUN = har(
    entry("GET", "/version", 404, "<!DOCTYPE html><html>404</html>", ctype="text/html; charset=utf-8"),
    login("admin", "admin", "redacted-aaaaaaaaaaaa"),
    login(f"{PREFIX}user", "user", "redacted-bbbbbbbbbbbb"),
    login(f"{PREFIX}viewer", "user", "redacted-cccccccccccc"),
    entry("POST", "/websites", body={"id": SITE, "shareId": "redacted-dddddddddddd"}, token="redacted-bbbbbbbbbbbb",
          sent={"name": f"{PREFIX}site", "shareId": "redacted-dddddddddddd"}),
    entry("GET", "/share/redacted-dddddddddddd", body={"websiteId": SITE, "token": "redacted-eeeeeeeeeeee"}),
    entry("GET", f"/websites/{SITE}/stats", body={"pageviews": 1}, token="redacted-aaaaaaaaaaaa",
          query="startAt=1795045632804&endAt=1795653994197"),
    entry("GET", f"/websites/{SITE}/stats", body={"pageviews": 2}, token="redacted-aaaaaaaaaaaa",
          query="startAt=1795045632900&endAt=1795653994300"),
    entry("GET", f"/websites/{SITE}/stats", 400, {"error": "missing range"}, token="redacted-aaaaaaaaaaaa"),
    entry("GET", f"/websites/{SITE}/stats", 401, {"error": "Unauthorized"}, token="redacted-cccccccccccc",
          query="startAt=1795045632804&endAt=1795653994197"),
    entry("GET", f"/websites/{SITE}/stats", body={"pageviews": 3}, share="redacted-eeeeeeeeeeee",
          query="startAt=1795045632804&endAt=1795653994197"),
    entry("GET", f"/websites/{SITE}/stats", 401, {"error": "Unauthorized"},
          query="startAt=1795045632804&endAt=1795653994197"),
    entry("GET", f"/websites/{SITE}", body={"id": SITE, "name": f"{PREFIX}site"}, token="redacted-bbbbbbbbbbbb"),
)
EXPLORE = har(
    login("admin", "admin", "redacted-111111111111"),
    login("probe_u1", "user", "redacted-222222222222"),
    login("probe_u2", "user", "redacted-333333333333"),
    entry("GET", f"/websites/{OTHER_SITE}", body={"id": OTHER_SITE, "name": "probe site"},
          token="redacted-222222222222"),
    entry("GET", f"/websites/{OTHER_SITE}", 401, {"error": "Unauthorized"}, token="redacted-333333333333"),
    entry("GET", f"/websites/{OTHER_SITE}/stats", body={"pageviews": 9}, token="redacted-222222222222",
          query="startAt=1&endAt=2&unit=day"),
    entry("GET", f"/websites/{UNKNOWN}", 404, {"error": "Not found"}, token="redacted-222222222222"),
)


def test_query_key_hides_time_values_but_not_their_presence() -> None:
    assert query_key([("startAt", "1795045632804"), ("endAt", "1795653994197"), ("unit", "day")]) == \
        query_key([("unit", "day"), ("startAt", "1"), ("endAt", "1795000000000")])
    assert query_key([("unit", "day")]) != query_key([("startAt", "1"), ("unit", "day")])  # a missing range
    assert query_key([("at", "1795045632804")]) == (("at", "*"),)  # any epoch-ms value
    assert query_key([("type", "path")]) != query_key([("type", "url")])


def test_body_key_ignores_passwords_and_key_order() -> None:
    assert body_key(b'{"username": "u", "password": "s3cret-pass"}') == body_key('{"password":"***","username":"u"}')
    assert body_key(b"plain") == "plain"


def test_identities_come_from_the_recording_s_own_answers() -> None:
    identities, users = identities_of(RUN["log"]["entries"])
    assert identities == {"redacted-aaaaaaaaaaaa": "admin", "redacted-bbbbbbbbbbbb": "user",
                          "redacted-cccccccccccc": "view-only", "redacted-eeeeeeeeeeee": "share"}
    assert users == {"user": f"{PREFIX}user", "viewer": f"{PREFIX}viewer"}
    identities, _ = identities_of(EXPLORE["log"]["entries"])
    assert identities["redacted-222222222222"] == "user"  # the first regular user
    assert identities["redacted-333333333333"] == "user:probe_u2"  # another one is someone else


def test_recording_prefix_and_no_route_answer() -> None:
    rp = replay(RUN)
    assert rp.prefix == PREFIX
    missing = ask(rp, "GET", "/ucf-no-such-route-ab12")
    assert missing.status_code == 404 and "html" in missing.headers["content-type"]
    assert missing.headers[REPLAYED_HEADER] == "no-route"


def test_exact_match_is_first_in_first_out_then_reuses_the_last() -> None:
    rp = replay(RUN)
    answers = [ask(rp, "GET", f"/websites/{SITE}/stats", token="redacted-aaaaaaaaaaaa",
                   query={"startAt": str(n), "endAt": "1795653994197"}) for n in (1795000000000, 7, 8)]
    assert [a.json() for a in answers] == [{"pageviews": 1}, {"pageviews": 2}, {"pageviews": 2}]
    assert answers[0].headers[REPLAYED_HEADER] == "exact"
    missing_range = ask(rp, "GET", f"/websites/{SITE}/stats", token="redacted-aaaaaaaaaaaa")
    assert missing_range.status_code == 400


def test_identity_decides_between_entries_of_the_same_request() -> None:
    rp = replay(RUN)
    query = {"startAt": "1", "endAt": "2"}
    assert ask(rp, "GET", f"/websites/{SITE}/stats", token="redacted-cccccccccccc", query=query).status_code == 401
    assert ask(rp, "GET", f"/websites/{SITE}/stats", share="redacted-eeeeeeeeeeee", query=query).json() == \
        {"pageviews": 3}
    assert ask(rp, "GET", f"/websites/{SITE}/stats", query=query).status_code == 401
    unknown = ask(rp, "GET", f"/websites/{SITE}/stats", token="redacted-000000000000", query=query)
    assert unknown.status_code == 599 and NOT_RECORDED_HEADER in unknown.headers


def test_equal_bodies_are_preferred_within_a_key() -> None:
    rp = replay(RUN)
    viewer = ask(rp, "POST", "/auth/login", body={"username": f"{PREFIX}viewer", "password": "x" * 20})
    assert viewer.json()["token"] == "redacted-cccccccccccc"
    first = ask(rp, "POST", "/auth/login", body={"username": "someone-else", "password": "x"})
    assert first.json()["token"] == "redacted-aaaaaaaaaaaa"  # no equal body: the first unused entry


def test_bodies_need_the_same_fields() -> None:
    user = "redacted-bbbbbbbbbbbb"
    rp = replay(har(
        login(f"{PREFIX}user", "user", user),
        entry("POST", "/websites", 400, {"error": ["domain: Required"]}, token=user, sent={"name": "x"}),
        entry("POST", "/websites", body={"id": SITE}, token=user, sent={"name": "t-1", "domain": "t-1.example"})))
    target = ask(rp, "POST", "/websites", token=user, body={"name": "t-2", "domain": "t-2.example"})
    assert target.json() == {"id": SITE}  # a throwaway target's random name: the creation, not the refusal
    assert ask(rp, "POST", "/websites", token=user, body={"name": "y"}).status_code == 400
    assert ask(rp, "POST", "/websites", token=user, body={"domain": "d"}).status_code == 599  # other fields


def test_own_recordings_answer_from_the_item_s_entries() -> None:
    admin = "redacted-aaaaaaaaaaaa"
    recorded = har(
        entry("GET", f"/websites/{SITE}", body={"id": SITE, "name": "a"}, token=admin, item="websites/get[admin-a]"),
        entry("GET", f"/websites/{SITE}", body={"id": SITE, "name": "b"}, token=admin, item="websites/get[admin-b]"),
        entry("GET", f"/websites/{UNKNOWN}", 404, {"error": "Not found"}, token=admin, item="websites/get[admin-b]"))
    rp = replay(recorded)
    assert ask(rp, "GET", f"/websites/{SITE}", token=admin, item="websites/get[admin-b]").json()["name"] == "b"
    assert ask(rp, "GET", f"/websites/{SITE}", token=admin, item="websites/get[admin-a]").json()["name"] == "a"
    # a fresh random id in the same item: its template (an unknown id both times)
    probe = ask(rp, "GET", "/websites/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", token=admin,
                item="websites/get[admin-b]")
    assert probe.status_code == 404 and probe.headers[REPLAYED_HEADER] == "template"


def test_second_recording_answers_by_template_and_role() -> None:
    rp = replay(RUN, EXPLORE)
    stats = ask(rp, "GET", f"/websites/{SITE}/stats", token="redacted-bbbbbbbbbbbb",
                query={"startAt": "5", "endAt": "6", "unit": "day"})
    assert stats.json() == {"pageviews": 9} and stats.headers[REPLAYED_HEADER] == "template"
    # the run's own entry wins where it has one
    assert ask(rp, "GET", f"/websites/{SITE}", token="redacted-bbbbbbbbbbbb").json()["name"] == f"{PREFIX}site"
    # roles that explore does not have for this route: not recorded
    assert ask(rp, "GET", f"/websites/{SITE}/stats", token="redacted-aaaaaaaaaaaa",
               query={"startAt": "5", "endAt": "6", "unit": "day"}).status_code == 599


def test_an_unknown_id_is_not_answered_with_another_object_s_success() -> None:
    rp = replay(RUN, EXPLORE)
    unknown = ask(rp, "GET", "/websites/3f1c2a9e-7b4d-4e8a-9c61-5d2e8f0a7b13", token="redacted-bbbbbbbbbbbb")
    assert unknown.status_code == 404  # explore's unknown id, not its website
    assert rp.shape(f"/websites/{OTHER_SITE}", "user") == "/websites/{}"
    assert rp.shape(f"/websites/{UNKNOWN}", "user") == "/websites/{?}"
    assert rp.shape(f"/websites/{UNKNOWN}", "anonymous") == "/websites/{}"  # refused before any lookup
    assert rp.shape("/teams/join", "user") == "/teams/join"  # literal segments win


def test_har_recorder_redacts_with_stable_stand_ins(tmp_path: Path) -> None:
    redactor = Redactor()
    token, password, share_id = "eyJhbGciOiJIUzI1NiJ9.real-token", "s3cret-password", "0123456789abcdef"
    redactor.add(password)
    redactor.add(token, stand_in=True)
    redactor.add(share_id, stand_in=True)
    recorder = HarRecorder(tmp_path / "run.har.gz", "http://umami.test/api")
    base = "http://umami.test/api"

    def exchange(method: str, url: str, status: int, answer: bytes, *, headers: dict[str, str] | None = None,
                 body: Any = None, ctype: str = "application/json") -> None:
        request = httpx.Request(method, f"{base}{url}", headers=headers, json=body)
        recorder.add(request, httpx.Response(status, content=answer, headers={"content-type": ctype}), 0.01)

    with exchange_item("setup"):
        exchange("POST", "/auth/login", 200, json.dumps({"token": token, "user": {"role": "admin"}}).encode(),
                 body={"username": "admin", "password": password})
        exchange("POST", "/send", 200, b"eyJ.session-cache.jwt", ctype="text/plain")
        exchange("POST", "/send", 200, b'{"cache":"eyJ.cache","sessionId":"s"}', body={"type": "event"})
    with exchange_item("share/get[anonymous-default]"):
        exchange("GET", f"/share/{share_id}", 200, b"{}", headers={"Authorization": f"Bearer {token}",
                                                                  "x-umami-cache": "eyJ.cache"})
    path = recorder.write(redactor)
    raw = gzip.decompress(path.read_bytes()).decode()
    for secret in (token, password, share_id, "eyJ.session-cache.jwt", "eyJ.cache"):
        assert secret not in raw
    log = load_har(path)["log"]
    assert log["version"] == "1.2" and log["_apiBase"] == "/api"
    entries = log["entries"]
    assert [e["_item"] for e in entries] == ["setup", "setup", "setup", "share/get[anonymous-default]"]
    stand_in = json.loads(entries[0]["response"]["content"]["text"])["token"]
    assert re.fullmatch(r"redacted-[0-9a-f]{12}", stand_in)
    assert {"name": "authorization", "value": f"Bearer {stand_in}"} in entries[3]["request"]["headers"]
    assert json.loads(entries[0]["request"]["postData"]["text"])["password"] == "***"
    assert entries[1]["response"]["content"]["text"] == "***"
    assert json.loads(entries[2]["response"]["content"]["text"])["cache"] == "***"
    assert entries[3]["request"]["url"] == f"{base}/share/{redactor.stand_in(share_id)}"
    # and the recording replays: the login's stand-in is the admin
    rp = Replay([Recording.load(path)], Templates(["/share/{shareId}"]), api_base="/api")
    assert rp.identities == {stand_in: "admin"}
    again = ask(rp, "GET", f"/share/{redactor.stand_in(share_id)}", token=stand_in,
                item="share/get[anonymous-default]")
    assert again.status_code == 200 and again.headers[REPLAYED_HEADER] == "exact"


@pytest.mark.parametrize("name", sorted(p.name for p in RECORDINGS.glob("*.har.gz")))
def test_no_recording_holds_a_team_s_join_code(name: str) -> None:
    """A join code lets whoever holds it join the team: every code a recorded team answered is a stand-in
    (`redacted-...`), also in the requests that send it (the recordings made before join codes became credentials
    had theirs replaced in the vendored copies). Codes made up by a case (no team's) may stay."""
    har = json.loads(gzip.decompress(shared_recording(name).read_bytes()))
    bodies = [e["response"].get("content", {}).get("text") or "" for e in har["log"]["entries"]]
    answered = {code for body in bodies for code in re.findall(r'"accessCode":\s*"([^"]*)"', body)}
    assert answered and all(code.startswith("redacted-") for code in answered), sorted(answered)


def _items(results: dict[str, Any]) -> dict[str, tuple]:
    return {i["id"]: (i["outcome"], tuple((f["class"], f["json_path"], json.dumps(f["expected"]),
                                          json.dumps(f["actual"])) for f in i["findings"]))
            for i in results["items"]}


def test_recheck_of_the_shared_3_1_0_recordings(tmp_path: Path) -> None:
    run_file, explore = shared_recording("umami-3.1.0-run.har.gz"), shared_recording("umami-3.1.0-explore.har.gz")
    proc, results = recheck(tmp_path, run_file, explore)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]  # every finding a reviewed defect
    assert results["server"]["version_range"] == ">=3.1.0,<3.2", results["server"]
    assert results["server"]["url"] == f"recording: {run_file.name} + {explore.name}"
    assert results["prefix"] == PREFIX and results["residue"] == []
    # Exact counts, so that a change of specs or engine shows; no known difference stale.
    assert results["summary"]["outcomes"] == {"known": 43, "passed": 607, "passed-no-schema": 2, "skipped": 1059}
    skips = Counter(i["skip"]["code"] for i in results["items"] if i["outcome"] == "skipped")
    assert skips["not-recorded"] == 339, skips
    assert results["summary"]["findings"] == {} and results["stale_known_differences"] == []
    assert (results["summary"]["known"], results["summary"]["security"]) == (47, 0)
    # No route of 3.1.0 is skipped as "not on this server": where a 1.x/2.x spec of the same route is, another
    # endpoint of that route ran.
    inventory = bundled_specs().inventory
    ran = {(i["method"], template_key(i["path"])) for i in results["items"] if i["outcome"] != "skipped"}
    wrongly = [i["id"] for i in results["items"] if (i["reason"] or "").startswith("not on this server: applies")
               and "3.1.0" in inventory.releases_with(i["method"], i["path"])
               and (i["method"], template_key(i["path"])) not in ran]
    assert wrongly == []
    assert (tmp_path / "junit.xml").exists() and (tmp_path / "report.html").exists()


def test_recheck_of_the_shared_2_20_2_recording(tmp_path: Path, recheck_2_20_2: tuple[Any, Path]) -> None:
    """The 2.11-2.20 specs hold on a real 2.20.2: every finding of its recorded run is a reviewed defect, with
    the version the recording tells (the shared recheck) and with the version given."""
    detected, reports = recheck_2_20_2
    given = recheck(tmp_path, shared_recording("umami-2.20.2-run.har.gz"), args=("--umami-version", "2.20.2"))
    for proc, results in ((detected, json.loads((reports / "results.json").read_text())), given):
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
        if proc is detected:
            assert results["server"]["version_range"] == ">=2.18.0,<3.0.0", results["server"]
        else:
            assert results["server"]["version"] == "2.20.2", results["server"]
        assert results["summary"]["findings"] == {} and results["stale_known_differences"] == []
        assert results["summary"]["outcomes"] == {"known": 87, "passed": 302, "passed-no-schema": 239,
                                                  "skipped": 1083}
        assert (results["summary"]["known"], results["summary"]["security"]) == (107, 2)


# The full recordings (`run --discover --record`, every role, the share token with its context header): every
# finding a reviewed defect, no known difference stale, and no item skipped but for the version (the recording
# answers every request of every item that applies). Exact counts, so that a change of specs or engine shows.
# `passed` only where the answer's own schema ran: a case schema alone (e.g. "a non-empty list") is no schema check.
FULL = {
    "umami-3.1.0-full.har.gz": (">=3.1.0,<3.2", {"known": 77, "passed": 912, "passed-no-schema": 2,
                                                 "skipped": 720}, 82, 1),
    "umami-2.10.0-full.har.gz": ("==2.10.0", {"known": 105, "passed": 364, "passed-no-schema": 208,
                                              "skipped": 1034}, 125, 2),
    "umami-2.20.2-full.har.gz": (">=2.19.0,<3.0.0",
                                 {"known": 101, "passed": 384, "passed-no-schema": 304, "skipped": 922}, 106, 2),
}


@pytest.mark.parametrize("name", sorted(FULL))
def test_recheck_of_the_full_recordings(full_recheck, name: str) -> None:
    version_range, outcomes, known, security = FULL[name]
    proc, results, _ = full_recheck(name)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert results["server"]["version_range"] == version_range, results["server"]
    assert results["summary"]["findings"] == {} and results["stale_known_differences"] == []
    assert results["summary"]["outcomes"] == outcomes
    assert (results["summary"]["known"], results["summary"]["security"]) == (known, security)
    assert all(i["kind"] == "spec" for i in results["items"])
    skips = Counter(i["skip"]["code"] for i in results["items"] if i["outcome"] == "skipped")
    # 2.10.0 cannot delete websites: a website's creation is not checked there (the run reuses a kept set)
    allowed = {"out-of-range", "case-out-of-range"} | ({"undeletable"} if name.startswith("umami-2.10") else set())
    assert set(skips) <= allowed and skips.total() == outcomes["skipped"], skips
    # The endpoint views: those of this release (an item not out of range), not the other releases' endpoints.
    here = {i["endpoint"] for i in results["items"]
            if i["outcome"] != "skipped" or i["skip"]["code"] not in ("out-of-range", "case-out-of-range")}
    assert set(results["endpoints"]) == here < {i["endpoint"] for i in results["items"]}
    # The admin lists of 3.x: no 200 schema, only the case's "a non-empty list": not a schema check.
    if name.startswith("umami-3.1.0"):
        users = {i["id"]: (i["outcome"], i["schema_checked"]) for i in results["items"]
                 if i["endpoint"] == "admin/users" and i["outcome"] != "skipped"}
        assert users["admin/users[admin-first-page]"] == ("passed-no-schema", False), users


def test_the_share_token_exposure_of_3_1_0_is_a_known_security_finding(tmp_path: Path) -> None:
    """3.1.0's POST /auth/verify answers a website's share token (with its context header) every team on the
    server: a refused role given other principals' objects is security, first, not auth-looser."""
    _, results = recheck(tmp_path, shared_recording("umami-3.1.0-full.har.gz"), args=("-k", "auth"))
    [item] = [i for i in results["items"] if i["id"] == "auth/verify[share-default]"]
    assert [(f["class"], f["expected"], f["actual"]) for f in item["findings"]] == [("security", 401, 200)]
    assert item["outcome"] == "known" and "every team on the server" in item["findings"][0]["known"]
    assert "$.teams[*]" in item["findings"][0]["message"]


def test_record_then_recheck_gives_the_same_results(umami: server.ServerInfo, tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)  # the same specs for both, whatever else changes meanwhile
    recording = tmp_path / "run.har.gz"
    with RecordingProxy(umami.url) as proxy:
        live = run_cli("run", "--url", proxy.url, "--specs", str(specs), "--out", str(tmp_path / "live"),
                       "--record", str(recording), "-q", "--no-docs", env=user_env(umami))
    assert live.returncode in (0, 1), live.stdout[-3000:] + live.stderr[-2000:]  # drift is not the point here
    replayed = run_cli("recheck", str(recording), "--specs", str(specs), "--out", str(tmp_path / "recheck"),
                       "-q", "--no-docs")
    assert replayed.returncode == live.returncode, replayed.stdout[-3000:] + replayed.stderr[-2000:]
    before = json.loads((tmp_path / "live" / "results.json").read_text())
    after = json.loads((tmp_path / "recheck" / "results.json").read_text())
    assert after["server"]["version"] == before["server"]["version"] == server.UMAMI_VERSION
    assert after["prefix"] == before["prefix"]
    assert _items(after) == _items(before)
    assert sum(i["outcome"] != "skipped" for i in after["items"]) >= 500
    # no secret of the run in the recording: passwords, and every token the server handed out
    text = gzip.decompress(recording.read_bytes()).decode()
    tokens = {m for s in proxy.seen if s.status == 200 and s.path.startswith(("/api/auth/login", "/api/share/"))
              for m in re.findall(r'"token":"([^"]+)"', s.response_body.decode())}
    assert len(tokens) >= 4, "admin, user, viewer and share tokens were seen"
    for secret in tokens | {umami.user_password, umami.viewer_password}:
        assert secret not in text, "a secret leaked into the recording"
    entries = json.loads(text)["log"]["entries"]
    assert {e["_item"] for e in entries} >= {"setup", "cleanup", "me/get[admin-default]"}
    logins = [json.loads(e["response"]["content"]["text"]) for e in entries
              if e["request"]["url"].endswith("/api/auth/login") and e["response"]["status"] == 200]
    assert all(re.fullmatch(r"redacted-[0-9a-f]{12}", b["token"]) for b in logins)
    assert len({b["token"] for b in logins}) >= 3


def test_recheck_tells_2_20_2_from_its_recording_alone(tmp_path: Path) -> None:
    _, results = recheck(tmp_path, shared_recording("umami-2.20.2-run.har.gz"), args=("-m", "me"))
    server_info = results["server"]
    assert server_info["version_range"] == ">=2.18.0,<3.0.0", server_info

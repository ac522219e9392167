"""Route evidence (results.json `routes`): what GETs to every route template answered, from the discovery
probes of a run or from the recordings of a recheck."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from conformance import server
from conformance.client import Target, UmamiClient
from conformance.discovery import Prober, route_templates, routes_list
from conformance.errors import Unavailable

from conformance.replay import Recording, Replay, Templates
from umami_results import SCHEMA_PATH
from conformance.versions import template_key

from conftest import bundled_specs, recheck, run_cli, shared_recording, user_env

ROUTE_SCHEMA = json.loads(SCHEMA_PATH.read_text())["properties"]["routes"]
NEXT_404 = {"content-type": "text/html; charset=utf-8"}


def _fake_client(answers: dict[str, tuple[int, dict[str, str]]], sent: list[str]) -> UmamiClient:
    """A client whose server knows the paths of `answers`; any other path gets Next.js's 404 page."""
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        status, headers = next(((s, h) for p, (s, h) in answers.items() if request.url.path.startswith(f"/api{p}")),
                               (404, NEXT_404))
        return httpx.Response(status, headers=headers, content=b"{}" if "json" in str(headers) else b"<html>")
    client = UmamiClient(Target("http://umami.test", retries=1, retry_wait=0))
    client.http = httpx.Client(base_url=client.target.api_base, transport=httpx.MockTransport(handle))
    return client


def test_prober_remembers_each_template_once_with_its_presence() -> None:
    sent: list[str] = []
    client = _fake_client({"/version": (200, {"content-type": "application/json"}),
                           "/websites/w1/reset": (405, {"content-type": "application/json"}),
                           "/broken": (500, {"content-type": "application/json; charset=utf-8"}),
                           "/busy": (429, {}),
                           "/reports/funnel": (405, {"content-type": "application/json"}),
                           "/reports/": (400, {"content-type": "application/json"})}, sent)
    prober = Prober(client, None, ["/reports/{reportId}", "/reports/goal", "/reports/funnel"])
    context = {"website": {"id": "w1"}}
    # A literal path answered like any word in its place reached the parameterized route: no route of its own.
    assert prober.exists("/reports/goal", context) is None
    assert sent[-2] == "GET /api/reports/goal" and sent[-1].startswith("GET /api/reports/ucf-no-such-route-")
    assert prober.exists("/reports/funnel", context) is not None  # 405: answered otherwise than any word
    assert prober.exists("/version", context) is not None
    assert prober.exists("/websites/{websiteId}/reset", context) is not None  # 405: a route for other methods
    assert prober.exists("/boards", context) is None
    assert prober.exists("/broken", context) is not None
    prober.exists("/websites/{id}/reset", context)  # the same template: the first spelling and answer stay
    with pytest.raises(Unavailable):
        prober.exists("/busy", context)  # 429 after the retries: no evidence
    routes = prober.routes()
    assert routes == [
        {"method": "GET", "path": "/boards", "status": 404, "content_type": "text/html", "presence": "absent",
         "source": "probe"},
        {"method": "GET", "path": "/broken", "status": 500, "content_type": "application/json",
         "presence": "error", "source": "probe"},
        {"method": "GET", "path": "/reports/funnel", "status": 405, "content_type": "application/json",
         "presence": "present", "source": "probe"},
        {"method": "GET", "path": "/reports/goal", "status": 400, "content_type": "application/json",
         "presence": "absent", "source": "probe"},
        {"method": "GET", "path": "/version", "status": 200, "content_type": "application/json",
         "presence": "present", "source": "probe"},
        {"method": "GET", "path": "/websites/{websiteId}/reset", "status": 405, "content_type": "application/json",
         "presence": "present", "source": "probe"}]
    Draft202012Validator(ROUTE_SCHEMA).validate(routes)
    assert {s.split()[0] for s in sent} == {"GET"}
    assert "GET /api/websites/w1/reset" in sent  # {websiteId} is the run's website


def test_route_templates_cover_specs_candidates_and_inventory_once() -> None:
    specs = bundled_specs()
    templates = route_templates(specs)
    keys = [template_key(t) for t in templates]
    assert len(keys) == len(set(keys)) and templates == sorted(templates)
    assert set(keys) >= {template_key(e.path) for e in specs.endpoints}
    assert set(keys) >= {template_key(p) for p in specs.candidates}
    assert specs.inventory is not None and set(keys) >= {template_key(t) for t in specs.inventory.templates}
    # Every route path of the inventory is a discovery candidate, so installed copies probe them too.
    assert {template_key(t) for t in specs.inventory.templates} <= {template_key(p) for p in specs.candidates}
    assert "/websites/{websiteId}/stats" in templates and "/websites/{id}/stats" not in templates


def _recorded_routes(*names: str) -> dict[str, dict]:
    specs = bundled_specs()
    replay = Replay([Recording.load(shared_recording(n)) for n in names], Templates([e.path for e in specs.endpoints]))
    routes = routes_list(replay.routes(Templates(route_templates(specs))))
    Draft202012Validator(ROUTE_SCHEMA).validate(routes)
    return {r["path"]: r for r in routes}


def test_recorded_gets_tell_the_routes_of_3_1_0() -> None:
    routes = _recorded_routes("umami-3.1.0-run.har.gz")
    assert routes["/version"] == {"method": "GET", "path": "/version", "status": 404, "content_type": "text/html",
                                  "presence": "absent", "source": "recording"}  # gone since 2.18
    assert routes["/heartbeat"]["presence"] == "present" and routes["/heartbeat"]["status"] == 200
    assert routes["/websites/{websiteId}/stats"]["presence"] == "present"
    assert list(routes) == sorted(routes) and {r["source"] for r in routes.values()} == {"recording"}
    counts = Counter(r["presence"] for r in routes.values())
    assert counts == {"present": 65, "absent": 40}, counts


def test_a_present_answer_outweighs_a_no_route_one_for_the_same_template(tmp_path: Path) -> None:
    """Of several recorded GETs of one template, a present answer wins over the no-route page; transient
    answers are no evidence at all, nor a 4xx to a literal path that a parameterized route can answer."""
    def entry(path: str, status: int, ctype: str) -> dict:
        return {"request": {"method": "GET", "url": f"http://u.test/api{path}", "headers": []},
                "response": {"status": status, "headers": [{"name": "content-type", "value": ctype}],
                             "content": {"text": "{}" if "json" in ctype else "<html>"}}}
    har = {"log": {"entries": [entry("/teams/t1", 404, "text/html"), entry("/teams/t2", 401, "application/json"),
                               entry("/me", 503, "text/html"), entry("/users/u1", 500, "application/json"),
                               entry("/users/u2", 404, "text/html"), entry("/websites/charts", 401, "application/json"),
                               entry("/reports/goal", 200, "application/json")]}}
    path = tmp_path / "mixed.har.gz"
    path.write_bytes(gzip.compress(json.dumps(har).encode()))
    replay = Replay([Recording.load(path)], Templates([]))
    templates = ["/teams/{teamId}", "/users/{userId}", "/me", "/websites/{websiteId}", "/websites/charts",
                 "/reports/{reportId}", "/reports/goal"]
    routes = {r["path"]: r for r in routes_list(replay.routes(Templates(templates)))}
    assert routes["/teams/{teamId}"]["presence"] == "present" and routes["/teams/{teamId}"]["status"] == 401
    assert routes["/users/{userId}"]["presence"] == "error"
    assert "/me" not in routes
    assert "/websites/charts" not in routes  # the 401 may be /websites/{websiteId}'s answer to the id `charts`
    assert routes["/reports/goal"]["presence"] == "present"


def test_recheck_writes_the_recorded_routes(tmp_path: Path) -> None:
    proc, results = recheck(tmp_path, shared_recording("umami-3.1.0-run.har.gz"), args=("-m", "me"))
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    routes = {r["path"]: r for r in results["routes"]}
    assert routes["/version"]["presence"] == "absent" and routes["/version"]["status"] == 404
    assert routes["/heartbeat"]["presence"] == "present" and routes["/heartbeat"]["status"] == 200
    assert routes["/websites/{websiteId}/stats"]["presence"] == "present"


def test_run_with_discover_records_the_routes_of_2_10_0_with_gets_only(umami: server.ServerInfo,
                                                                        tmp_path: Path) -> None:
    recording = tmp_path / "run.har.gz"
    proc = run_cli("run", "--url", umami.url, "--out", str(tmp_path), "--no-docs", "-q", "--discover",
                   "-m", "discovery", "--record", str(recording), env=user_env(umami))
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]  # undocumented routes: findings
    results = json.loads((tmp_path / "results.json").read_text())
    item = next(i for i in results["items"] if i["id"] == "discovery/routes[all]")
    assert item["outcome"] == "passed-no-schema", item
    routes = {r["path"]: r for r in results["routes"]}
    assert routes["/version"]["presence"] == "present" and routes["/version"]["status"] == 200
    assert routes["/config"]["presence"] == "present"
    assert routes["/boards"]["presence"] == "absent"
    # 3.x-only literal paths that 2.10.0's parameterized routes answer are no routes of their own.
    assert routes["/reports/attribution"]["presence"] == routes["/realtime/init"]["presence"] == "absent"
    assert routes["/reports/funnel"]["presence"] == routes["/teams/join"]["presence"] == "present"  # POST routes
    assert routes["/websites/{websiteId}/sessions/{sessionId}/activity"]["presence"] == "absent"
    assert routes["/websites/{websiteId}/stats"]["presence"] == "present"
    assert {r["source"] for r in routes.values()} == {"probe"}
    assert len(routes) == len(route_templates(bundled_specs()))  # every template answered, none transient
    # Every route 2.10.0 has is described (GET /version since its spec, server/version): no undocumented one.
    assert routes["/version"]["presence"] == "present" and not [
        f for i in results["items"] for f in i["findings"] if f["class"] == "undocumented-endpoint"]
    entries = json.loads(gzip.decompress(recording.read_bytes()))["log"]["entries"]
    probes = [e["request"]["method"] for e in entries if (e.get("_item") or "").startswith("discovery/")]
    assert len(probes) >= len(routes) and set(probes) == {"GET"}

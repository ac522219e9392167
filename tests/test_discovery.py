"""Discovery (conformance/discovery.py): which candidate paths no spec describes, how their parameters are
filled, and how the Prober tells a route from "no such route" (httpx.MockTransport, no server)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import httpx

from conformance.client import Target, UmamiClient
from conformance.discovery import Prober, fill, undescribed

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_undescribed_compares_path_templates_whatever_the_parameter_names() -> None:
    endpoints = [SimpleNamespace(path="/websites/{websiteId}"), SimpleNamespace(path="/websites/{websiteId}/stats/"),
                 SimpleNamespace(path="/me")]
    candidates = ["/websites/{id}", "/websites/{x}/stats", "/websites/{id}/metrics", "/me/teams", "/me", "/admin"]
    assert undescribed(candidates, endpoints) == ["/websites/{id}/metrics", "/me/teams", "/admin"]
    assert undescribed([], endpoints) == [] and undescribed(["/me"], []) == ["/me"]


def test_fill_uses_the_sandbox_website_and_fresh_ids_for_everything_else() -> None:
    context = {"website": {"id": "site-1"}}
    assert fill("/websites/{websiteId}/stats", context) == "/websites/site-1/stats"
    filled = fill("/teams/{teamId}/users/{userId}", context)
    ids = UUID.findall(filled)
    assert len(ids) == 2 and ids[0] != ids[1] and filled == f"/teams/{ids[0]}/users/{ids[1]}"
    # No sandbox website (a read-only run): a random id there too, never "None".
    assert UUID.fullmatch(fill("/websites/{websiteId}", {"website": None}).split("/")[2])
    assert fill("/me", {}) == "/me"


def _prober(routes: dict[str, tuple[int, str]], nested_missing: tuple[int, str] = (404, "application/json"),
            seen: list[str] | None = None) -> Prober:
    """A server that answers `routes` (path -> status, media type), 404 HTML for an unknown top-level path and
    `nested_missing` for an unknown path under a website (Next.js answers those differently)."""
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if seen is not None:
            seen.append(path)
        if path in routes:
            status, ctype = routes[path]
        elif path.startswith("/api/websites/"):
            status, ctype = nested_missing
        else:
            status, ctype = 404, "text/html; charset=utf-8"
        body = '{"paths": {"/api/secret": {}, "/api/me": {}}}' if path.endswith("openapi.json") else "x"
        return httpx.Response(status, text=body, headers={"content-type": ctype})

    client = UmamiClient(Target(url="http://umami.test", username="admin", password="pa55word-long"))
    client.http = httpx.Client(base_url=client.target.api_base, transport=httpx.MockTransport(handler))
    return Prober(client, None)


def test_a_route_exists_when_its_answer_differs_from_no_such_route() -> None:
    seen: list[str] = []
    prober = _prober({"/api/admin/users": (401, "application/json"), "/api/config": (405, "text/plain"),
                      "/api/html-page": (404, "text/html")}, seen=seen)
    assert len(seen) == 2 and all("/ucf-no-such-route-" in p for p in seen)  # the two baselines
    assert prober.exists("/admin/users", {}).response.status_code == 401
    assert prober.exists("/config", {}).response.status_code == 405  # a 405 is a route without GET
    assert prober.exists("/html-page", {}) is None  # charset aside, the same as no route at all
    assert prober.exists("/nothing-here", {}) is None
    assert prober.exists("/websites/5d6c1a52-1f0e-4a43-8d7f-3f4f8c2b1a10/nothing", {}) is None  # nested "no route"


def test_the_published_openapi_paths_without_api() -> None:
    none = _prober({})
    assert none.published_contract() is None and none.published_paths() == []
    for where in ("/api/openapi.json", "/openapi.json"):  # under the API, or at the server's root
        assert _prober({where: (200, "application/json")}).published_paths() == ["/me", "/secret"]
    assert _prober({"/openapi.json": (404, "application/json")}).published_contract() is None

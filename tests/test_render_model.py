"""The docs' render model (docgen/render.py build_model), from a small hand-made results dict: no server."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.describe import endpoint_views, vocabulary

from docgen.legend import SYMBOL, Vocabulary, worst
from docgen.render import build_model, normalise
from conftest import bundled_specs

WORDS = vocabulary()


def _finding(cls: str, json_path: str = "$", known: str | None = None) -> dict[str, Any]:
    return {"class": cls, "json_path": json_path, "known": known, "expected": 1, "actual": 2}


def _item(endpoint: str, role: str, case: str, outcome: str, *findings: dict[str, Any],
          path: str = "/x") -> dict[str, Any]:
    return {"id": f"{endpoint}[{role}-{case}]", "endpoint": endpoint, "area": endpoint.split("/")[0],
            "method": "GET", "path": path, "source": f"specs/{endpoint.split('/')[0]}.yaml:1", "operation_id": None,
            "role": role, "case": case, "outcome": outcome, "findings": list(findings)}


@pytest.mark.parametrize("outcome, findings, key", [
    ("passed", [], "passed"), ("passed-no-schema", [], "passed-no-schema"), ("known", [], "known"),
    ("unavailable", [], "unavailable"), ("skipped", [], "skipped"), ("error", [], "error"), (None, [], "error"),
    ("failed", [_finding("field-added"), _finding("security")], "security"),
    ("failed", [_finding("status-changed"), _finding("endpoint-missing")], "removed"),
    ("failed", [_finding("status-changed"), _finding("auth-stricter")], "status"),
    ("failed", [_finding("status-changed"), _finding("type-changed")], "structure"),
    ("failed", [_finding("auth-looser")], "structure"),  # auth looser than the spec is no mere status
    ("failed", [_finding("security", known="reviewed"), _finding("status-changed")], "status"),  # known: not shown
])
def test_an_item_s_legend_key(outcome: str, findings: list[dict[str, Any]], key: str) -> None:
    item = _item("me/get", "admin", "default", outcome, *findings)
    assert Vocabulary({"vocabulary": WORDS}).item_key(item) == key


def test_worst_is_the_most_severe_key_and_nothing_is_skipped() -> None:
    assert worst(["passed", "known", "structure", "unavailable"]) == "structure"
    assert worst(["skipped", "passed"]) == "passed"  # a skipped role does not hide a checked one
    assert worst([]) == "skipped"


RESULTS = {"started": "2026-11-25T23:46:25Z", "server": {"version": "2.10.0"}, "vocabulary": WORDS,
           "endpoints": {}, "items": [
    _item("websites/list", "user", "default", "passed", path="/websites"),
    _item("websites/list", "admin", "paged", "failed", _finding("field-added", "$.data[*].x"),
          _finding("security", "$.data[*].password", known="reviewed"), path="/websites"),
    _item("websites/list", "admin", "default", "known", path="/websites"),
    _item("websites/list", "anonymous", "default", "skipped", path="/websites"),
    _item("me/get", "view-only", "default", "failed", _finding("security", "$.password"), path="/me"),
    _item("me/get", "admin", "default", "passed", path="/me"),
]}


def test_areas_and_endpoints_with_one_cell_per_role() -> None:
    model = build_model(RESULTS)
    assert list(model["areas"]) == ["me", "websites"] and model["date"] == "2026-11-25"
    assert model["roles"] == ["admin", "user", "view-only", "anonymous"]  # the fixed role order, only those seen
    websites = model["areas"]["websites"]["endpoints"]["websites/list"]
    assert (websites["slug"], websites["method"], websites["path"]) == ("list", "GET", "/websites")
    assert websites["roles"] == {"admin": SYMBOL["structure"], "user": SYMBOL["passed"],
                                 "anonymous": SYMBOL["skipped"]}
    assert websites["status"] == SYMBOL["structure"]
    assert model["areas"]["me"]["endpoints"]["me/get"]["status"] == SYMBOL["security"]
    # Items by role order then case; findings most severe first.
    assert [(i["role"], i["case"]) for i in websites["items"]] == [
        ("admin", "default"), ("admin", "paged"), ("user", "default"), ("anonymous", "default")]
    assert [f["class"] for _, f in websites["findings"]] == ["security", "field-added"]
    assert websites["spec"] is None and websites["history"] is None  # no endpoint views, no history given


def test_security_findings_are_listed_across_areas_known_ones_too() -> None:
    security = build_model(RESULTS)["security"]
    assert [(i["endpoint"], i["role"], f["json_path"]) for i, f in security] == [
        ("me/get", "view-only", "$.password"), ("websites/list", "admin", "$.data[*].password")]


def test_the_version_grid_comes_from_the_history() -> None:
    history = [
        {"started": "2026-01-01T00:00:00Z", "version": "3.1.0",
         "items": {"me/get[admin-default]": ["me/get", "passed", 200, None]}},
        {"started": "2026-01-02T00:00:00Z", "version": "2.10.0",
         "items": {"me/get[admin-default]": ["me/get", "status", 500, None],
                   "me/get[user-default]": ["me/get", "passed", 200, None],
                   "me/teams[admin-default]": ["me/teams", "known", 500, None]}},
    ]
    model = build_model(RESULTS, history=history)
    assert model["versions"] == ["2.10.0", "3.1.0"]
    assert model["grid"] == {"me/get": {"2.10.0": SYMBOL["status"], "3.1.0": SYMBOL["passed"]},
                             "me/teams": {"2.10.0": SYMBOL["known"]}}
    assert model["areas"]["me"]["endpoints"]["me/get"]["history"].first_seen == "2026-01-01"


def test_the_spec_view_of_an_endpoint() -> None:
    """The runner describes the endpoint in results.json (conformance/describe.py); the docs show it as it is."""
    specs = bundled_specs()
    me = next(e for e in specs.endpoints if e.id == "me/get")
    results = {**RESULTS, "items": [_item("me/get", "admin", "default", "passed", path=me.path)],
               "endpoints": endpoint_views(specs, {"me/get"}, "2.10.0")}
    view = build_model(results)["areas"]["me"]["endpoints"]["me/get"]["spec"]
    assert view["schema_status"] == 200 and view["fields"][0]["path"] == "$"
    assert [a["role"] for a in view["auth"]] == [r for r in ("admin", "user", "view-only", "share", "anonymous")
                                                 if r in me.auth]
    assert {"$.id", "$.username"} <= {f["path"] for f in view["fields"]}, view["fields"]


def test_examples_lose_ids_times_run_prefixes_and_traffic_counts() -> None:
    example = {"id": "e46d4189-ebdf-4687-bfb8-d77ec38eadd4", "createdAt": "2026-11-25T23:46:25.123Z",
               "name": "ucf-20261125t234625-4431-site", "list": ["2026-01-01T00:00:00Z"], "n": 3,
               "day": "2026-12-07 13:00:00", "date": "2026-12-07", "timestamp": 1796649325124, "at": 1796649325,
               "message": "endAt must be greater than 1796649325124", "pageviews": 35, "visitors": "14",
               "series": [{"x": "2026-12-07", "y": 40}], "comparison": {"bounces": 0}, "flag": True}
    prefix = Vocabulary({"vocabulary": WORDS}).prefix
    assert normalise(example, prefix) == {
        "id": "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "createdAt": "2000-01-01T00:00:00.000Z",
        "name": "ucf-<run>-site", "list": ["2000-01-01T00:00:00Z"], "n": 3, "day": "2000-01-01 00:00:00",
        "date": "2000-01-01", "timestamp": 946684800000, "at": 946684800,
        "message": "endAt must be greater than 946684800000", "pageviews": 1, "visitors": "1",
        "series": [{"x": "2000-01-01", "y": 1}], "comparison": {"bounces": 1}, "flag": True}

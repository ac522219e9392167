"""The upgrade diff's rules, pinned on small hand-made pairs of results (the live test diffs two real runs)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from docgen.diff import RULES, diff_results
from docgen.upgrade_report import diff_json, first_screen, render_diff

README = Path(__file__).resolve().parents[1] / "README.md"


def _results(*items: dict, routes: list[dict] | None = None, version: str = "x") -> dict:
    doc = {"server": {"version": version, "url": "http://umami"}, "started": "2026-01-01T00:00:00+00:00",
           "items": list(items)}
    if routes is not None:
        doc["routes"] = routes
    return doc


def _item(item_id: str, status: int | None, shape: dict | None = None, *, expected: int | None = None,
          media: str | None = "application/json", outcome: str = "passed", reason: str | None = None,
          method: str = "GET", path: str | None = None, example: object = "body") -> dict:
    endpoint = item_id.split("[")[0]
    return {"id": item_id, "endpoint": endpoint, "area": endpoint.split("/")[0], "method": method,
            "path": path or f"/{endpoint}", "role": item_id.split("[")[1].split("-")[0], "case": "c",
            "outcome": outcome, "reason": reason, "actual_status": status, "content_type": media,
            "expected_status": expected if expected is not None else (status or 200), "shape": shape,
            "example": example}


def _kinds(old: dict, new: dict) -> set[tuple[str, str, str, bool]]:
    return {(c.endpoint, c.kind, c.where, c.breaking) for c in diff_results(old, new).changes}


def _one(old_item: dict, new_item: dict) -> tuple[str, str, str]:
    changes = diff_results(_results(old_item), _results(new_item)).changes
    assert len(changes) == 1, changes
    return changes[0].kind, changes[0].old, changes[0].new


@pytest.mark.parametrize(("old", "new", "kind"), [
    (200, 401, "auth-stricter"), (200, 403, "auth-stricter"),
    (200, 400, "now-rejected"), (200, 404, "now-rejected"),
    (400, 500, "server-error"), (200, 500, "server-error"), (401, 502, "server-error"),
    (500, 400, "server-error-fixed"), (500, 200, "server-error-fixed"),
    (401, 200, "auth-looser"), (403, 200, "auth-looser"),
    (400, 200, "now-accepted"),
    (403, 401, "error-status-changed"), (400, 401, "error-status-changed"),
    (200, 201, "success-status-changed"),
])
def test_status_rules(old: int, new: int, kind: str) -> None:
    """Each status pair gets its kind; success → error and 4xx → 5xx are breaking."""
    found = _one(_item("w/get[admin-a]", old, media="text/plain"), _item("w/get[admin-a]", new, media="text/plain"))
    assert found == (kind, str(old), str(new))
    breaking = next(r.breaking for r in RULES if r.kind == kind)
    assert breaking == (kind in ("auth-stricter", "now-rejected", "server-error"))


def test_body_rules() -> None:
    old = _item("me/get[admin-d]", 200, {"$": "object", "$.a": "string", "$.b": "integer", "$.c": "string",
                                         "$.n": "integer", "$.u": "null", "$.o": "object", "$.o.x": "string"})
    new = _item("me/get[admin-d]", 200, {"$": "object", "$.a": "integer", "$.c": "null|string", "$.n": "number",
                                         "$.u": "string", "$.o": "array", "$.o[*]": "string",
                                         "$.d": "object", "$.d.e": "string"})
    assert _kinds(_results(old), _results(new)) == {
        ("me/get", "field-retyped", "$.a", True),
        ("me/get", "field-removed", "$.b", True),
        ("me/get", "field-retyped", "$.o", True),  # its children are not listed again
        ("me/get", "field-nullability", "$.u", False),  # null then a string: the data, not the API
        ("me/get", "field-added", "$.d", False),  # its children are not listed again
    }  # $.c only gained null and $.n integer → number: samples, no change


def test_a_known_difference_is_marked_on_its_side() -> None:
    old = _item("t/get[admin-bad-id]", 400, media=None)
    new = {**_item("t/get[admin-bad-id]", 500, media="text/plain", expected=400), "outcome": "known"}
    diff = diff_results(_results(old), _results(new))
    assert [(c.kind, c.old, c.new) for c in diff.changes] == [("server-error", "400", "500 📝")]
    assert "📝 marks the answer of a known difference" in render_diff(_results(old), _results(new), diff)


def test_a_success_in_another_media_type_breaks() -> None:
    found = diff_results(_results(_item("send/event[anonymous-p]", 200, media="text/plain")),
                         _results(_item("send/event[anonymous-p]", 200, media="application/json"))).changes
    assert [(c.kind, c.old, c.new, c.breaking) for c in found] == [
        ("content-type-changed", "text/plain", "application/json", True)]


def test_error_format_is_one_entry_per_endpoint_and_summarised_once() -> None:
    error = {"$": "object", "$.error": "object", "$.error.code": "string", "$.error.message": "string",
             "$.error.status": "integer", "$.error.issues": "array", "$.error.issues[*]": "object"}
    old = _results(*[_item(f"{ep}[{role}-x]", 401, media=None, expected=401)
                     for ep in ("w/get", "w/list") for role in ("anonymous", "share")])
    new = _results(*[_item(f"{ep}[{role}-x]", 401, error, expected=401)
                     for ep in ("w/get", "w/list") for role in ("anonymous", "share")])
    diff = diff_results(old, new)
    assert [(c.endpoint, c.kind, c.old, c.new, c.breaking) for c in diff.changes] == [
        (ep, "error-format-changed", "text without a content type",
         "application/json {error:{code,issues,message,status}}", False) for ep in ("w/get", "w/list")]
    text = render_diff(old, new, diff)
    assert text.count("## Error format") == 1
    assert "Error bodies changed on 2 endpoint(s); on 2 of them `text without a content type` → " in text


def test_skipped_items_are_not_compared_never_removed() -> None:
    """A skip on either side (out of range, not recorded, unavailable, missing) is no change."""
    old = _results(_item("a/get[admin-x]", 200, {"$": "object"}), _item("b/get[admin-x]", 200),
                   _item("c/get[admin-x]", 200), _item("d/get[admin-x]", 200))
    new = _results(_item("a/get[admin-x]", None, outcome="skipped", reason="not on this server: applies to <3"),
                   _item("b/get[admin-x]", None, outcome="skipped", reason="not in the recording"),
                   _item("c/get[admin-x]", None, outcome="unavailable", reason="HTTP 502"))
    diff = diff_results(old, new)
    assert diff.changes == [] and diff.compared == 0
    assert dict(diff.not_compared) == {"out of range in the new run": 1, "not recorded in the new run": 1,
                                       "unavailable in the new run": 1, "not in the new run": 1}
    assert "## Not compared" in render_diff(old, new, diff)


def test_not_compared_by_skip_code_whatever_the_wording() -> None:
    """docgen reads why an item was skipped from `skip.code`: the runner may word its reason as it likes."""
    old = _results(*[_item(f"{e}/get[admin-x]", 200) for e in "abcd"])
    reworded = [("a", "out-of-range"), ("b", "case-out-of-range"), ("c", "not-recorded"), ("d", "no-credential")]
    new = _results(*[{**_item(f"{e}/get[admin-x]", None, outcome="skipped", reason="any words"),
                      "skip": {"code": code, "reason": "any words"}} for e, code in reworded])
    assert dict(diff_results(old, new).not_compared) == {
        "out of range in the new run": 1, "case out of range in the new run": 1, "not recorded in the new run": 1,
        "skipped in the new run: no-credential": 1}


def test_removed_and_added_only_on_evidence() -> None:
    """The no-route answer (405, a 404 page) against a success or a documented error; the pair is shown."""
    old = _results(_item("r/list[admin-x]", 200, {"$": "array"}), _item("r/list[anonymous-x]", 401, media=None),
                   _item("n/get[admin-x]", 404, media="text/html", expected=200),
                   _item("e/get[admin-x]", 404, media="text/html", expected=200),
                   _item("m/post[admin-x]", 200, method="POST"))
    new = _results(_item("r/list[admin-x]", 404, media="text/html"),
                   _item("r/list[anonymous-x]", 404, media="text/html"),
                   _item("n/get[admin-x]", 200, {"$": "object"}),
                   _item("e/get[admin-x]", 500, media="text/plain", expected=200),  # a 500 is no "added"
                   _item("m/post[admin-x]", 405, media=None, method="POST"))
    assert _kinds(old, new) == {
        ("r/list", "endpoint-removed", "GET /r/list", True),
        ("n/get", "endpoint-added", "GET /n/get", False),
        ("e/get", "server-error", "e/get[admin-x]", True),
        ("m/post", "endpoint-removed", "POST /m/post", True),
    }
    removed = next(c for c in diff_results(old, new).changes if c.endpoint == "r/list")
    assert (removed.old, removed.new) == ("200", "404")


def test_a_method_the_route_lacks_is_never_present() -> None:
    """2.10.0 refuses an anonymous GET of a POST-only route (401) before its method check (405); 2.20.2 answers
    405 to all: the GET was never there, nothing was removed."""
    old = _results(_item("w/reset-get[anonymous-x]", 401, media=None, expected=401),
                   _item("w/reset-get[admin-x]", 405, media=None, expected=405))
    new = _results(_item("w/reset-get[anonymous-x]", None, outcome="skipped", reason="not on this server: case"),
                   _item("w/reset-get[admin-x]", 405, media=None, expected=405))
    assert diff_results(old, new).changes == []


def test_a_documented_404_is_presence_not_removal() -> None:
    """A JSON or plain-text 404 that the spec expects (an object not found) shows the route exists."""
    old = _results(_item("w/get[admin-x]", 200), _item("w/get[admin-gone]", 404, media=None, expected=404))
    new = _results(_item("w/get[admin-x]", 404, media="application/json", expected=200),
                   _item("w/get[admin-gone]", 404, media="application/json", expected=404))
    assert _kinds(old, new) == {("w/get", "now-rejected", "w/get[admin-x]", True),
                                ("w/get", "error-format-changed", "errors", False)}


def test_route_evidence_without_a_spec_and_for_out_of_range_endpoints() -> None:
    """Discovery probes and recorded GETs: a route without a spec, and a spec's endpoint the old server
    did not run (out of range) but answered a probe for."""
    old = _results(_item("b/list[admin-x]", None, outcome="skipped", reason="not on this server: >=3",
                         path="/boards"),
                   routes=[{"method": "GET", "path": "/version", "status": 200, "content_type": "application/json",
                            "presence": "present", "source": "probe"},
                           {"method": "GET", "path": "/boards", "status": 404, "content_type": "text/html",
                            "presence": "absent", "source": "probe"},
                           {"method": "GET", "path": "/heartbeat", "status": 200, "content_type": "application/json",
                            "presence": "present", "source": "probe"}])
    new = _results(_item("b/list[admin-x]", 200, path="/boards"),
                   routes=[{"method": "GET", "path": "/version", "status": 404, "content_type": "text/html",
                            "presence": "absent", "source": "recording"},
                           {"method": "GET", "path": "/heartbeat", "status": 200, "content_type": "application/json",
                            "presence": "present", "source": "recording"}])
    assert _kinds(old, new) == {("GET /version", "endpoint-removed", "/version", True),
                                ("b/list", "endpoint-added", "GET /boards", False)}


def test_routes_match_whatever_their_parameters_are_named() -> None:
    """The inventory writes `{id}` where a spec writes `{websiteId}`: the same route."""
    old = _results(_item("w/get[admin-x]", None, outcome="skipped", reason="not on this server: >=3",
                         path="/websites/{websiteId}/x"),
                   routes=[{"method": "GET", "path": "/websites/{id}/x", "status": 404, "content_type": "text/html",
                            "presence": "absent", "source": "probe"}])
    new = _results(_item("w/get[admin-x]", 200, path="/websites/{websiteId}/x"))
    assert _kinds(old, new) == {("w/get", "endpoint-added", "GET /websites/{websiteId}/x", False)}


def test_a_route_that_is_another_operation_on_each_side() -> None:
    """The specs give the route another operation per release (2.x series, 3.x list): both answer it."""
    old = _results(_item("s/get-events[admin-x]", 200, path="/w/{id}/events"),
                   _item("s/list-events[admin-x]", None, outcome="skipped", reason="not on this server: >=3",
                         path="/w/{id}/events"))
    new = _results(_item("s/get-events[admin-x]", None, outcome="skipped", reason="not on this server: <2.13",
                         path="/w/{id}/events"),
                   _item("s/list-events[admin-x]", 200, path="/w/{id}/events"))
    changes = diff_results(old, new).changes
    assert [(c.endpoint, c.kind, c.where, c.old, c.new, c.breaking) for c in changes] == [
        ("s/list-events", "operation-replaced", "GET /w/{id}/events", "s/get-events", "s/list-events", True)]


def _out_of_range(item_id: str, path: str | None = None, method: str = "GET") -> dict:
    return {**_item(item_id, None, outcome="skipped", reason="any words", path=path, method=method),
            "skip": {"code": "out-of-range", "reason": "any words"}}


def test_added_by_the_specs_range_and_the_new_answer_without_discovery() -> None:
    """Out of the old release by the specs (no probe), answered by the new server: added, with or without
    --discover; not when another endpoint of the old run answers the route, nor when the new answer is a 5xx."""
    old = _results(_out_of_range("b/list[admin-x]", "/boards"), _out_of_range("b/list[anonymous-x]", "/boards"),
                   _out_of_range("e/get[admin-x]", "/e"), _out_of_range("s/get-v3[admin-x]", "/s"),
                   _item("s/get[admin-x]", 200, path="/s"), version="2.10.0")
    new = _results(_item("b/list[admin-x]", 200, path="/boards"), _item("b/list[anonymous-x]", 401, media=None,
                                                                        path="/boards"),
                   _item("e/get[admin-x]", 500, media="text/plain", expected=200, path="/e"),
                   _item("s/get-v3[admin-x]", 200, path="/s"), _item("s/get[admin-x]", 200, path="/s"))
    diff = diff_results(old, new)
    assert [(c.endpoint, c.kind, c.where, c.old, c.new, c.breaking) for c in diff.changes] == [
        ("b/list", "endpoint-added", "GET /boards", "not in 2.10.0 (specs)", "200", False)]
    assert "b/list" not in {ep for eps in diff.uncompared_endpoints.values() for ep in eps}


def test_a_skip_of_the_new_run_is_never_a_removal_even_out_of_range() -> None:
    old = _results(_item("a/get[admin-x]", 200, {"$": "object"}))
    new = _results(_out_of_range("a/get[admin-x]"))
    diff = diff_results(old, new)
    assert diff.changes == [] and dict(diff.not_compared) == {"out of range in the new run": 1}


def test_out_of_range_on_both_sides_says_so() -> None:
    r = _results(_out_of_range("g/get[admin-x]"))
    assert dict(diff_results(r, r).not_compared) == {"out of range in both runs": 1}


def test_a_fixed_leak_is_security_fixed_not_a_removed_field() -> None:
    """2.10's /admin/users answers every user's bcrypt hash (a known security finding); 3.x leaves it out."""
    leak = {"class": "security", "json_path": "$.data[*].password", "known": True}
    shape = {"$": "object", "$.data": "array", "$.data[*]": "object", "$.data[*].id": "string"}
    old = _results({**_item("admin/users[admin-first-page]", 200, {**shape, "$.data[*].password": "string",
                                                                    "$.data[*].x": "string"}),
                    "outcome": "known", "findings": [leak]})
    new = _results(_item("admin/users[admin-first-page]", 200, shape))
    diff = diff_results(old, new)
    assert [(c.kind, c.where, c.old, c.new, c.breaking) for c in diff.changes] == [
        ("field-removed", "$.data[*].x", "string", "absent", True),
        ("security-fixed", "$.data[*].password", "security 📝", "no finding", False)]
    text = render_diff(old, new, diff)
    assert "security-fixed" not in text[text.index("## Act on these"):text.index("## Changes by area")]
    assert diff_results(new, old).changes[0].kind == "field-added"  # a new leak is no fix


def test_a_shipped_reference_says_so_on_the_first_screen() -> None:
    old = _results(_item("w/get[admin-x]", 200), version="2.10.0")
    new = {**_results(_item("w/get[admin-x]", 200), version="3.1.0"),
           "reference": {"recording": "umami-3.1.0-full.har.gz"}}
    diff = diff_results(old, new)
    first_screen = render_diff(old, new, diff).split("**0 change(s)")[0]
    assert "> **The new side is a reference recording, not a server of yours**" in first_screen
    assert "`umami-3.1.0-full.har.gz`" in first_screen and "data" in first_screen
    assert json.loads(diff_json(old, new, diff))["new"]["reference_recording"] == "umami-3.1.0-full.har.gz"
    assert "reference recording" not in render_diff(old, old, diff_results(old, old))


def _case_out(item_id: str, expected: int = 200) -> dict:
    return {**_item(item_id, None, outcome="skipped", reason="any words", expected=expected),
            "skip": {"code": "case-out-of-range", "reason": "any words"}}


def test_cases_named_per_release_are_compared() -> None:
    """`search` (2.x) and `search-v3`, or a role's only such pair (`home-to-pricing`, `funnel-v3`): one request
    written for each release, compared; a role or an expected status of its own stays apart."""
    old = _results({**_item("r/funnel[user-home]", 200, {"$": "array", "$[*]": "object", "$[*].x": "string"}),
                    "case": "home"},
                   {**_item("r/funnel[user-one]", 400, media=None), "case": "one"},
                   {**_case_out("r/funnel[user-f-v3]"), "case": "f-v3"},
                   {**_case_out("r/funnel[user-one-v3]", 400), "case": "one-v3"},
                   {**_item("r/funnel[share-one]", 400, media=None), "role": "share", "case": "one"},
                   {**_case_out("r/funnel[share-two-v3]", 401), "role": "share", "case": "two-v3"})
    new = _results({**_case_out("r/funnel[user-home]"), "case": "home"},
                   {**_case_out("r/funnel[user-one]", 400), "case": "one"},
                   {**_item("r/funnel[user-f-v3]", 200, {"$": "array", "$[*]": "object", "$[*].value": "string"}),
                    "case": "f-v3"},
                   {**_item("r/funnel[user-one-v3]", 500, media="text/plain", expected=400), "case": "one-v3"},
                   {**_case_out("r/funnel[share-one]", 400), "role": "share", "case": "one"},
                   {**_item("r/funnel[share-two-v3]", 401, media=None), "role": "share", "case": "two-v3"})
    diff = diff_results(old, new)
    assert [(c.kind, c.where, c.old, c.new) for c in diff.changes] == [
        ("server-error", "r/funnel[user-one → user-one-v3]", "400", "500"),
        ("field-removed", "$[*].x", "string", "absent"),
        ("field-added", "$[*].value", "absent", "string")]
    assert diff.compared == 2 and sum(diff.not_compared.values()) == 2  # share: 400 and 401 are not one request


def test_discovery_and_generated_items_are_not_paired() -> None:
    old = _results({**_item("discovery/undocumented[admin-x]", 200), "area": "discovery"},
                   {**_item("w/get[admin-negative]", 400), "case": "negative"})
    new = _results({**_item("discovery/undocumented[admin-x]", 404), "area": "discovery"},
                   {**_item("w/get[admin-negative]", 500), "case": "negative"})
    assert diff_results(old, new).changes == []


def test_objects_keyed_by_data_are_one_structure() -> None:
    """Realtime's countries and urls are keyed by the data (`US`, `/pricing`): other data is no change."""
    old = _results(_item("realtime/get[admin-d]", 200, {"$": "object", "$.countries": "object",
                                                        "$.countries.US": "integer", "$.urls": "object",
                                                        "$.urls./": "integer", "$.urls./a": "integer"}))
    new = _results(_item("realtime/get[admin-d]", 200, {"$": "object", "$.countries": "object",
                                                        "$.countries.DE": "integer", "$.urls": "object",
                                                        "$.urls./b": "string"}))
    assert _kinds(old, new) == {("realtime/get", "field-retyped", "$.urls.{key}", True)}


def test_items_of_an_array_empty_in_one_run_are_no_change() -> None:
    old = _results(_item("me/websites[admin-d]", 200, {"$": "object", "$.data": "array"}))
    new = _results(_item("me/websites[admin-d]", 200, {"$": "object", "$.data": "array", "$.data[*]": "object",
                                                      "$.data[*].id": "string"}))
    assert diff_results(old, new).changes == [] and diff_results(new, old).changes == []


def test_report_reads_summary_first_and_is_byte_identical() -> None:
    old = _results(_item("w/get[admin-x]", 200, {"$": "object", "$.a": "string"}), _item("x/get[admin-x]", 400),
                   version="2.10.0")
    new = _results(_item("w/get[admin-x]", 200, {"$": "object", "$.b": "string"}), _item("x/get[admin-x]", 200),
                   version="3.1.0")
    diff = diff_results(old, new)
    text = render_diff(old, new, diff)
    assert text.startswith("# Upgrade check: Umami 2.10.0 → Umami 3.1.0\n\nOld: `http://umami`. New: `http://umami`."
                           "\n\n**3 change(s) on 2 endpoint(s), 1 breaking.** 2 item(s) compared, 0 not compared")
    assert text.index("| field-removed | 💥 yes | 1 |") < text.index("| now-accepted | no | 1 |")
    assert text.index("## Act on these") < text.index("## Changes by area") < text.index("### w")
    assert "- **w/get**: field-removed `$.a` string → absent" in text
    again = diff_results(json.loads(json.dumps(old)), json.loads(json.dumps(new)))
    assert render_diff(old, new, again) == text and diff_json(old, new, again) == diff_json(old, new, diff)
    machine = json.loads(diff_json(old, new, diff))
    assert machine["summary"]["breaking"] == 1 and machine["summary"]["by_kind"] == {
        "field-removed": 1, "now-accepted": 1, "field-added": 1}


def test_the_first_screen_stops_before_the_areas_and_says_where_the_rest_is() -> None:
    items = [_item(f"w{n}/get[admin-x]", 200, {"$": "object", "$.a": "string"}) for n in range(50)]
    new = [_item(f"w{n}/get[admin-x]", 200, {"$": "object"}) for n in range(50)]
    text = render_diff(_results(*items), _results(*new), diff_results(_results(*items), _results(*new)))
    screen = first_screen(text, "up.md").splitlines()
    assert len(screen) == 40 and text.startswith("\n".join(screen[:-2]))
    assert screen[-1] == f"… {len(text.splitlines()) - 38} more line(s): the whole report is in up.md"
    short = render_diff(_results(items[0]), _results(new[0]), diff_results(_results(items[0]), _results(new[0])))
    screen = first_screen(short, "up.md")
    assert "## Act on these" in screen and "## Changes by area" not in screen and screen.endswith("in up.md\n")
    same = _results(items[0])
    assert first_screen(render_diff(same, same, diff_results(same, same)), "up.md") == render_diff(
        same, same, diff_results(same, same))  # nothing beyond the first screen: the whole text


def test_same_results_no_change() -> None:
    r = _results(_item("me/get[admin-d]", 200, {"$": "object"}), _item("me/get[anonymous-d]", 401, media=None))
    assert diff_results(r, r).changes == []


def test_readme_states_every_rule() -> None:
    """The rules table in README.md is the one the code applies."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Upgrade check rules"):]
    rows = re.findall(r"^\| `([a-z-]+)` \| (💥 yes|no) \|", section, re.M)
    assert rows == [(r.kind, "💥 yes" if r.breaking else "no") for r in RULES]

"""The upgrade diff on hand-made results (unit tests; the live test injects a change into a real run)."""

from __future__ import annotations

from docgen.diff import diff_results


def _results(*items: dict) -> dict:
    return {"server": {"version": "x"}, "started": "2026-01-01T00:00:00+00:00", "items": list(items)}


def _item(item_id: str, status: int, shape: dict | None = None, endpoint: str = "me/get") -> dict:
    return {"id": item_id, "endpoint": endpoint, "outcome": "passed", "actual_status": status, "shape": shape}


def test_changes_and_breaking() -> None:
    old = _results(_item("me/get[admin-d]", 200, {"$": "object", "$.a": "string", "$.b": "integer", "$.c": "string"}),
                   _item("me/get[anonymous-d]", 401), _item("x/gone[admin-d]", 200, endpoint="x/gone"))
    new = _results(_item("me/get[admin-d]", 200, {"$": "object", "$.a": "integer", "$.c": "null|string",
                                                   "$.d": "object", "$.d.e": "string"}),
                   _item("me/get[anonymous-d]", 200), _item("y/new[admin-d]", 200, endpoint="y/new"))
    changes = {(c.endpoint, c.kind, c.where, c.breaking) for c in diff_results(old, new)}
    assert changes == {
        ("me/get", "field-retyped", "$.a", True),
        ("me/get", "field-removed", "$.b", True),
        ("me/get", "field-added", "$.d", False),  # its children are not listed again
        ("me/get", "auth-looser", "me/get[anonymous-d]", False),
        ("x/gone", "endpoint-removed", "x/gone", True),
        ("y/new", "endpoint-added", "y/new", False),
    }


def test_same_results_no_change() -> None:
    r = _results(_item("me/get[admin-d]", 200, {"$": "object"}))
    assert diff_results(r, r) == []


def test_items_of_an_array_empty_in_one_run_are_no_change() -> None:
    old = _results(_item("me/websites[admin-d]", 200, {"$": "object", "$.data": "array"}))
    new = _results(_item("me/websites[admin-d]", 200, {"$": "object", "$.data": "array", "$.data[*]": "object",
                                                      "$.data[*].id": "string"}))
    assert diff_results(old, new) == [] and diff_results(new, old) == []

"""The run archive and what the docs derive from it (docgen/history.py), with hand-made runs: no server."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from conformance.describe import vocabulary
from docgen.history import shape_hash, archive, endpoint_histories, load_history


def _item(item_id: str, outcome: str, status: int | None = 200, shape: Any = None) -> dict[str, Any]:
    return {"id": item_id, "endpoint": item_id.split("[")[0], "outcome": outcome, "actual_status": status,
            "findings": [{"class": "status-changed", "known": None}] if outcome == "failed" else [],
            **({"shape": shape} if shape is not None else {})}


def _results(started: str, version: str | None, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"started": started, "server": {"version": version}, "vocabulary": vocabulary(), "items": items}


def test_archive_is_one_compact_file_per_run(tmp_path: Path) -> None:
    items = [_item("me/get[admin-default]", "passed", shape={"id": "string"}),
             _item("me/teams[admin-default]", "failed", 500), _item("me/get[user-default]", "skipped", None)]
    path = archive(_results("2026-11-25T23:46:25.123Z", "2.10.0", items), tmp_path / "history")
    assert path == tmp_path / "history" / "20261125T234625_2.10.0.json.gz"
    compact = json.loads(gzip.decompress(path.read_bytes()))
    assert compact["started"] == "2026-11-25T23:46:25.123Z" and compact["version"] == "2.10.0"
    assert list(compact["items"]) == sorted(i["id"] for i in items)
    endpoint, key, status, shape = compact["items"]["me/get[admin-default]"]
    assert (endpoint, key, status) == ("me/get", "passed", 200) and len(shape) == 12
    assert compact["items"]["me/teams[admin-default]"] == ["me/teams", "status", 500, None]  # no shape, no hash
    # The same results give the same bytes; another body shape another hash; an unknown version is named so.
    again = archive(_results("2026-11-25T23:46:25.123Z", "2.10.0", list(reversed(items))), tmp_path / "again")
    assert again.read_bytes() == path.read_bytes() and path.read_bytes()[4:8] == bytes(4), "no gzip time stamp"
    other = archive(_results("2026-11-26T00:00:00Z", None, [_item("me/get[admin-default]", "passed",
                                                                  shape={"id": "number"})]),
                    tmp_path / "history")
    assert other.name == "20261126T000000_unknown.json.gz"
    assert json.loads(gzip.decompress(other.read_bytes()))["items"]["me/get[admin-default]"][3] != shape
    # A field that is sometimes a whole number is not another shape (a percentage of 100, one of 16.7).
    whole, fraction = ({"$[*].percentage": kind} for kind in ("integer", "integer|number"))
    assert shape_hash({"shape": whole}) == shape_hash({"shape": fraction}) != shape_hash({"shape": {
        "$[*].percentage": "string"}})


def test_load_history_reads_every_run_oldest_first(tmp_path: Path) -> None:
    assert load_history(None) == [] and load_history(tmp_path / "none") == []
    for started, version in (("2026-11-26T10:00:00Z", "3.1.0"), ("2026-11-24T10:00:00Z", "2.10.0")):
        archive(_results(started, version, [_item("me/get[admin-default]", "passed")]), tmp_path)
    assert [r["version"] for r in load_history(tmp_path)] == ["2.10.0", "3.1.0"]


def _run(date: str, version: str, rows: dict[str, list[Any]]) -> dict[str, Any]:
    return {"started": f"{date}T10:00:00Z", "version": version, "items": rows}


def test_first_seen_passing_since_last_changed_and_the_latest_keys_per_version() -> None:
    admin, user = "websites/get[admin-default]", "websites/get[user-default]"
    runs = [
        _run("2026-01-01", "2.9.0", {admin: ["websites/get", "removed", 404, None],
                                     user: ["websites/get", "skipped", None, None]}),
        _run("2026-01-02", "2.10.0", {admin: ["websites/get", "passed", 200, "aaa"],
                                      user: ["websites/get", "passed", 200, "aaa"]}),
        _run("2026-01-03", "2.10.0", {admin: ["websites/get", "passed", 200, "aaa"],
                                      user: ["websites/get", "passed", 200, "aaa"]}),
        _run("2026-01-04", "3.1.0", {admin: ["websites/get", "structure", 200, "bbb"],
                                     user: ["websites/get", "known", 200, "aaa"]}),
        _run("2026-01-05", "3.1.0", {admin: ["websites/get", "structure", 200, "bbb"],
                                     user: ["websites/get", "known", 200, "aaa"]}),
    ]
    h = endpoint_histories(runs)["websites/get"]
    assert h.first_seen == "2026-01-02", "a 404 is not the endpoint being there"
    assert (h.passing, h.since) == (False, "2026-01-04"), "a structure finding in one role is no pass"
    assert h.last_changed == "2026-01-04", "the shape changed then, and stayed"
    assert h.by_version == {"2.9.0": ["removed", "skipped"], "2.10.0": ["passed", "passed"],
                            "3.1.0": ["structure", "known"]}


def test_known_differences_count_as_passed_and_an_endpoint_never_seen_has_no_dates() -> None:
    runs = [_run("2026-02-01", "2.10.0", {"me/teams[admin-default]": ["me/teams", "known", 500, None],
                                          "x/y[admin-default]": ["x/y", "skipped", None, None]})]
    histories = endpoint_histories(runs)
    assert histories["me/teams"].since == "2026-02-01" and histories["me/teams"].first_seen == "2026-02-01"
    assert histories["me/teams"].passing
    never = histories["x/y"]
    assert (never.first_seen, never.passing, never.since, never.last_changed) == (None, None, None, None)
    assert endpoint_histories([]) == {}


def test_an_unchanged_run_adds_no_file_and_the_archive_is_bounded(tmp_path: Path, monkeypatch: Any) -> None:
    """Issue 25: 30 daily runs of an unchanged server leave one file; a change adds one; HISTORY_LIMIT bounds it."""
    history = tmp_path / "history"
    items = [_item("me/get[admin-default]", "passed", shape={"id": "string"})]
    written = [archive(_results(f"2026-12-{day:02d}T05:17:00Z", "2.10.0", items), history) for day in range(1, 31)]
    assert written[0] is not None and written[1:] == [None] * 29 and len(list(history.iterdir())) == 1
    assert archive(_results("2026-12-31T05:17:00Z", "3.1.0", items), history), "another version is a change"
    assert archive(_results("2027-01-01T05:17:00Z", "2.10.0", items), history), "back to 2.10.0 is a change too"
    changed = [_item("me/get[admin-default]", "passed", shape={"id": "number"})]
    assert archive(_results("2027-01-02T05:17:00Z", "2.10.0", changed), history)
    assert len(list(history.iterdir())) == 4
    monkeypatch.setattr("docgen.history.HISTORY_LIMIT", 2)
    archive(_results("2027-01-03T05:17:00Z", "2.10.0", items), history)
    assert sorted(p.name[:8] for p in history.iterdir()) == ["20270102", "20270103"], "the oldest go"

"""Known differences (conformance/known.py): matching, expiry, stale entries and loading, with hand-made
findings and records: no server."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from conformance.checks import Finding
from conformance.errors import SpecError
from conformance.known import KnownDifference, apply_known, load_known, stale
from conformance.versions import Versions

from conftest import ROOT

TODAY = dt.date.today()


def _finding(cls: str = "status-changed", json_path: str = "$", actual: object = 500,
             endpoint: str = "websites/delete") -> Finding:
    return Finding(cls=cls, endpoint=endpoint, json_path=json_path, expected=200, actual=actual, message="m",
                   curl="curl")


def _entry(**fields: object) -> KnownDifference:
    return KnownDifference(**{"endpoint": "websites/delete", "reason": "a reviewed defect",
                              "versions": Versions(">=2.10,<2.11"), "line": 7, **fields})


def _record(**fields: object) -> dict:
    return {"endpoint": "websites/delete", "outcome": "failed", "case": "default", "role": "admin", **fields}


def test_an_entry_matches_by_endpoint_version_role_case_class_status_and_path() -> None:
    entry = _entry(roles=["admin", "user"], cases=["default"], cls="status-changed", status=500)
    assert entry.matches(_finding(), "admin", "default", ["2.10.0"])
    assert entry.matches(_finding(), "user", "default", None)  # version not known: the entry may apply
    assert not entry.matches(_finding(), "admin", "default", ["2.11.0"])
    assert not entry.matches(_finding(), "view-only", "default", ["2.10.0"])
    assert not entry.matches(_finding(), "admin", "other-case", ["2.10.0"])
    assert not entry.matches(_finding(cls="type-changed"), "admin", "default", ["2.10.0"])
    assert not entry.matches(_finding(actual=502), "admin", "default", ["2.10.0"])
    assert not entry.matches(_finding(endpoint="websites/reset"), "admin", "default", ["2.10.0"])
    # A range of possible versions: one of them is enough.
    assert entry.matches(_finding(), "admin", "default", ["2.11.0", "2.10.0"])


def test_a_json_path_matches_every_item_of_an_array() -> None:
    entry = _entry(json_path="$.data[*].password", cls="security")
    assert entry.matches(_finding("security", "$.data[3].password"), "admin", "default", ["2.10.0"])
    assert entry.matches(_finding("security", "$.data[*].password"), "admin", "default", ["2.10.0"])
    assert not entry.matches(_finding("security", "$.data[3].username"), "admin", "default", ["2.10.0"])


def test_an_expired_entry_accepts_nothing_from_the_day_after_its_date() -> None:
    assert _entry(expires=TODAY).matches(_finding(), "admin", "default", ["2.10.0"])
    assert not _entry(expires=TODAY - dt.timedelta(days=1)).matches(_finding(), "admin", "default", ["2.10.0"])


def test_apply_known_marks_with_the_first_matching_entry_and_counts() -> None:
    first, second = _entry(status=500, reason="the first reason"), _entry(reason="the second reason")
    findings = [_finding(), _finding(actual=502), _finding(endpoint="me/get")]
    apply_known(findings, [first, second], "admin", "default", ["2.10.0"])
    assert [f.known for f in findings] == ["the first reason", "the second reason", None]
    assert (first.matched, second.matched) == (1, 1)


def test_stale_entries_are_those_that_matched_nothing_where_their_item_was_checked() -> None:
    used, unused, other_role = _entry(matched=2), _entry(), _entry(roles=["user"])
    checked = [_record()]
    assert stale([used, unused, other_role], checked, versions=["2.10.0"]) == [unused]
    # Not stale where no item it is about was checked: skipped, unavailable, negative, another version.
    for record in (_record(outcome="skipped"), _record(outcome="unavailable"), _record(case="negative"),
                   _record(endpoint="me/get")):
        assert stale([unused], [record], versions=["2.10.0"]) == [], record
    assert stale([unused], checked, versions=["3.1.0"]) == []
    assert stale([unused], checked, versions=None) == [unused]


def test_an_entry_about_array_items_is_not_stale_where_the_array_is_empty() -> None:
    """2.19-2.20 revenue sums are strings: a run that seeded no revenue answers empty arrays, which show nothing
    of their items."""
    items = _entry(cls="type-changed", json_path="$.chart[*].y")
    empty = _record(shape={"$": "object", "$.chart": "array"})
    assert stale([items], [empty], versions=["2.10.0"]) == []
    full = _record(shape={"$": "object", "$.chart": "array", "$.chart[*]": "object", "$.chart[*].y": "number"})
    assert stale([items], [full], versions=["2.10.0"]) == [items]
    assert stale([items], [_record()], versions=["2.10.0"]) == [items]  # no shape known: judged as before


def test_a_read_only_run_judges_only_entries_about_a_status() -> None:
    about_status, about_schema = _entry(status=500), _entry(cls="field-removed", json_path="$.name")
    assert stale([about_status, about_schema], [_record()], read_only=True) == [about_status]
    assert stale([about_status, about_schema], [_record()], read_only=False) == [about_status, about_schema]


def test_describe_names_what_the_entry_accepts() -> None:
    assert _entry(json_path="$.x").describe() == "websites/delete $.x (>=2.10,<2.11)"
    assert _entry(status=500).describe() == "websites/delete HTTP 500 (>=2.10,<2.11)"
    assert _entry(cls="field-added", versions=Versions("")).describe() == "websites/delete field-added (all versions)"


def _known_dir(tmp_path: Path, text: str) -> Path:
    shutil.copy(ROOT / "specs" / "meta-schema.yaml", tmp_path / "meta-schema.yaml")
    (tmp_path / "known-differences.yaml").write_text(text)
    return tmp_path


def test_load_known_reads_every_field_with_its_line(tmp_path: Path) -> None:
    root = _known_dir(tmp_path, """# a comment
- endpoint: me/get
  versions: ">=2.10,<2.11"
  reason: a reviewed defect of 2.10
- endpoint: admin/users
  class: security
  json_path: $.data[*].password
  roles: [admin]
  cases: [first-page]
  status: 200
  expires: "2030-01-31"
  versions: ">=2.0"
  reason: another reviewed defect
""")
    first, second = load_known(root)
    assert (first.endpoint, first.line, str(first.versions), first.expires) == ("me/get", 2, ">=2.10,<2.11", None)
    assert first.reason == "a reviewed defect of 2.10" and first.cls is first.status is first.roles is None
    assert (second.line, second.cls, second.json_path, second.roles, second.cases, second.status, second.expires) \
        == (5, "security", "$.data[*].password", ["admin"], ["first-page"], 200, dt.date(2030, 1, 31))
    assert load_known(tmp_path / "nowhere") == []


@pytest.mark.parametrize("text, line, message", [
    ("- endpoint: me/get\n  reason: no versions given\n", 2, "'versions' is a required property"),
    ("- endpoint: me/get\n  versions: '>=2.10'\n  reason: short\n", 4, "'short' is too short"),
    ("- endpoint: me/get\n  versions: 'two or more'\n  reason: a reviewed defect\n", 2, "invalid version range"),
    ("- endpoint: me/get\n  versions: '>=2.0'\n  reason: a reviewed defect\n  expires: soon\n", 5, "expires"),
])
def test_a_bad_entry_is_a_spec_error_with_its_file_and_line(tmp_path: Path, text: str, line: int,
                                                            message: str) -> None:
    root = _known_dir(tmp_path, "# reviewed\n" + text)
    with pytest.raises(SpecError) as exc:
        load_known(root)
    assert str(exc.value).startswith(f"{root / 'known-differences.yaml'}:{line}:") and message in str(exc.value), \
        exc.value

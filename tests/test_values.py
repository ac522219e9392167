"""Placeholders in spec cases (conformance/values.py), with hand-made contexts: no server."""

from __future__ import annotations

import pytest

from conformance.values import MissingValue, render, unknown_placeholders

NOW = 1_800_000_000_000  # ms
CONTEXT = {"website": {"id": "w-1", "name": "ucf-x-site", "shareId": None}, "prefix": "ucf-x-",
           "credentials": {"password": "s3cret"}, "team": {"id": "t-1"}}


@pytest.mark.parametrize("name, offset_ms", [
    ("now", 0), ("now-7d", -7 * 86_400_000), ("now+1h", 3_600_000), ("now-30m", -1_800_000),
    ("now-2w", -2 * 604_800_000), ("now+15s", 15_000),
])
def test_now_with_an_offset_is_epoch_milliseconds(name: str, offset_ms: int) -> None:
    assert render(f"${{{name}}}", {}, now_ms=NOW) == NOW + offset_ms


def test_now_iso_is_the_same_moment_as_an_iso_string() -> None:
    """Report bodies take ISO dates: a window around the run's own seed (issue 25), never a fixed one."""
    assert render("${now-1d.iso}", {}, now_ms=NOW) == "2027-01-14T08:00:00.000Z"
    assert render("${now.iso}", {}, now_ms=NOW + 5) == "2027-01-15T08:00:00.005Z"
    assert render({"dateRange": {"endDate": "${now+1d.iso}"}}, {}, now_ms=NOW) == {
        "dateRange": {"endDate": "2027-01-16T08:00:00.000Z"}}
    assert unknown_placeholders(["${now-1d.iso}", "${now.iso}", "${now.isox}", "${now.id}"]) == [
        "${now.isox}", "${now.id}"]


def test_a_whole_placeholder_keeps_its_type_and_one_inside_text_becomes_text() -> None:
    assert render("${now-1d}", {}, now_ms=NOW) == NOW - 86_400_000  # a number, as the API expects
    assert render("from ${now-1d} on", {}, now_ms=NOW) == f"from {NOW - 86_400_000} on"
    assert render({"n": {"deep": ["${team.id}"]}, "k": 3}, CONTEXT, now_ms=NOW) == {"n": {"deep": ["t-1"]}, "k": 3}
    assert render({"id": 7, "s": "plain", "x": None}, {}) == {"id": 7, "s": "plain", "x": None}


def test_dotted_names_come_from_the_context() -> None:
    body = {"websiteId": "${website.id}", "name": "${prefix}report", "password": "${credentials.password}",
            "urls": ["/websites/${website.id}/stats", "${prefix}"]}
    assert render(body, CONTEXT, now_ms=NOW) == {
        "websiteId": "w-1", "name": "ucf-x-report", "password": "s3cret",
        "urls": ["/websites/w-1/stats", "ucf-x-"]}


@pytest.mark.parametrize("value", ["${website.shareId}", "${share.token}", "/x/${user.id}", "${website.nope}"])
def test_a_value_the_sandbox_lacks_is_missing_not_empty(value: str) -> None:
    """A missing or null value must not become "None" in a URL: the item is skipped with the name."""
    with pytest.raises(MissingValue) as exc:
        render(value, CONTEXT, now_ms=NOW)
    assert exc.value.args[0] == value.split("${")[1].rstrip("}")


def test_unknown_placeholders_are_found_anywhere_in_a_case() -> None:
    case = {"path": "/websites/${website.id}", "query": {"startAt": "${now-7d}", "x": "${websit.id}"},
            "body": [{"name": "${prefix}a"}, "${now-7days}", "${Website.id}", "${}"], "n": 1}
    assert unknown_placeholders(case) == ["${websit.id}", "${now-7days}", "${Website.id}", "${}"]
    assert unknown_placeholders({"a": ["${team_website.id}", "${viewer.username}", "${target.id}"]}) == []

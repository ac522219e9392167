"""The words of results.json that the runner decides and the docs switch on: outcomes, item kinds, skip codes and
finding classes. Written once here; the schema's enums are checked against them (tests/test_architecture.py)."""

from __future__ import annotations

import enum
from typing import Any


class Outcome(str, enum.Enum):
    """What became of one item (results.json `outcome`), worst first."""

    FAILED = "failed"
    ERROR = "error"  # the tool failed on the item (a bug), not a finding about the server
    UNAVAILABLE = "unavailable"  # a transient failure after the retries: not checked, never drift
    KNOWN = "known"
    PASSED = "passed"
    PASSED_NO_SCHEMA = "passed-no-schema"
    SKIPPED = "skipped"


OUTCOMES = {
    Outcome.FAILED: "an open finding: the answer differs from the spec",
    Outcome.ERROR: "the tool failed on this item (not a finding about the server)",
    Outcome.UNAVAILABLE: "a transient failure (502/503/504, a dropped connection) after every retry; not checked, "
                         "not drift",
    Outcome.KNOWN: "a reviewed deviation listed in specs/known-differences.yaml",
    Outcome.PASSED: "passed with schema check",
    Outcome.PASSED_NO_SCHEMA: "passed, no schema for this status (e.g. a plain-text error)",
    Outcome.SKIPPED: "not checked on this server (version, read-only or role not available; reason given)",
}
# Sets of the values (strings): an Enum member hashes by its name, so `"passed" in {Outcome.PASSED}` is False.
PASSING = frozenset(o.value for o in (Outcome.PASSED, Outcome.PASSED_NO_SCHEMA, Outcome.KNOWN))
NO_ANSWER = frozenset(o.value for o in (Outcome.SKIPPED, Outcome.UNAVAILABLE, Outcome.ERROR))  # nothing judged


class Kind(str, enum.Enum):
    """What an item is (results.json `kind`)."""

    SPEC = "spec"  # endpoint x role x case of a spec file
    SETUP = "setup"  # drift the run's set-up met and worked around
    NEGATIVE = "negative"  # generated bad inputs (--negative)
    DISCOVERY = "discovery"  # a route no spec describes (--discover)
    ROUTES = "routes"  # route evidence of every known template (--discover): results.json `routes`


class SkipCode(str, enum.Enum):
    """Why an item was not checked (results.json `skip.code`); the `skip.reason` beside it gives the details."""

    OUT_OF_RANGE = "out-of-range"
    CASE_OUT_OF_RANGE = "case-out-of-range"
    READ_ONLY = "read-only"
    NO_WEBSITE = "no-website"
    ROLE_UNAVAILABLE = "role-unavailable"
    NO_CREDENTIAL = "no-credential"
    UNDELETABLE = "undeletable"
    MISSING_VALUE = "missing-value"
    NOT_RECORDED = "not-recorded"


SKIP_CODES = {
    SkipCode.OUT_OF_RANGE: "the endpoint is not in this server's release",
    SkipCode.CASE_OUT_OF_RANGE: "the case is not in this server's release",
    SkipCode.READ_ONLY: "a read-only run: a write, or a value only the run's own objects have",
    SkipCode.NO_WEBSITE: "a read-only run without --website-id: no existing website to read",
    SkipCode.ROLE_UNAVAILABLE: "the role could not be set up in this run",
    SkipCode.NO_CREDENTIAL: "the role has no credentials in this run",
    SkipCode.UNDELETABLE: "it would create a website on a server that cannot delete one; runs reuse a kept set",
    SkipCode.MISSING_VALUE: "it needs a value this run does not have",
    SkipCode.NOT_RECORDED: "a recheck: the recording has no answer for one of its requests",
}

OUT_OF_RELEASE = frozenset({SkipCode.OUT_OF_RANGE, SkipCode.CASE_OUT_OF_RANGE})  # not in the server's release

# How a results.json of an earlier version (no `skip`) said why: the start of its reason, most specific first.
_EARLIER_WORDING = (
    ("not on this server: case", SkipCode.CASE_OUT_OF_RANGE),
    ("not on this server", SkipCode.OUT_OF_RANGE),
    ("read-only run without", SkipCode.NO_WEBSITE),
    ("read-only run", SkipCode.READ_ONLY),
    ("not checked on this server: it cannot delete websites", SkipCode.UNDELETABLE),
    ("not in the recording", SkipCode.NOT_RECORDED),
    ("needs ${", SkipCode.MISSING_VALUE),
)

class Verdict(str, enum.Enum):
    """What a run comes to, in one word (results.json `verdict.code`); `verdict.text` adds the counts."""

    CONFORMS = "conforms"  # every item checked holds, known differences aside
    DRIFT = "drift"  # open findings
    ERROR = "error"  # the tool failed on items (a bug to report)
    UNAVAILABLE = "unavailable"  # transient failures left items unchecked, nothing else is wrong
    INCOMPLETE = "incomplete"  # interrupted, or stopped by a set-up error or a server gone
    NOTHING_TESTED = "nothing-tested"  # every selected item was skipped


FINDING_CLASSES = {  # most severe first
    "security": "a success answer exposes a password, a password hash or another principal's secret, or a role "
                "the spec refuses gets other principals' objects",
    "auth-looser": "a role got a success the spec forbids",
    "endpoint-missing": "404/405 where the spec expects success",
    "auth-stricter": "a role the spec allows was refused",
    "status-changed": "another status than the spec says",
    "field-removed": "a required field is missing",
    "type-changed": "a value has another type, enum value or format (null included)",
    "content-type-changed": "another media type than the spec says",
    "value-changed": "a value is outside the spec's constraints (range, pattern, length)",
    "field-added": "a field the spec does not know",
    "undocumented-endpoint": "the server has an endpoint no spec describes",
}
# How a finding class reads at a glance; every other class is a structure mismatch (auth-looser included).
FINDING_GROUPS = {"security": "security", "endpoint-missing": "removed", "status-changed": "status",
                  "auth-stricter": "status"}


def skip_code(item: dict[str, Any]) -> SkipCode | None:
    """Why a skipped item of any results.json was not checked: its `skip.code`, or for a file of an earlier
    version the code its reason's wording meant (None: not skipped, or a reason no code stands for)."""
    if item.get("outcome") != Outcome.SKIPPED:
        return None
    if item.get("skip"):
        return SkipCode(item["skip"]["code"])
    reason = item.get("reason") or ""
    if reason.startswith("role "):
        return SkipCode.NO_CREDENTIAL if reason.endswith("has no credentials in this run") \
            else SkipCode.ROLE_UNAVAILABLE
    return next((code for start, code in _EARLIER_WORDING if reason.startswith(start)), None)


def release_endpoints(items: list[dict[str, Any]]) -> set[str]:
    """The endpoints of the server's release among a run's items: each with an item not skipped as of another
    release (OUT_OF_RELEASE)."""
    return {i["endpoint"] for i in items if skip_code(i) not in OUT_OF_RELEASE}

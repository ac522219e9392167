"""Security checks (unit tests: crafted answers, no network): secrets in success answers, whatever their shape."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from conformance.checks import (Finding, check_exchange, class_rank, declared_paths, foreign_objects,
                               schema_findings, security_findings, with_security)
from conformance.client import Exchange
from conformance.har import _data as recorded_data
from conformance.known import apply_known, load_known
from conformance.redact import Redactor

from conformance.describe import vocabulary
from conformance.execute import own_ids
from conformance.results import summarize
from docgen.legend import LEGEND, Vocabulary
from umami_results import SCHEMA_PATH
from umami_results.vocabulary import FINDING_CLASSES
from conftest import bundled_specs

SPECS = bundled_specs()
ROOT = Path(__file__).resolve().parent.parent
HASH = "$2b$10$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"  # bcrypt's shape, no real password
USER_ROW = {"id": "3f0b5a55-1d7e-4d43-9a0e-3a6b6bb6c0a1", "username": "someone", "role": "user"}


def _endpoint(endpoint_id: str):
    return next(e for e in SPECS.endpoints if e.id == endpoint_id)


def _exchange(body: object, status: int = 200, bearer: str = "caller-own-token-123") -> Exchange:
    request = httpx.Request("GET", "http://umami.test/api/x", headers={"Authorization": f"Bearer {bearer}"})
    return Exchange(request, httpx.Response(status, json=body), 0.01)


def _declared(endpoint_id: str, status: int = 200) -> set[str]:
    paths: set[str] = set()
    for spec in _endpoint(endpoint_id).responses:
        if spec.status == status and spec.schema is not None:
            paths |= declared_paths(spec.schema, SPECS.registry.resolver(base_uri=spec.schema_uri))
    return paths


def _security(endpoint_id: str, body: object, **kwargs) -> list[Finding]:
    ex = _exchange(body, **kwargs)
    own = {"caller-own-token-123"}
    return security_findings(_endpoint(endpoint_id), ex, "curl ...", _declared(endpoint_id), own)


def test_password_hashes_in_a_paged_list_are_one_finding_per_path_with_a_count() -> None:
    body = {"data": [{**USER_ROW, "password": HASH} for _ in range(3)], "count": 3, "page": 1, "pageSize": 10}
    findings = _security("admin/users", body)
    assert [(f.cls, f.json_path, f.count) for f in findings] == [("security", "$.data[*].password", 3)]
    assert findings[0].actual == "string (a password or its hash)" and findings[0].expected == "absent"
    assert "bcrypt" in findings[0].message
    assert HASH not in json.dumps([f.as_dict() for f in findings]), "a finding never holds the secret"


@pytest.mark.parametrize("body", [
    [{**USER_ROW, "password": HASH}],  # the v2 document's plain array
    {"data": {"rows": [{**USER_ROW, "password": HASH}]}},  # a shape no spec knows
    {"data": [{**USER_ROW, "password": "***"}]},  # a recording: the hash already redacted, the field still there
])
def test_a_password_is_found_whatever_the_shape(body: object) -> None:
    findings = _security("admin/users", body)
    assert [f.cls for f in findings] == ["security"] and findings[0].json_path.endswith(".password")


@pytest.mark.parametrize("value", [HASH, "$2b$10$***"])  # as answered, and as a recording or report keeps it
def test_a_hash_is_found_by_its_value_under_any_name(value: str) -> None:
    findings = _security("me/websites", {"data": [{"id": "x", "user": {"id": "u", "secretStuff": 1, "h": value}}]})
    assert [(f.json_path, f.actual) for f in findings] == [("$.data[*].user.h", "string (bcrypt hash)")]


def test_non_json_text_with_a_hash() -> None:
    request = httpx.Request("GET", "http://umami.test/api/x")
    ex = Exchange(request, httpx.Response(200, text=f"user:{HASH}"), 0.01)
    assert [f.json_path for f in security_findings(_endpoint("me/get"), ex, "curl")] == ["$"]


@pytest.mark.parametrize("endpoint_id, body", [
    ("auth/login", {"token": "a-brand-new-token-0123456789", "user": USER_ROW}),  # the login's purpose
    ("me/get", {"token": "redacted-0123456789ab", "shareToken": None, "user": USER_ROW}),  # named by a 3.x shape
    ("share/get", {"websiteId": "w", "token": "a-share-token-0123456789"}),
    ("api-keys/create", {"id": "k", "key": "umami_key_0123456789", "keyPrefix": "umami_", "name": "n",
                         "createdAt": "2025-01-01T00:00:00Z"}),
    ("websites/list", {"data": [{"id": "w", "token": "caller-own-token-123"}]}),  # the caller's own, echoed
    ("teams/get", {"id": "t", "accessCode": "team_abcdef", "hasPassword": True, "passwordSet": False}),
])
def test_legitimate_credentials_and_non_secrets_are_not_findings(endpoint_id: str, body: object) -> None:
    assert _security(endpoint_id, body) == []


@pytest.mark.parametrize("body, path", [
    ({"data": [{"id": "u", "token": "someone-elses-token-0123"}]}, "$.data[*].token"),
    ({"id": "w", "user": {"apiKey": "k-0123456789"}}, "$.user.apiKey"),
    ({"id": "w", "client_secret": "s-0123456789"}, "$.client_secret"),
    ({"id": "w", "backupCodes": ["1234-5678", "2345-6789"]}, "$.backupCodes"),
])
def test_a_credential_where_the_spec_names_none_is_a_finding(body: object, path: str) -> None:
    assert [(f.cls, f.json_path) for f in _security("websites/list", body)] == [("security", path)]


def test_errors_are_not_checked() -> None:
    assert _security("admin/users", {"password": HASH}, status=500) == []


def test_declared_credential_paths_come_from_every_shape_of_the_status() -> None:
    assert {"$.token", "$.user"} <= _declared("auth/login")
    assert {"$.token", "$.shareToken"} <= _declared("me/get")  # 3.0-3.1's {token, shareToken, user}
    assert not any(p.endswith(".password") for p in _declared("admin/users"))


def test_security_comes_first_and_replaces_the_schema_finding_of_the_same_field() -> None:
    ep = _endpoint("me/get")
    body = {**USER_ROW, "createdAt": "2024-01-01T00:00:00.000Z", "isAdmin": False, "password": HASH}
    spec = ep.responses_for(200, "2.10.0")[0]
    schema = schema_findings(ep, SPECS.validator_for(spec.schema_uri), body, "curl", Redactor())
    assert ("field-added", "$.password") in {(f.cls, f.json_path) for f in schema}
    merged = with_security(security_findings(ep, _exchange(body), "curl"), schema)
    assert [(f.cls, f.json_path) for f in merged] == [("security", "$.password")]


def test_the_class_comes_first_everywhere() -> None:
    assert list(FINDING_CLASSES)[0] == "security" and class_rank("security") == 0
    results_enum = json.loads(SCHEMA_PATH.read_text())["$defs"]["finding"]["properties"]["class"]["enum"]
    assert results_enum[0] == "security" and set(results_enum) == set(FINDING_CLASSES)
    meta = yaml.safe_load((ROOT / "specs" / "meta-schema.yaml").read_text())
    known_enum = meta["$defs"]["known_differences"]["items"]["properties"]["class"]["enum"]
    assert known_enum[0] == "security"
    assert LEGEND[0][1] == "security"
    item = {"outcome": "failed", "findings": [{"class": "field-added", "known": None},
                                              {"class": "security", "known": None}]}
    assert Vocabulary({"vocabulary": vocabulary()}).item_key(item) == "security"
    records = [{"outcome": "failed", "findings": [{"class": c, "known": None} for c in ("field-added", "security")]}]
    assert list(summarize(records)["findings"]) == ["security", "field-added"]


def test_the_admin_users_hash_leak_is_a_known_security_difference() -> None:
    entries = [e for e in load_known(SPECS.root) if e.endpoint == "admin/users" and e.cls == "security"]
    assert entries and all(e.versions.contains("2.10.0") and e.versions.contains("2.20.2") for e in entries)
    findings = _security("admin/users", {"data": [{**USER_ROW, "password": HASH}]})
    apply_known(findings, entries, "admin", "first-page", ["2.20.2"])
    assert findings[0].known
    unknown = _security("admin/users", {"data": [{**USER_ROW, "password": HASH}]})
    apply_known(unknown, entries, "admin", "first-page", ["3.1.0"])  # 3.0.0 omits the password: not known there
    assert unknown[0].known is None


def test_hashes_are_never_written_to_reports_or_recordings() -> None:
    redactor = Redactor()
    assert redactor.data({"x": [{"h": HASH}], "password": "plain"}) == {"x": [{"h": "$2b$10$***"}],
                                                                         "password": "***"}
    assert recorded_data({"x": [{"h": HASH}], "password": HASH}, redactor) == {"x": [{"h": "$2b$10$***"}],
                                                                                "password": "***"}


# Security means exposure, whatever the status class: a refused role's success with other principals' objects.
SITE, TEAM, OTHER = "908aa67b-4695-4a59-9e08-ea962e87b1d8", "9f5fb0d0-c579-4bab-946b-5da41f155c11", \
    "b48553f6-63b9-4d95-a508-f18442c00697"
OWN_OF_SHARE = {SITE}  # a share token may view its website and nothing else


def _refused(endpoint_id: str, body: object, own: set[str] | None = OWN_OF_SHARE, expected: int = 401,
             allowed: bool = False) -> list[Finding]:
    ep = _endpoint(endpoint_id)
    ex = _exchange(body)
    return check_exchange(ep, expected, ex, ep.responses_for(200, "3.1.0"), SPECS.validator_for, Redactor(),
                          SPECS.error_shape("3.1.0"), role_allowed=allowed, own=own)[0]


def test_a_refused_role_given_other_principals_objects_is_security() -> None:
    """3.1.0's POST /auth/verify with a share token answers the server's teams: that is an exposure."""
    [finding] = _refused("auth/verify", {"teams": [{"id": TEAM, "name": "t", "logoUrl": None},
                                                   {"id": OTHER, "name": "u", "logoUrl": None}]})
    assert (finding.cls, finding.json_path, finding.expected, finding.actual, finding.count) == \
        ("security", "$", 401, 200, 2)
    assert "$.teams[*] (2)" in finding.message and class_rank(finding.cls) < class_rank("auth-looser")


@pytest.mark.parametrize("body", [
    {"ok": True},  # nothing of anyone's
    {"shareToken": "***", "user": None},
    {"data": [{"id": OTHER, "entityId": SITE, "name": "the website's own share"}], "count": 1},  # own by entityId
    [{"id": SITE, "name": "the shared website"}],
])
def test_a_refused_role_given_nothing_of_others_stays_auth_looser(body: object) -> None:
    assert [f.cls for f in _refused("auth/verify", body)] == ["auth-looser"]


def test_objects_inside_an_own_object_are_judged_too() -> None:
    body = {"id": SITE, "name": "the shared website", "user": {"id": OTHER, "username": "its owner"}}
    assert foreign_objects(body, OWN_OF_SHARE) == {"$.user": 1}
    assert foreign_objects({"data": [{"id": TEAM, "userId": OTHER}]}, {OTHER}) == {}  # a *Id field names an own one


@pytest.mark.parametrize("own, expected, allowed", [
    (None, 401, False),  # not judged: the admin, or a replayed answer about other objects
    ({SITE}, 404, True),  # a success for an unknown object, asked by an allowed role: a not-found defect
])
def test_the_rule_applies_only_to_a_judged_refusal(own: set[str] | None, expected: int, allowed: bool) -> None:
    findings = _refused("auth/verify", {"teams": [{"id": TEAM}]}, own=own, expected=expected, allowed=allowed)
    assert [f.cls for f in findings] == ["auth-looser" if not allowed else "status-changed"]


def test_what_each_role_owns_comes_from_the_run() -> None:
    context = {"website": {"id": SITE}, "team": {"id": TEAM}, "user": {"id": OTHER}, "viewer": {"id": "v"},
               "team_website": {"id": "tw"}}
    ex = _exchange({})
    assert own_ids("share", context, ex) == {SITE}
    assert own_ids("view-only", context, ex) == {"v", TEAM, "tw"}
    assert own_ids("user", context, ex) == {OTHER, SITE, TEAM, "tw"}
    assert own_ids("anonymous", context, ex) == set() and own_ids("admin", context, ex) is None
    ex.response.headers["x-ucf-replayed"] = "template"  # a recheck's answer about other objects: not judged
    assert own_ids("share", context, ex) is None


def test_the_auth_verify_exposure_of_3_1_0_is_a_known_security_difference() -> None:
    entries = [e for e in load_known(SPECS.root) if e.endpoint == "auth/verify" and e.roles == ["share"]
               and e.versions.contains("3.1.0")]
    assert [e.cls for e in entries] == ["security"]


def test_a_decoded_token_keeps_its_fields_in_a_recording_and_a_recorded_stand_in_is_not_type_checked() -> None:
    """2.16-2.20 /me answers the share token's payload as `shareToken`: the recorder keeps its fields (they are
    no secret), and a recheck does not take an older recording's `***` for a string where an object is due."""
    redactor = Redactor()
    assert recorded_data({"user": None, "shareToken": {"websiteId": SITE, "token": "abcdefgh12"}}, redactor) == \
        {"user": None, "shareToken": {"websiteId": SITE, "token": redactor.stand_in("abcdefgh12")}}
    validator = Draft202012Validator({"properties": {"shareToken": {"type": "object"}}})
    body = {"shareToken": "***"}
    assert [f.cls for f in schema_findings(_endpoint("me/get"), validator, body, "curl", redactor)] == ["type-changed"]
    assert schema_findings(_endpoint("me/get"), validator, body, "curl", redactor, recorded=True) == []

"""Checks classify each deviation (unit tests: crafted responses, no network)."""

from __future__ import annotations

import httpx
import pytest

from jsonschema import Draft202012Validator

from conformance.checks import check_exchange, schema_findings
from conformance.client import Exchange
from conformance.redact import Redactor

from conftest import bundled_specs

SPECS = bundled_specs()


def _exchange(status: int, body: object = None, ctype: str = "application/json; charset=utf-8") -> Exchange:
    request = httpx.Request("GET", "http://umami.test/api/me", headers={"Authorization": "Bearer s3cr3t-token"})
    headers = {"content-type": ctype} if ctype else {}
    response = httpx.Response(status, json=body, headers=headers) if body is not None else \
        httpx.Response(status, text="401 Unauthorized", headers=headers)
    return Exchange(request, response, 0.01)


def _check(endpoint_id: str, expected: int, ex: Exchange, version: str = "2.10.0"):
    ep = next(e for e in SPECS.endpoints if e.id == endpoint_id)
    responses = ep.responses_for(ex.response.status_code, version)
    redactor = Redactor()
    redactor.add("s3cr3t-token")
    return check_exchange(ep, expected, ex, responses, SPECS.validator_for, redactor,
                          SPECS.error_shape(version))


USER = {"id": "3f0b5a55-1d7e-4d43-9a0e-3a6b6bb6c0a1", "username": "admin", "role": "admin",
        "createdAt": "2024-01-01T00:00:00.000Z", "isAdmin": True}


def test_conforming_response_has_no_findings() -> None:
    findings, checked = _check("me/get", 200, _exchange(200, USER))
    assert findings == [] and checked


@pytest.mark.parametrize("body, cls, path", [
    ({**USER, "email": "a@b.c"}, "field-added", "$.email"),
    ({k: v for k, v in USER.items() if k != "role"}, "field-removed", "$.role"),
    ({**USER, "isAdmin": "yes"}, "type-changed", "$.isAdmin"),
    ({**USER, "createdAt": None}, "type-changed", "$.createdAt"),
    ({**USER, "role": "owner"}, "type-changed", "$.role"),
])
def test_schema_deviation_classes(body: dict, cls: str, path: str) -> None:
    findings, _ = _check("me/get", 200, _exchange(200, body))
    assert [(f.cls, f.json_path) for f in findings] == [(cls, path)]


@pytest.mark.parametrize("expected, actual, cls", [
    (401, 200, "auth-looser"),
    (200, 404, "endpoint-missing"),
    (200, 405, "endpoint-missing"),
    (200, 401, "auth-stricter"),
    (200, 500, "status-changed"),
])
def test_status_classes(expected: int, actual: int, cls: str) -> None:
    findings, _ = _check("me/get", expected, _exchange(actual, USER if actual == 200 else None))
    assert [f.cls for f in findings] == [cls]
    assert findings[0].expected == expected and findings[0].actual == actual


def test_content_type_change_and_redacted_curl() -> None:
    findings, _ = _check("me/get", 200, _exchange(200, USER, ctype="text/html"))
    assert [f.cls for f in findings] == ["content-type-changed"]
    assert "s3cr3t-token" not in findings[0].curl and "***" in findings[0].curl


def test_version_selects_response_shape() -> None:
    site = "8c3c4c4e-6f7a-4b8e-9d0a-1b2c3d4e5f60"
    stats_210 = {k: {"value": 1, "change": 0} for k in ("pageviews", "uniques", "bounces", "totaltime")}
    assert _check("website-stats/get-stats", 200, _exchange(200, stats_210))[0] == []
    findings, _ = _check("website-stats/get-stats", 200, _exchange(200, stats_210), version="3.0.0")
    classes = {f.cls for f in findings}
    assert "field-removed" in classes and "type-changed" in classes, site


def test_v3_error_shape_and_status_field() -> None:
    good = {"error": {"code": "unauthorized", "message": "Unauthorized", "status": 401}}
    assert _check("me/get", 401, _exchange(401, good), version="3.0.0") == ([], True)
    wrong_status = {"error": {"code": "unauthorized", "message": "Unauthorized", "status": 403}}
    findings, _ = _check("me/get", 401, _exchange(401, wrong_status), version="3.0.0")
    assert [(f.cls, f.json_path, f.expected, f.actual) for f in findings] == [
        ("value-changed", "$.error.status", 401, 403)]
    findings, _ = _check("me/get", 401, _exchange(401, None, ctype="text/plain"), version="3.0.0")
    assert [f.cls for f in findings] == ["content-type-changed", "type-changed"]
    assert _check("me/get", 401, _exchange(401, None, ctype=""), version="2.10.0") == ([], False)


def test_success_for_an_unknown_object_is_not_auth_looser() -> None:
    """A role the endpoint allows that gets 200 for an unknown id meets a not-found defect; a role the
    endpoint forbids that gets 200 is auth-looser."""
    ex = _exchange(200, {})
    [finding] = check_exchange(next(e for e in SPECS.endpoints if e.id == "me/get"), 404, ex, [],
                               SPECS.validator_for, Redactor(), None, role_allowed=True)[0]
    assert finding.cls == "status-changed"
    [finding] = check_exchange(next(e for e in SPECS.endpoints if e.id == "me/get"), 404, ex, [],
                               SPECS.validator_for, Redactor(), None, role_allowed=False)[0]
    assert finding.cls == "auth-looser"


def test_array_findings_are_grouped_per_path_pattern() -> None:
    ep = next(e for e in SPECS.endpoints if e.id == "me/get")
    validator = Draft202012Validator({"type": "array", "items": {
        "type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": False}})
    findings = schema_findings(ep, validator, [{"x": 1}, {"x": 2}, {"x": "ok", "y": 1}, {"x": 3}], "curl", Redactor())
    assert [(f.cls, f.json_path, f.count) for f in findings] == [
        ("type-changed", "$[*].x", 3), ("field-added", "$[*].y", 1)]


def test_a_schema_validator_remembers_errors_only_for_the_same_body() -> None:
    from conformance.model import SchemaValidator
    ep = next(e for e in SPECS.endpoints if e.id == "me/get")
    validator = SchemaValidator(Draft202012Validator({"type": "object", "properties": {"n": {"type": "integer"}}}))
    found = [[(f.cls, f.json_path) for f in schema_findings(ep, validator, body, "curl", Redactor())]
             for body in ({"n": 1}, {"n": 1.5}, {"n": True}, {"n": 1.5}, {"n": 1})]
    assert found == [[], [("type-changed", "$.n")], [("type-changed", "$.n")], [("type-changed", "$.n")], []]
    uri = next(r.schema_uri for r in ep.responses if r.schema_uri)
    assert SPECS.validator_for(uri) is SPECS.validator_for(uri)


def test_stale_known_differences_only_for_the_servers_versions() -> None:
    from conformance.known import KnownDifference, stale
    from conformance.versions import Versions
    old = KnownDifference("me/get", "a 2.10.0 defect", Versions(">=2.10,<2.11"), line=1, status=500)
    record = {"endpoint": "me/get", "outcome": "passed", "case": "default", "role": "admin"}
    assert stale([old], [record], versions=["3.1.0"]) == []
    assert stale([old], [record], versions=["2.10.0"]) == [old]


def test_an_unexpected_server_error_is_one_finding() -> None:
    findings, _ = _check("me/get", 200, _exchange(500, None, ctype="text/plain"), version="3.1.0")
    assert [f.cls for f in findings] == ["status-changed"]


@pytest.mark.parametrize("text, classes", [
    ("/* telemetry disabled */", []),
    ("(()=>{const i=document.createElement('img');i.setAttribute('src','https://i.umami.is/a.png?v=2.10.0');"
     "document.body.appendChild(i);})();", []),
    ("<html>not a script</html>", ["type-changed"]),
])
def test_a_text_answer_is_checked_as_one_string(text: str, classes: list[str]) -> None:
    """A schema of a text/* response describes the body text itself (GET /scripts/telemetry)."""
    ep = next(e for e in SPECS.endpoints if e.id == "server/telemetry-script")
    request = httpx.Request("GET", "http://umami.test/api/scripts/telemetry")
    ex = Exchange(request, httpx.Response(200, text=text, headers={"content-type": "text/javascript"}), 0.01)
    findings, checked = check_exchange(ep, 200, ex, ep.responses_for(200, "2.10.0"), SPECS.validator_for, Redactor())
    assert [f.cls for f in findings] == classes and checked

"""`umami-conformance openapi`: an OpenAPI 3.1 document per release, valid per openapi-spec-validator, deterministic."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from conformance.known import load_known
from conformance.loader import DEFAULT_SPECS
from conformance.openapi import build
from conftest import bundled_specs, cli_in_process


@pytest.fixture(scope="module", params=["2.10.0", "3.1.0"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    out = tmp_path_factory.mktemp("openapi") / f"umami-{request.param}.json"
    proc = cli_in_process("openapi", "--umami-version", request.param, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return request.param, json.loads(out.read_text())


def test_the_document_is_valid_openapi_3_1(exported: tuple[str, dict]) -> None:
    version, doc = exported
    validate(doc)
    assert doc["openapi"] == "3.1.0" and doc["info"]["version"] == version
    assert "umami-conformance.local" not in json.dumps(doc)  # every $ref bundled into components


def _one_path(doc: dict) -> dict:
    """The document cut to its first path and the component schemas that path needs (validating the whole
    document takes seconds; that the validator rejects a broken one is as well shown on a small one)."""
    path = next(iter(doc["paths"]))
    schemas, needed, todo = doc["components"]["schemas"], set(), [doc["paths"][path]]
    while todo:
        for name in re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(todo.pop())):
            if name not in needed:
                needed.add(name)
                todo.append(schemas[name])
    return {**doc, "paths": {path: doc["paths"][path]},
            "components": {**doc["components"], "schemas": {k: v for k, v in schemas.items() if k in needed}}}


def test_the_validator_rejects_a_broken_document(exported: tuple[str, dict]) -> None:
    _, doc = exported
    doc = _one_path(doc)
    validate(doc)
    broken = copy.deepcopy(doc)
    op = next(iter(broken["paths"].values()))
    next(iter(op.values()))["responses"]["200"] = {"content": {}}  # a response without its description
    with pytest.raises(OpenAPIValidationError):
        validate(broken)
    dangling = copy.deepcopy(doc)
    dangling["components"]["schemas"].pop(sorted(dangling["components"]["schemas"])[0])
    with pytest.raises(Exception):  # noqa: B017 - the validator's error for an unresolvable $ref varies
        validate(dangling)


def test_operations_follow_the_specs_of_the_release(exported: tuple[str, dict]) -> None:
    version, doc = exported
    specs = bundled_specs()
    ops = {op["x-umami-endpoint"]: (path, method, op) for path, item in doc["paths"].items()
           for method, op in item.items()}
    expected = {e.id for e in specs.endpoints if e.versions.contains(version)} - {"websites/reset-get"}
    assert set(ops) == expected
    for ep in specs.endpoints:
        if ep.id in ops:
            path, method, op = ops[ep.id]
            assert (path, method) == (ep.path, ep.method.lower())
            assert op["x-umami-roles"] == ep.auth
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(ep.path.replace("}", "{").split("{")[1::2])
    assert set(doc["components"]["securitySchemes"]) == {"bearer", "apiKey", "shareToken"}


def test_security_and_known_differences_of_one_operation() -> None:
    doc = build(bundled_specs(), "2.10.0", load_known(DEFAULT_SPECS))
    me = doc["paths"]["/me"]["get"]
    assert me["security"] == [{"bearer": []}, {"apiKey": []}]
    assert any(k.get("roles") == ["share"] and "share token" in k["reason"]
               for k in me["x-umami-known-differences"])
    stats = doc["paths"]["/websites/{websiteId}/stats"]["get"]
    assert {"shareToken": []} in stats["security"]
    required = {p["name"] for p in stats["parameters"] if p.get("required")}
    assert required == {"websiteId", "startAt", "endAt"}  # a case without the range expects 400
    assert doc["paths"]["/auth/login"]["post"]["security"] == [{}]
    schema = stats["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/stats.stats-2.10"}
    v3 = build(bundled_specs(), "3.1.0", [])
    error = v3["paths"]["/websites/{websiteId}/stats"]["get"]["responses"]["401"]["content"]["application/json"]
    assert error["schema"]["required"] == ["error"]  # v3 errors are JSON (errors.yaml)


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    for out in (first, second):
        assert cli_in_process("openapi", "--umami-version", "3.1.0", "--out", str(out)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    default = cli_in_process("openapi")
    assert default.returncode == 0 and json.loads(default.stdout)["info"]["version"] == "3.1.0"


def test_a_bad_version_is_one_clear_message() -> None:
    for version, message in (("nope", "not a version"), ("0.1.0", "no endpoint")):
        proc = cli_in_process("openapi", "--umami-version", version)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr

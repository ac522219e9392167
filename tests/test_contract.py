"""The three-way verdict (conformance/contract.py): a published contract vs our spec vs the answer, with a
hand-made OpenAPI document and answers: no server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.checks import Finding
from conformance.client import Exchange
from conformance.contract import DOCS_LACK, SERVER_MOVED, SPEC_BEHIND, Contract
from conformance.errors import UsageError

WEBSITE = {"type": "object", "required": ["id", "name"], "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "domain": {"type": ["string", "null"]},
    "teamId": {"$ref": "#/components/schemas/Nullable"}}}
DOC = {
    "openapi": "3.1.0",
    "components": {"schemas": {"Nullable": {"type": ["string", "null"]}}},
    "paths": {
        "/api/websites/{id}": {
            "get": {"responses": {
                "200": {"content": {"application/json": {"schema": WEBSITE}}},
                "401": {"description": "no token"},
                "404": {"content": {"text/plain": {}}}}},
            "delete": {"responses": {"200": {"description": "deleted"}}},
            "parameters": [{"name": "id", "in": "path"}]},  # not an operation
        "/api/me": {"get": {"responses": {"200": {"content": {"application/json": {"schema": {"type": "object"}}}}}}},
    }}


def _finding(cls: str, json_path: str = "$", expected: Any = 200) -> Finding:
    return Finding(cls=cls, endpoint="websites/get", json_path=json_path, expected=expected, actual=None,
                   message="m", curl="curl")


def _answer(status: int, body: Any = None) -> Exchange:
    request = httpx.Request("GET", "http://umami.test/api/websites/w-1")
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="")
    return Exchange(request, response, 0.01)


def _verdict(finding: Finding, answer: Exchange, method: str = "GET", path: str = "/websites/{websiteId}") -> str:
    return Contract(DOC, "contract.json").verdict(finding, method, path, answer)


def test_operations_are_keyed_by_method_and_path_template_without_api() -> None:
    assert set(Contract(DOC, "c").operations) == {("GET", "/websites/{}"), ("DELETE", "/websites/{}"), ("GET", "/me")}


def test_an_operation_the_contract_lacks_is_the_docs_gap() -> None:
    assert _verdict(_finding("field-added", "$.x"), _answer(200, {}), method="PATCH") == DOCS_LACK
    assert _verdict(_finding("status-changed"), _answer(500), path="/websites/{websiteId}/stats") == DOCS_LACK


def test_status_findings_ask_which_status_the_contract_documents() -> None:
    # The server answered 401 where our spec expects 200: the contract documents 401, so our spec is behind.
    assert _verdict(_finding("auth-stricter", expected=200), _answer(401)) == SPEC_BEHIND
    # The server answered 500, which the contract does not document, but our expected 200 it does.
    assert _verdict(_finding("status-changed", expected=200), _answer(500)) == SERVER_MOVED
    assert _verdict(_finding("status-changed", expected=418), _answer(500)).startswith("unclear:")


def test_schema_findings_validate_the_answer_against_the_contract_schema() -> None:
    good = {"id": "w-1", "name": "site", "domain": None, "teamId": None}
    # The answer fits the contract ($ref into components resolved): our spec is behind.
    assert _verdict(_finding("field-added", "$.teamId"), _answer(200, good)) == SPEC_BEHIND
    # The contract also rejects the field our finding is about: the server moved.
    assert _verdict(_finding("type-changed", "$.name"), _answer(200, {**good, "name": 5})) == SERVER_MOVED
    assert _verdict(_finding("field-removed", "$"), _answer(200, {"id": "w-1"})) == SERVER_MOVED  # required name
    assert _verdict(_finding("type-changed", "$"), _answer(200, {**good, "name": 5})) == SERVER_MOVED  # inside it
    assert _verdict(_finding("type-changed", "$.teamId"), _answer(200, {**good, "teamId": 5})) == SERVER_MOVED
    # The contract rejects something else than our finding's field.
    assert _verdict(_finding("field-added", "$.extra"), _answer(200, {**good, "name": 5})).startswith(
        "unclear: the contract disagrees")


def test_a_status_without_a_json_schema_is_unclear() -> None:
    assert _verdict(_finding("type-changed", "$"), _answer(404, {"error": "x"})) == \
        "unclear: the contract has no JSON schema for this status"


def test_load_reads_json_and_yaml_and_refuses_what_is_no_contract(tmp_path: Path) -> None:
    (tmp_path / "c.json").write_text(json.dumps(DOC))
    (tmp_path / "c.yaml").write_text("paths:\n  /api/me:\n    get: {responses: {'200': {description: ok}}}\n")
    assert set(Contract.load(tmp_path / "c.json").operations) == set(Contract(DOC, "c").operations)
    assert set(Contract.load(tmp_path / "c.yaml").operations) == {("GET", "/me")}
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    for name, message in (("bad.json", "cannot read the contract"), ("list.yaml", "not an OpenAPI document"),
                          ("missing.json", "cannot read the contract")):
        with pytest.raises(UsageError, match=message):
            Contract.load(tmp_path / name)

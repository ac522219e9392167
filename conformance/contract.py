"""Three-way check: a published contract (OpenAPI) vs our spec vs the live answer.

For every finding the contract tells who moved: the server (the contract agrees with our spec), our
spec (the server matches the contract), or the docs (the contract lacks the operation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conformance.checks import Finding
from conformance.client import Exchange
from conformance.errors import UsageError
from conformance.versions import template_key

URI = "urn:umami-conformance:contract"
STATUS_CLASSES = {"auth-looser", "endpoint-missing", "auth-stricter", "status-changed"}
SERVER_MOVED = "the server moved: the contract agrees with our spec"
SPEC_BEHIND = "our spec is behind: the server matches the contract"
DOCS_LACK = "the docs lack it: the contract has no such operation"


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


class Contract:
    """An OpenAPI document, its operations keyed by method and path template."""

    def __init__(self, doc: dict[str, Any], source: str) -> None:
        if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
            raise UsageError(f"{source}: not an OpenAPI document (no `paths`)")
        self.doc, self.source = doc, source
        self.registry = Registry().with_resource(URI, Resource(contents=doc, specification=DRAFT202012))
        self.operations: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        for path, item in doc["paths"].items():
            for method, op in (item or {}).items():
                if isinstance(op, dict) and method.upper() in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                    key = template_key(path.removeprefix("/api") or "/")
                    self.operations[(method.upper(), key)] = (path, op)

    @classmethod
    def load(cls, path: Path) -> Contract:
        try:
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            raise UsageError(f"{path}: cannot read the contract: {exc}") from None
        return cls(doc, str(path))

    def verdict(self, finding: Finding, method: str, path: str, exchange: Exchange) -> str:
        found = self.operations.get((method, template_key(path)))
        if found is None:
            return DOCS_LACK
        api_path, op = found
        responses = {str(k): v for k, v in (op.get("responses") or {}).items()}
        actual = str(exchange.response.status_code)
        if finding.cls in STATUS_CLASSES:
            if actual in responses:
                return SPEC_BEHIND
            if str(finding.expected) in responses:
                return SERVER_MOVED
            return "unclear: the contract documents neither status"
        schema = ((responses.get(actual) or {}).get("content") or {}).get("application/json", {}).get("schema")
        if schema is None:
            return "unclear: the contract has no JSON schema for this status"
        pointer = _pointer("paths", api_path, method.lower(), "responses", actual, "content",
                           "application/json", "schema")
        validator = Draft202012Validator({"$ref": f"{URI}#/{pointer}"}, registry=self.registry)
        errors = [e.json_path for e in validator.iter_errors(exchange.json())]
        if not errors:
            return SPEC_BEHIND
        if any(finding.json_path == p or finding.json_path.startswith(p + ".") or p.startswith(finding.json_path)
               for p in errors):
            return SERVER_MOVED
        return "unclear: the contract disagrees with the server elsewhere"

"""What the specs say of every endpoint in every release, for the cross-release API reference (`reference`).

One document (schema: umami_results/reference.schema.json): the releases of the route inventory (and the v3
contract's API version), and per endpoint the releases that have its route and its variants: runs of releases
with the same auth per role, parameters, request body fields, responses (field tables of the success bodies) and
known server defects. docgen renders it, with the results of the observed releases, into Markdown.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from conformance import __version__, openapi
from conformance.describe import field_rows
from conformance.known import KnownDifference
from conformance.model import ROLES, Endpoint, ResponseSpec, SpecSet
from conformance.values import in_words



def build(specs: SpecSet, known: list[KnownDifference]) -> dict[str, Any]:
    """The reference document of every endpoint of the specs (sorted by id)."""
    if specs.inventory is None:
        raise ValueError("no route inventory in the specs (references/umami-routes.json)")
    releases = specs.inventory.releases
    by_endpoint: dict[str, list[KnownDifference]] = {}
    for k in known:
        by_endpoint.setdefault(k.endpoint, []).append(k)
    fields = lru_cache(maxsize=None)(lambda uri: _fields(specs, uri))
    endpoints = []
    for ep in sorted(specs.endpoints, key=lambda e: e.id):
        present = [r.version for r in releases if ep.versions.contains(r.version)
                   and (r.has_route(ep.method, ep.path) or r.source == "contract")]
        errors_only = not any(openapi.exists(ep, v) for v in present) if present else False
        variants: list[dict[str, Any]] = []
        views: dict[tuple[Any, ...], dict[str, Any]] = {}
        for version in present:
            key = _applies(ep, version, specs, by_endpoint.get(ep.id, []))
            view = views.get(key)
            if view is None:
                view = views[key] = _view(ep, version, specs, by_endpoint.get(ep.id, []), fields)
            if variants and variants[-1]["view"] == view:
                variants[-1]["releases"].append(version)
            else:
                variants.append({"releases": [version], "view": view})
        endpoints.append({
            "id": ep.id, "area": ep.area, "method": ep.method, "path": ep.path, "summary": ep.summary.strip(),
            "source": ep.source, "operation_id": ep.operation_id, "versions": str(ep.versions) or "all",
            "errors_only": errors_only, "releases": present,
            "variants": [{"releases": v["releases"], **v["view"]} for v in variants]})
    return {
        "tool": "umami-conformance", "tool_version": __version__, "kind": "reference",
        "releases": [{"version": r.version, "source": r.source} for r in releases],
        "roles": list(ROLES),
        "areas": [{"name": a.name, "title": a.title} for a in sorted(specs.areas, key=lambda a: a.name)],
        "endpoints": endpoints,
    }


def _applies(ep: Endpoint, version: str, specs: SpecSet, known: list[KnownDifference]) -> tuple[Any, ...]:
    """What of the specs applies in `version`: releases with the same parts have the same view."""
    return (tuple(c.versions.contains(version) for c in ep.cases if c.versions),
            tuple(r.versions.contains(version) for r in ep.responses),
            tuple(k.applies([version]) for k in known), id(specs.error_shape(version)))


def _view(ep: Endpoint, version: str, specs: SpecSet, known: list[KnownDifference], fields: Any) -> dict[str, Any]:
    """What the specs say of `ep` in one release."""
    cases = openapi.release_cases(ep, version)
    body = openapi.request_body(ep, cases)
    error = specs.error_shape(version)
    sent = {"path": [c.path_params for c in cases], "query": [c.query for c in cases],
            "body": [c.body for c in cases if isinstance(c.body, dict)]}
    return {
        "auth": {role: ep.auth[role] for role in ROLES if role in ep.auth},
        "parameters": [{"name": p["name"], "in": p["in"], **_typed(p["schema"], sent[p["in"]], p["name"]),
                        "required": p["in"] == "path" or bool(p.get("required"))}
                       for p in openapi.parameters(ep, cases)],
        "body": _body(body["content"]["application/json"]["schema"], sent["body"],
                      [c.body for c in cases if c.body is not None]) if body else [],
        "responses": [_response(status, [r for r in ep.responses if r.status == status
                                         and r.versions.contains(version)], fields)
                      for status in sorted({r.status for r in ep.responses if r.versions.contains(version)}
                                           | set(ep.auth.values()))],
        "error_format": " ".join(error.description.split()) if error else "",
        "known": [_known(k) for k in known if k.applies([version])],
    }


def _body(schema: dict[str, Any], sent: list[dict[str, Any]], bodies: list[Any]) -> list[dict[str, Any]]:
    """The request body's fields (or the body itself, `$`, when it is not an object)."""
    if "properties" not in schema:
        return [{"name": "$", **_typed(schema, [{"$": b} for b in bodies], "$"), "required": True}]
    return [{"name": name, **_typed(sub, sent, name), "required": name in schema.get("required", [])}
            for name, sub in schema["properties"].items()]


def _typed(schema: dict[str, Any], sent: list[dict[str, Any]], name: str) -> dict[str, str]:
    """Type (with format) of a value schema of openapi.parameters, and an example: a literal value the cases
    send, else what their placeholder stands for."""
    kind = schema["type"] if isinstance(schema["type"], str) else " or ".join(schema["type"])
    if schema.get("format"):
        kind += f" ({schema['format']})"
    if schema.get("examples"):
        return {"type": kind, "example": example_text(schema["examples"][0])}
    values = [s[name] for s in sent if name in s]
    return {"type": kind, "example": example_text(values[0]) if values else ""}


def example_text(value: Any) -> str:
    """A value the specs send (a string as it is, anything else as JSON), placeholders as words (`${website.id}`
    is `<website id>`, `${now-7d}` is `<epoch ms: now-7d>`)."""
    return in_words(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))


def _response(status: int, shapes: list[ResponseSpec], fields: Any) -> dict[str, Any]:
    return {"status": status,
            "description": "; ".join(" ".join(r.description.split()) for r in shapes if r.description.strip()),
            "content_type": next((r.content_type for r in shapes if r.content_type), "application/json"
                                 if any(r.schema is not None for r in shapes) else ""),
            "shapes": [fields(r.schema_uri) for r in shapes if r.schema is not None and 200 <= status < 300]}


def _fields(specs: SpecSet, uri: str) -> list[dict[str, Any]]:
    """A response schema as a field table: path, type, nullable, required, what it is."""
    rows = field_rows({"$ref": uri}, specs.registry.resolver())
    out = []
    for row in rows:
        kinds = row["type"].split(" or ")
        nullable = "null" in kinds and len(kinds) > 1
        out.append({"path": row["path"], "type": " or ".join(k for k in kinds if k != "null" or not nullable),
                    "nullable": nullable, "required": row["required"] == "yes",
                    "description": " ".join(row["description"].split())})
    return out


def _known(k: KnownDifference) -> dict[str, Any]:
    return {"versions": str(k.versions), "class": k.cls, "status": k.status, "json_path": k.json_path,
            "roles": k.roles, "cases": k.cases, "reason": " ".join(k.reason.split())}

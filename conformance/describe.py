"""What results.json tells the docs besides the items: each endpoint as its spec describes it (parameters, auth
per role, the success schema's fields) and the vocabularies (roles, outcomes, finding classes in their order)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from conformance.model import ROLES, Endpoint, SpecSet
from conformance.objects import PREFIX_PATTERN
from conformance.values import PLACEHOLDER, in_words
from umami_results.vocabulary import FINDING_CLASSES, FINDING_GROUPS, OUTCOMES, SKIP_CODES



def vocabulary() -> dict[str, Any]:
    return {"roles": list(ROLES),
            "outcomes": [{"name": name.value, "description": text} for name, text in OUTCOMES.items()],
            "skip_codes": [{"name": code.value, "description": text} for code, text in SKIP_CODES.items()],
            "finding_classes": [{"name": cls, "group": FINDING_GROUPS.get(cls, "structure"), "description": text}
                                for cls, text in FINDING_CLASSES.items()],
            "run_prefix": PREFIX_PATTERN.pattern.lstrip("^")}


def field_rows(schema: Any, resolver: Any, path: str = "$", required: bool = True,
               depth: int = 0) -> list[dict[str, str]]:
    """The response schema as a flat field table: JSON path, type, required, description."""
    hops = 0
    while isinstance(schema, dict) and "$ref" in schema and hops < 10:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver, hops = resolved.contents, resolved.resolver, hops + 1
    if not isinstance(schema, dict) or depth > 8:
        return []
    variants = schema.get("oneOf") or schema.get("anyOf")
    if variants:
        types = []
        for v in variants:
            rows = field_rows(v, resolver, path, required, depth + 1)
            types.append(rows[0]["type"] if rows else "any")
        return [{"path": path, "type": " or ".join(types), "required": "yes" if required else "no",
                 "description": schema.get("description", "")}]
    kind = schema.get("type", "enum" if "enum" in schema else "any")
    kind = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if "enum" in schema:
        kind += " (" + ", ".join(json.dumps(e) for e in schema["enum"]) + ")"
    rows = [{"path": path, "type": kind, "required": "yes" if required else "no",
             "description": schema.get("description", "")}]
    for name, sub in sorted(schema.get("properties", {}).items()):
        rows += field_rows(sub, resolver, f"{path}.{name}", name in schema.get("required", []), depth + 1)
    if isinstance(schema.get("items"), dict):
        rows += field_rows(schema["items"], resolver, f"{path}[*]", True, depth + 1)
    return rows


def endpoint_view(ep: Endpoint, specs: SpecSet, version: str | None) -> dict[str, Any]:
    """Summary, versions, parameters (values per case, placeholders in words), auth per role and the success
    schema's field table."""
    uses: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for case in ep.cases:
        for where, values in (("path", case.path_params), ("query", case.query),
                              ("body", case.body if isinstance(case.body, dict) else {})):
            for name, value in values.items():
                whole = isinstance(value, str) and PLACEHOLDER.fullmatch(value)  # a number or id when sent: no quotes
                uses[(where, name)][in_words(value if whole else json.dumps(value, ensure_ascii=False))].append(
                    case.name)
    params = [{"where": where, "name": name,
               "values": [f"`{value}`" + ("" if len(cases) == len(ep.cases) else f" ({', '.join(cases)})")
                          for value, cases in sorted(by_value.items())]}
              for (where, name), by_value in sorted(uses.items())]
    success = [r for r in ep.responses if 200 <= r.status < 300 and r.schema is not None
               and (version is None or r.versions.contains(version, prereleases=True))]
    fields = (field_rows(success[0].schema, specs.registry.resolver(base_uri=success[0].schema_uri))
              if success else [])
    return {"summary": ep.summary, "versions": str(ep.versions) or "all",
            "params": params, "auth": [{"role": role, "status": ep.auth[role]} for role in ROLES if role in ep.auth],
            "fields": fields, "schema_status": success[0].status if success else None}


def endpoint_views(specs: SpecSet, endpoint_ids: set[str], version: str | None) -> dict[str, dict[str, Any]]:
    """The views of the endpoints a run has items of, by id."""
    return {ep.id: endpoint_view(ep, specs, version) for ep in sorted(specs.endpoints, key=lambda e: e.id)
            if ep.id in endpoint_ids}

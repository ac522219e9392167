"""An OpenAPI 3.1 document for one Umami release, built from the specs (`umami-conformance openapi`).

Paths, parameters, request bodies and responses come from the endpoints, cases and response schemas that apply
to the release; the schemas' `$ref`s are bundled into `components/schemas`. The role matrix is `x-umami-roles`,
the known differences are `x-umami-known-differences`. The same specs and release give the same bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urldefrag, urljoin

import yaml
from packaging.version import InvalidVersion, Version

from conformance import __version__
from conformance.errors import UsageError
from conformance.known import KnownDifference
from conformance.model import PATH_PARAM, SCHEMA_BASE, Case, Endpoint, SpecSet

LOGIN_ROLES = ("admin", "user", "view-only")
ID_PLACEHOLDER = re.compile(r"^\$\{(website|user|team|team_website|target|viewer)\.id\}$")
# Placeholders for epoch-ms times: `${now-7d}`, and where the run's seed began (`${now-1d.iso}` is a string).
NOW_PLACEHOLDER = re.compile(r"^\$\{(now([+-]\d+[smhdw])?|website\.seededSince)\}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "The token of POST /auth/login, sent as `Authorization: Bearer <token>`."},
    "apiKey": {"type": "apiKey", "in": "header", "name": "x-umami-api-key",
               "description": "An Umami Cloud API key (https://api.umami.is/v1), instead of a login."},
    "shareToken": {"type": "apiKey", "in": "header", "name": "x-umami-share-token",
                   "description": "The token of GET /share/{shareId}: reads one shared website."},
}
ROLE_TEXT = ("Roles of `x-umami-roles` (the status each role gets): `admin` the administrator login (or an Umami Cloud "
             "API key), `user` a regular user who owns the website, `view-only` a view-only team member, `share` a "
             "share-token holder of the website, `anonymous` no credentials.")


def default_version(specs: SpecSet) -> str:
    """The newest release of the route inventory."""
    releases = [r.version for r in specs.inventory.releases if r.source == "release"] if specs.inventory else []
    if not releases:
        raise UsageError("no route inventory in the specs: give --umami-version")
    return releases[-1]


def build(specs: SpecSet, version: str, known: list[KnownDifference]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `version`."""
    try:
        Version(version)
    except InvalidVersion:
        raise UsageError(f"--umami-version {version!r} is not a version (e.g. 2.10.0)") from None
    known_releases = specs.inventory.versions if specs.inventory else []
    if known_releases and Version(version) < Version(known_releases[0]):
        raise UsageError(f"no endpoint of the specs applies to Umami {version}: they know releases "
                         f"{known_releases[0]} and later")
    endpoints = [e for e in specs.endpoints if e.versions.contains(version) and exists(e, version)]
    if not endpoints:
        raise UsageError(f"no endpoint of the specs applies to Umami {version}")
    bundle = _Bundle(specs)
    error = specs.error_shape(version)
    taken = {e.operation_id for e in endpoints}
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        unique = ep.operation_id and sum(e.operation_id == ep.operation_id for e in endpoints) == 1
        op_id = ep.operation_id if unique else _camel(ep.id, taken)
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, op_id, version, bundle, error, known)
    areas = {e.area for e in endpoints}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": f"Umami {version} API",
            "version": version,
            "description": (f"The REST API of Umami {version} as the umami-conformance specs describe it. Not an "
                            "official Umami document: each operation names its sources (`x-umami-source`), its "
                            f"known differences from real servers (`x-umami-known-differences`). {ROLE_TEXT}"),
        },
        "servers": [{"url": "http://localhost:3000/api", "description": "a self-hosted Umami (<origin>/api)"},
                    {"url": "https://api.umami.is/v1", "description": "Umami Cloud (its newest release)"}],
        "tags": [{"name": a.name, "description": (a.title + (f": {a.description.strip()}" if a.description else ""))}
                 for a in specs.areas if a.name in areas],
        "paths": paths,
        "components": {"schemas": bundle.components, "securitySchemes": SECURITY_SCHEMES},
        "x-umami-version": version,
        "x-generator": f"umami-conformance {__version__}",
    }


def dumps(doc: dict[str, Any], yaml_format: bool = False) -> str:
    """Deterministic text: keys sorted."""
    if yaml_format:
        return yaml.safe_dump(doc, sort_keys=True, allow_unicode=True, width=120)
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def exists(ep: Endpoint, version: str) -> bool:
    """Whether the endpoint is an operation of the release: some role or response is a success (a spec that
    expects only errors checks a route that is absent)."""
    return any(200 <= s < 300 for s in ep.auth.values()) or any(
        200 <= r.status < 300 for r in ep.responses if r.versions.contains(version))


def _camel(endpoint_id: str, taken: set[str | None]) -> str:
    words = re.split(r"[^A-Za-z0-9]+", endpoint_id)
    name = words[0] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def release_cases(ep: Endpoint, version: str) -> list[Case]:
    return [c for c in ep.cases if not c.versions or c.versions.contains(version)]


def _success(ep: Endpoint, case: Case) -> bool:
    statuses = [case.status] if case.status is not None else [ep.auth[r] for r in (case.roles or ep.auth)
                                                               if r in ep.auth]
    return any(200 <= s < 300 for s in statuses)


def _operation(ep: Endpoint, op_id: str, version: str, bundle: _Bundle, error: Any,
               known: list[KnownDifference]) -> dict[str, Any]:
    cases = release_cases(ep, version)
    op: dict[str, Any] = {
        "operationId": op_id, "summary": ep.summary, "tags": [ep.area], "security": _security(ep.auth),
        "parameters": parameters(ep, cases), "responses": _responses(ep, cases, version, bundle, error),
        "x-umami-endpoint": ep.id, "x-umami-versions": str(ep.versions) or "all", "x-umami-source": ep.source,
        "x-umami-roles": dict(ep.auth),
        "x-umami-cases": [{k: v for k, v in (("name", c.name), ("status", c.status), ("roles", c.roles),
                                             ("description", c.description)) if v}
                          for c in cases],
    }
    if not op["parameters"]:
        del op["parameters"]
    body = request_body(ep, cases)
    if body:
        op["requestBody"] = body
    notes = [_note(k) for k in known if k.endpoint == ep.id and k.applies([version])]
    if notes:
        op["x-umami-known-differences"] = notes
    return op


def _note(k: KnownDifference) -> dict[str, Any]:
    fields = (("class", k.cls), ("status", k.status), ("json_path", k.json_path), ("roles", k.roles),
              ("cases", k.cases), ("versions", str(k.versions) or None),
              ("expires", k.expires.isoformat() if k.expires else None), ("reason", k.reason))
    return {key: value for key, value in fields if value is not None}


def _security(auth: dict[str, int]) -> list[dict[str, list[str]]]:
    ok = {role for role, status in auth.items() if 200 <= status < 300}
    if "anonymous" in ok:
        return [{}]
    found = []
    if ok & set(LOGIN_ROLES) or not ok:
        found += [{"bearer": []}, {"apiKey": []}]
    if "share" in ok:
        found.append({"shareToken": []})
    return found


def _value_schema(values: list[Any]) -> dict[str, Any]:
    """A JSON Schema for the values the cases send (placeholders stand for ids and epoch-ms times)."""
    types: set[str] = set()
    uuid = True
    for v in values:
        if isinstance(v, bool):
            types.add("boolean")
        elif isinstance(v, int):
            types.add("integer")
        elif isinstance(v, float):
            types.add("number")
        elif isinstance(v, list):
            types.add("array")
        elif isinstance(v, dict):
            types.add("object")
        elif v is None:
            types.add("null")
        elif isinstance(v, str) and NOW_PLACEHOLDER.match(v):
            types.add("integer")
        else:
            types.add("string")
        uuid = uuid and isinstance(v, str) and bool(ID_PLACEHOLDER.match(v) or UUID.match(v))
    if types == {"integer", "number"}:
        types = {"number"}
    schema: dict[str, Any] = {"type": sorted(types)[0] if len(types) == 1 else sorted(types)}
    if uuid and values:
        schema["format"] = "uuid"
    examples = sorted({json.dumps(v, sort_keys=True) for v in values if not _placeholder(v)})
    if examples:
        schema["examples"] = [json.loads(e) for e in examples[:5]]
    return schema


def _placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_placeholder(v) for v in value)
    return False


def _required(name: str, cases: list[Case], ep: Endpoint, values_of: Any) -> bool:
    """Required when every success case sends it and a case without it expects a client error: evidence, not a
    guess from the cases alone."""
    success = [c for c in cases if _success(ep, c)]
    without = [c for c in cases if name not in values_of(c)]
    return bool(success) and all(name in values_of(c) for c in success) and any(
        c.status is not None and 400 <= c.status < 500 for c in without)


def parameters(ep: Endpoint, cases: list[Case]) -> list[dict[str, Any]]:
    params = []
    for name in PATH_PARAM.findall(ep.path):
        values = [c.path_params[name] for c in cases if name in c.path_params]
        params.append({"name": name, "in": "path", "required": True, "schema": _value_schema(values)})
    names = sorted({k for c in cases for k in c.query})
    for name in names:
        values = [c.query[name] for c in cases if name in c.query]
        param = {"name": name, "in": "query", "schema": _value_schema(values)}
        if _required(name, cases, ep, lambda c: c.query):
            param["required"] = True
        params.append(param)
    return params


def request_body(ep: Endpoint, cases: list[Case]) -> dict[str, Any] | None:
    bodies = [c.body for c in cases if c.body is not None]
    if not bodies or ep.method == "GET":
        return None
    if all(isinstance(b, dict) for b in bodies):
        props = {k: _value_schema([b[k] for b in bodies if k in b]) for k in sorted({k for b in bodies for k in b})}
        schema: dict[str, Any] = {"type": "object", "properties": props}
        required = [k for k in props if _required(k, cases, ep, lambda c: c.body if isinstance(c.body, dict) else {})]
        if required:
            schema["required"] = required
    else:
        schema = _value_schema(bodies)
    return {"required": all(c.body is not None for c in cases),
            "description": "The properties the suite's requests send (not a full contract).",
            "content": {"application/json": {"schema": schema}}}


def _responses(ep: Endpoint, cases: list[Case], version: str, bundle: _Bundle, error: Any) -> dict[str, Any]:
    statuses = {r.status for r in ep.responses if r.versions.contains(version)}
    statuses |= set(ep.auth.values()) | {c.status for c in cases if c.status is not None}
    out: dict[str, Any] = {}
    for status in sorted(statuses):
        specs = [r for r in ep.responses if r.status == status and r.versions.contains(version)]
        descriptions = [r.description.strip() for r in specs if r.description.strip()]
        roles = sorted(role for role, s in ep.auth.items() if s == status)
        text = "; ".join(descriptions) or (f"the answer for {', '.join(roles)}" if roles else f"HTTP {status}")
        response: dict[str, Any] = {"description": text}
        content: dict[str, list[dict[str, Any]]] = {}
        for r in specs:
            if r.schema is not None:
                content.setdefault(r.content_type or "application/json", []).append(bundle.schema(r.schema_uri))
            elif r.content_type:
                content.setdefault(r.content_type, [])
        if not content and status >= 400 and error is not None and error.schema_uri:
            content["application/json"] = [bundle.schema(error.schema_uri)]  # else no body the specs describe
        if content:
            response["content"] = {ct: ({"schema": s[0] if len(s) == 1 else {"anyOf": s}} if s else {})
                                   for ct, s in content.items()}
        out[str(status)] = response
    return out


class _Bundle:
    """The schemas of the registry as `components/schemas`: `file.yaml#/$defs/NAME` becomes `file.NAME`, a whole
    file `file`, an inline schema is written in place (its own `$defs`, if any, become components too)."""

    def __init__(self, specs: SpecSet) -> None:
        self.specs = specs
        self.components: dict[str, Any] = {}

    def schema(self, uri: str) -> dict[str, Any]:
        """The schema registered at `uri` (a response's or an error shape's) with its `$ref`s rewritten."""
        contents = self.specs.registry.contents(uri)
        if uri.startswith(SCHEMA_BASE + "inline-"):
            return self._rewrite(_strip(contents), uri)
        return {"$ref": self._component(uri, "")}

    def _name(self, uri: str) -> str:
        name = uri[len(SCHEMA_BASE):] if uri.startswith(SCHEMA_BASE) else uri
        return COMPONENT_NAME.sub("_", name.removesuffix(".yaml"))

    def _component(self, uri: str, pointer: str) -> str:
        """The `#/components/schemas/...` reference for `pointer` within the resource `uri`; adds what it needs."""
        parts = pointer.split("/")[1:] if pointer else []
        if len(parts) >= 2 and parts[0] == "$defs":
            name, rest = f"{self._name(uri)}.{COMPONENT_NAME.sub('_', parts[1])}", parts[2:]
            if name not in self.components:
                self.components[name] = {}
                self.components[name] = self._rewrite(self.specs.registry.contents(uri)["$defs"][parts[1]], uri)
        else:
            name, rest = self._name(uri), parts
            if name not in self.components:
                self.components[name] = {}
                self.components[name] = self._rewrite(_strip(self.specs.registry.contents(uri)), uri)
        return "#/components/schemas/" + "/".join([name, *rest])

    def _rewrite(self, node: Any, base: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    target, fragment = urldefrag(urljoin(base, value))
                    out[key] = self._component(target, fragment)
                else:
                    out[key] = self._rewrite(value, base)
            return out
        if isinstance(node, list):
            return [self._rewrite(v, base) for v in node]
        return node


def _strip(schema: Any) -> Any:
    """A resource's root without what components do not keep (`$schema`, `$id`, its `$defs`)."""
    if not isinstance(schema, dict):
        return schema
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id", "$defs")}

"""Checks of one exchange against its spec: status, content type, schema -> classified findings."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from conformance.client import Exchange
from conformance.model import Endpoint, ErrorShape, ResponseSpec, SchemaValidator
from conformance.redact import HASH_VALUE, REDACTED, REDACTED_HASH, Redactor
from umami_results.vocabulary import FINDING_CLASSES


def class_rank(cls: str) -> int:
    """The position of a finding class, most severe (security) first; unknown classes last."""
    return list(FINDING_CLASSES).index(cls) if cls in FINDING_CLASSES else len(FINDING_CLASSES)


DENIED = {401, 403, 404}
MISSING = {404, 405}
TYPE_KEYWORDS = {"type", "enum", "const", "format"}
# Security: field names are compared lower-case without "_" and "-". A password (or its hash) is never a
# legitimate answer; a credential (token, key, secret) is one only where the endpoint's spec names it (the
# login's token, /me's token and shareToken, a share link's token, a new API key), or when it is the caller's
# own credential echoed back. A hash is recognised by its value, whatever the field is called.
PASSWORD_NAME = re.compile(r"pass(word|wd|phrase)|^pwd$")
CREDENTIAL_NAME = re.compile(r"(token|secret|apikey|privatekey|authkey|clientkey|backupcodes|recoverycodes)$|^secret")
ARRAY_INDEX = re.compile(r"\[\d+\]")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # a key a JSON path writes as `.key`
HASH_KINDS = (("$2", "bcrypt hash"), ("$argon2", "argon2 hash"), ("$scrypt", "scrypt hash"),
              ("$pbkdf2", "pbkdf2 hash"), ("$5$", "sha-crypt hash"), ("$6$", "sha-crypt hash"))


@dataclass
class Finding:
    """One classified deviation."""

    cls: str
    endpoint: str
    json_path: str
    expected: Any
    actual: Any
    message: str
    curl: str
    known: str | None = None  # reason from known-differences.yaml when accepted
    contract: str | None = None  # three-way verdict when a published contract is at hand
    count: int = 1  # how many array items show this deviation at this path pattern

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["class"] = data.pop("cls")
        return data


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def foreign_objects(body: Any, own: set[str]) -> dict[str, int]:
    """The objects of other principals in a body: JSON path pattern -> count. An object is a JSON object with
    a string `id`; it is the caller's own when its `id` or any of its `...Id` fields (`websiteId`, `userId`,
    `teamId`, `entityId`) is one of `own` (the ids of what the role owns or may view), and then its fields are
    looked at in turn; a foreign object is counted once, with what it holds."""
    found: dict[str, int] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
            return
        if not isinstance(value, dict):
            return
        if isinstance(value.get("id"), str):
            ids = {v for k, v in value.items() if (k == "id" or k.endswith("Id")) and isinstance(v, str)}
            if not ids & own:
                pattern = path_pattern(path)
                found[pattern] = found.get(pattern, 0) + 1
                return
        for key, item in value.items():
            walk(item, _child_path(path, str(key)))

    walk(body, "$")
    return found


def status_finding(endpoint: Endpoint, expected: int, actual: int, curl: str, role_allowed: bool = False,
                   body: Any = None, own: set[str] | None = None) -> Finding:
    """Classify a status mismatch. A 404 expected of a role the endpoint allows is about an object that
    does not exist, not a permission: a success there is a not-found defect (status-changed). A success for
    a role that must be refused is `auth-looser`, or `security` when its body holds other principals'
    objects (`foreign_objects`; `own`: the ids of what the role owns or may view, None: not judged)."""
    if expected in DENIED and 200 <= actual < 300 and not (expected == 404 and role_allowed):
        foreign = foreign_objects(body, own) if own is not None else {}
        if foreign:
            where = ", ".join(f"{path} ({n})" for path, n in foreign.items())
            return Finding("security", endpoint.id, "$", expected, actual,
                           f"expected HTTP {expected}, got HTTP {actual} with objects of other principals: {where}",
                           curl, count=sum(foreign.values()))
        cls = "auth-looser"
    elif 200 <= expected < 300 and actual in MISSING:
        cls = "endpoint-missing"
    elif 200 <= expected < 300 and actual in (401, 403):
        cls = "auth-stricter"
    else:
        cls = "status-changed"
    return Finding(cls, endpoint.id, "$", expected, actual,
                   f"expected HTTP {expected}, got HTTP {actual}", curl)


def content_type_finding(endpoint: Endpoint, spec: ResponseSpec, actual: str | None,
                         curl: str) -> Finding | None:
    if spec.content_type is None:
        return None
    media = (actual or "").split(";")[0].strip().lower()
    if media == spec.content_type.lower():
        return None
    return Finding("content-type-changed", endpoint.id, "$", spec.content_type, media or None,
                   f"expected content type {spec.content_type}, got {media or 'none'}", curl)


def path_pattern(json_path: str) -> str:
    """`$.data[3].x` -> `$.data[*].x`: array items share one pattern."""
    return ARRAY_INDEX.sub("[*]", json_path)


def schema_findings(endpoint: Endpoint, validator: SchemaValidator | Draft202012Validator, body: Any,
                    curl: str, redactor: Redactor, recorded: bool = False) -> list[Finding]:
    """All schema errors of `body`: one finding per class and JSON path pattern (array items grouped,
    with their count), one per field for added/removed fields. `recorded`: the body comes from a recording,
    where `***` stands for a value the recorder hid (a secret field, whatever its type): not checked."""
    findings: dict[tuple[str, str], Finding] = {}
    seen: set[tuple[str, str]] = set()
    for error in sorted(validator.iter_errors(body), key=lambda e: e.json_path):
        if recorded and _leaf(error).instance == REDACTED:
            continue
        for finding in _classify(endpoint, _leaf(error), curl, redactor):
            concrete = (finding.cls, finding.json_path)
            if concrete in seen:  # jsonschema reports `required` once per missing key; each yields all keys
                continue
            seen.add(concrete)
            finding.json_path = path_pattern(finding.json_path)
            first = findings.setdefault((finding.cls, finding.json_path), finding)
            if first is not finding:
                first.count += 1
    return list(findings.values())


def _leaf(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the most relevant sub-error (deepest, as jsonschema's best_match does)."""
    while error.context:
        error = max(error.context, key=lambda e: len(e.path))
    return error


def _classify(endpoint: Endpoint, error: ValidationError, curl: str, redactor: Redactor) -> list[Finding]:
    path = error.json_path
    schema = error.schema if isinstance(error.schema, dict) else {}
    instance = error.instance
    if error.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(instance, dict):
        known = set(schema.get("properties", {}))
        return [Finding("field-added", endpoint.id, f"{path}.{key}", None,
                        json_type(instance[key]), f"field {key!r} is not in the spec", curl)
                for key in sorted(instance) if key not in known]
    if error.validator == "required" and isinstance(instance, dict):
        return [Finding("field-removed", endpoint.id, f"{path}.{key}", "present", None,
                        f"required field {key!r} is missing", curl)
                for key in schema.get("required", []) if key not in instance]
    if error.validator in TYPE_KEYWORDS:
        expected = error.validator_value
        actual = redactor.data(instance) if error.validator in ("enum", "const") else json_type(instance)
        if error.validator == "format":
            actual = redactor.data(instance)
        return [Finding("type-changed", endpoint.id, path, expected, actual,
                        f"{error.validator}: expected {expected!r}, got {actual!r}", curl)]
    return [Finding("value-changed", endpoint.id, path, {error.validator: error.validator_value},
                    redactor.data(instance) if not isinstance(instance, (dict, list)) else json_type(instance),
                    redactor.text(error.message[:300]), curl)]


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if IDENTIFIER.fullmatch(key) else f"{path}[{key!r}]"


def _is_hash(value: str) -> bool:
    """A password hash, or one a recording or report already redacted to its scheme (`$2b$10$***`)."""
    return bool(HASH_VALUE.match(value) or REDACTED_HASH.match(value))


def _hash_kind(value: str) -> str:
    return next((kind for start, kind in HASH_KINDS if value.startswith(start)), "password hash")


def _exposure(key: str, value: Any, path: str, declared: set[str], own: set[str]) -> tuple[str, str] | None:
    """(what, why) when the field `key` = `value` at `path` exposes a secret, else None. Never the value."""
    texts = value if isinstance(value, list) else [value]
    if not texts or not all(isinstance(v, str) and v for v in texts):
        return None  # only text is a secret: a flag such as `hasPassword: true` is not
    name = key.lower().replace("_", "").replace("-", "")
    kind = next((_hash_kind(v) for v in texts if _is_hash(v)), None)
    if PASSWORD_NAME.search(name):  # one description whatever the value (a recording has `***` for it)
        return (f"{json_type(value)} (a password or its hash)",
                f"field {key!r} exposes a password{f' ({kind})' if kind else ''}: no answer may carry one")
    if kind:
        return f"{json_type(value)} ({kind})", f"field {key!r} holds a {kind}: no answer may carry one"
    if CREDENTIAL_NAME.search(name) and path_pattern(path) not in declared and not set(texts) <= own:
        return (f"{json_type(value)} (a credential)",
                f"field {key!r} looks like a credential and the spec names none at this path")
    return None


def security_findings(endpoint: Endpoint, exchange: Exchange, curl: str, declared: set[str] = frozenset(),
                      own: set[str] = frozenset()) -> list[Finding]:
    """Secrets in a success answer, whatever its shape and whether or not a schema holds: a password or a
    password hash anywhere, a credential where the spec names none (`declared`: JSON path patterns) and that
    is not the caller's own (`own`). One finding per JSON path pattern, with the count of array items."""
    if not exchange.response.is_success:
        return []
    body = exchange.body
    findings: dict[str, Finding] = {}

    def add(path: str, what: str, why: str) -> None:
        pattern = path_pattern(path)
        if pattern in findings:
            findings[pattern].count += 1
        else:
            findings[pattern] = Finding("security", endpoint.id, pattern, "absent", what, why, curl)

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                child = _child_path(path, str(key))
                exposed = _exposure(str(key), item, child, declared, own)
                if exposed:
                    add(child, *exposed)
                else:
                    walk(item, child)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")
        elif isinstance(value, str) and _is_hash(value):
            add(path, f"string ({_hash_kind(value)})", f"a {_hash_kind(value)} in the answer: no answer may carry one")

    if body is None:
        text = exchange.response.text
        if HASH_VALUE.search(text or ""):
            add("$", "text (a password hash)", "the answer's text holds a password hash: no answer may carry one")
    else:
        walk(body, "$")
    return list(findings.values())


def with_security(security: list[Finding], findings: list[Finding]) -> list[Finding]:
    """Security findings first; a schema finding about the same field (a password hash as `field-added`)
    is the same deviation, reported once under the more severe class."""
    paths = {f.json_path for f in security}
    return security + [f for f in findings if f.json_path not in paths]


def declared_paths(schema: Any, resolver: Any, path: str = "$", out: set[str] | None = None,
                   depth: int = 0) -> set[str]:
    """Every JSON path pattern a response schema names a property at (all variants of oneOf/anyOf/allOf,
    $refs followed); a property whose schema is `false` is forbidden, not named."""
    out = set() if out is None else out
    hops = 0
    while isinstance(schema, dict) and "$ref" in schema and hops < 10:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver, hops = resolved.contents, resolved.resolver, hops + 1
    if not isinstance(schema, dict) or depth > 12:
        return out
    for keyword in ("oneOf", "anyOf", "allOf"):
        for variant in schema.get(keyword) or []:
            declared_paths(variant, resolver, path, out, depth + 1)
    for keyword in ("then", "else"):
        if keyword in schema:
            declared_paths(schema[keyword], resolver, path, out, depth + 1)
    for name, sub in (schema.get("properties") or {}).items():
        if sub is not False:
            child = _child_path(path, name)
            out.add(child)
            declared_paths(sub, resolver, child, out, depth + 1)
    for sub in [schema.get("items"), *(schema.get("prefixItems") or [])]:
        if isinstance(sub, dict):
            declared_paths(sub, resolver, f"{path}[*]", out, depth + 1)
    return out


def error_findings(endpoint: Endpoint, shape: ErrorShape, validator: SchemaValidator | Draft202012Validator | None,
                   exchange: Exchange, curl: str, redactor: Redactor) -> list[Finding]:
    """An error body against the error shape of the server's version (status field included)."""
    spec = ResponseSpec(exchange.response.status_code, shape.versions, shape.content_type, None, "")
    ct = content_type_finding(endpoint, spec, exchange.response.headers.get("content-type"), curl)
    findings = [ct] if ct else []
    if validator is None:
        return findings
    body = exchange.body
    findings += schema_findings(endpoint, validator, body, curl, redactor)
    if shape.status_pointer and not findings:
        node: Any = body
        for part in shape.status_pointer.strip("/").split("/"):
            node = node.get(part) if isinstance(node, dict) else None
        if node != exchange.response.status_code:
            path = "$" + shape.status_pointer.replace("/", ".")
            findings.append(Finding("value-changed", endpoint.id, path, exchange.response.status_code, node,
                                    "the error's status field differs from the HTTP status", curl))
    return findings


def check_exchange(endpoint: Endpoint, expected_status: int, exchange: Exchange,
                   responses: list[ResponseSpec], validator_for: Any, redactor: Redactor,
                   error_shape: ErrorShape | None = None, role_allowed: bool = False,
                   own: set[str] | None = None) -> tuple[list[Finding], bool]:
    """All findings for one exchange and whether a schema was checked (`own`: see `status_finding`)."""
    curl = redactor.curl(exchange.request)
    actual = exchange.response.status_code
    findings: list[Finding] = []
    if actual != expected_status:
        findings.append(status_finding(endpoint, expected_status, actual, curl, role_allowed,
                                       exchange.body if exchange.response.is_success else None, own))
    own_schema = bool(responses) and responses[0].schema is not None
    if actual >= 500 and findings:  # an unexpected server error: its body is part of that one finding
        return findings, False
    if actual >= 400 and not own_schema and error_shape is not None:
        validator = validator_for(error_shape.schema_uri) if error_shape.schema_uri else None
        findings += error_findings(endpoint, error_shape, validator, exchange, curl, redactor)
        return findings, validator is not None and actual == expected_status
    if findings or not responses:
        return findings, False
    spec = responses[0]
    ct = content_type_finding(endpoint, spec, exchange.response.headers.get("content-type"), curl)
    if ct:
        findings.append(ct)
    if spec.schema is None:
        return findings, False
    if (spec.content_type or "").lower().startswith("text/"):  # the schema describes the text, one string
        body: Any = exchange.response.text
    else:
        body = exchange.body
        if body is None and exchange.response.content.strip() not in (b"null",):
            findings.append(Finding("type-changed", endpoint.id, "$", "JSON", "not JSON",
                                    "the body is not JSON", curl))
            return findings, False
    findings.extend(schema_findings(endpoint, validator_for(spec.schema_uri), body, curl, redactor,
                                    exchange.replayed))
    return findings, True

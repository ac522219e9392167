"""Spec expansion: an area file's shorthands into plain `Endpoint`/`Case` objects. Named auth profiles, case
templates and constants come from `specs/profiles.yaml`; an area's `defaults` give auth, path parameters and
responses; a case's `extends`, `template` and `each` are applied. The schemas met on the way are checked and
registered (`resources`); the result is as if every endpoint and case were spelled out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from conformance.errors import SpecError
from conformance.model import PATH_PARAM, ROLES, SCHEMA_BASE, Area, Case, Endpoint, ResponseSpec
from conformance.validation import ValidationCache, check_schema, parse_versions, validate_part
from conformance.values import KNOWN_ROOTS, unknown_placeholders
from conformance.yamlfile import LocatedDict, LocatedList, line_of, load_yaml

CONSTANT = re.compile(r"\$\{const\.([A-Za-z0-9_-]+)\}")
MERGED_CASE_KEYS = ("path", "query")  # merged per parameter by extends/each; every other key is replaced
Resources = list[tuple[str, Any, Path]]  # the schemas to register: (uri, schema, file)


@dataclass
class Profiles:
    """The shared definitions of specs/profiles.yaml: auth profiles, case templates, constants."""

    file: Path
    auth: dict[str, dict[str, int]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)


def load_profiles(root: Path, meta: Draft202012Validator, cache: ValidationCache) -> Profiles:
    """The shared definitions of `<root>/profiles.yaml` (none when there is no such file), validated."""
    path = root / "profiles.yaml"
    if not path.exists():
        return Profiles(file=path)
    doc = load_yaml(path, cache.parsed)
    validate_part(doc, path, meta, "profiles", cache)
    profiles = Profiles(file=path, auth=dict(doc.get("auth") or {}), templates=dict(doc.get("templates") or {}),
                        constants=dict(doc.get("constants") or {}))
    for name, template in profiles.templates.items():
        bad = _unknown_constants(template, profiles)
        if bad:
            raise SpecError(f"{path}:{line_of(doc, ['templates', name])}: unknown constant {bad[0]} "
                            f"(known: {', '.join(sorted(profiles.constants)) or 'none'})")
    return profiles


def _unknown_constants(value: Any, profiles: Profiles) -> list[str]:
    if isinstance(value, str):
        return [m.group(0) for m in CONSTANT.finditer(value) if m.group(1) not in profiles.constants]
    if isinstance(value, dict):
        return [c for v in value.values() for c in _unknown_constants(v, profiles)]
    if isinstance(value, list):
        return [c for v in value for c in _unknown_constants(v, profiles)]
    return []


def _substitute(value: Any, replace: Any) -> Any:
    """Apply `replace` (str -> str) to every string in `value`, keeping LocatedDict/LocatedList lines."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        out = LocatedDict((k, _substitute(v, replace)) for k, v in value.items())
        out.line, out.key_lines = getattr(value, "line", 0), dict(getattr(value, "key_lines", {}))
        return out
    if isinstance(value, list):
        seq = LocatedList(_substitute(v, replace) for v in value)
        seq.line, seq.item_lines = getattr(value, "line", 0), list(getattr(value, "item_lines", []))
        return seq
    return value


def _constants(value: Any, profiles: Profiles) -> Any:
    """Replace `${const.NAME}` by the constant; a string that is only the placeholder takes its value."""
    def one(text: str) -> Any:
        whole = CONSTANT.fullmatch(text)
        if whole:
            return profiles.constants[whole.group(1)]
        return CONSTANT.sub(lambda m: str(profiles.constants[m.group(1)]), text)
    return _substitute(value, one)


def _merge_case(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: `path` and `query` merge per parameter, every other key is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if key in MERGED_CASE_KEYS and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _resolve_auth(value: Any, where: str, profiles: Profiles) -> dict[str, int]:
    if isinstance(value, str):
        if value not in profiles.auth:
            raise SpecError(f"{where}: unknown auth profile {value!r} "
                            f"(known: {', '.join(sorted(profiles.auth)) or 'none'}; {profiles.file.name})")
        return dict(profiles.auth[value])
    return dict(value)


def _expand_cases(raw: dict[str, Any], defaults: dict[str, Any], path: Path, line: int,
                  profiles: Profiles) -> list[tuple[dict[str, Any], int]]:
    """The endpoint's cases as plain mappings with their lines: `each` families unrolled, `extends`
    (an earlier case of the endpoint) and `template` (specs/profiles.yaml) applied, default path
    parameters filled in, constants substituted. Precedence, lowest first: default path parameters,
    the extended case, the template, the case's own keys; a template's `rebind` then renames
    placeholder roots in path, query and body (`website` -> `team_website`)."""
    raw_cases = raw.get("cases")
    if not raw_cases:
        entries = [({"name": "default"}, line)]
    else:
        entries = []
        for k, entry in enumerate(raw_cases):
            entry_line = raw_cases.item_lines[k]
            if "each" in entry:
                common = {key: v for key, v in entry.items() if key != "each"}
                entries.extend((_merge_case(common, item), entry["each"].item_lines[j])
                               for j, item in enumerate(entry["each"]))
            else:
                entries.append((entry, entry_line))
    params = PATH_PARAM.findall(raw["path"])
    default_path = {p: v for p, v in (defaults.get("path") or {}).items() if p in params}
    done: dict[str, dict[str, Any]] = {}
    cases = []
    for entry, entry_line in entries:
        where = f"{path}:{entry_line}"
        case: dict[str, Any] = {}
        if "extends" in entry:
            if entry["extends"] not in done:
                raise SpecError(f"{where}: extends {entry['extends']!r}: no earlier case of that name in "
                                f"{raw['id']} (known: {', '.join(done) or 'none'})")
            case = {k: v for k, v in done[entry["extends"]].items() if k != "name"}
        rebind: dict[str, str] = {}
        if "template" in entry:
            template = profiles.templates.get(entry["template"])
            if template is None:
                raise SpecError(f"{where}: unknown case template {entry['template']!r} "
                                f"(known: {', '.join(sorted(profiles.templates)) or 'none'}; {profiles.file.name})")
            rebind = dict(template.get("rebind") or {})
            case = _merge_case(case, {k: v for k, v in template.items() if k != "rebind"})
        case = _merge_case(case, {k: v for k, v in entry.items() if k not in ("extends", "template")})
        if "name" not in case:
            raise SpecError(f"{where}: a case needs a name (its own, or its template's)")
        missing = {p: v for p, v in default_path.items() if p not in (case.get("path") or {})}
        if missing:
            case["path"] = {**missing, **(case.get("path") or {})}
        bad = _unknown_constants([case.get("path"), case.get("query"), case.get("body")], profiles)
        if bad:
            key = next((k for k in ("path", "query", "body") if _unknown_constants(entry.get(k), profiles)), None)
            where = f"{path}:{entry.key_lines[key]}" if key and hasattr(entry, "key_lines") else where
            raise SpecError(f"{where}: unknown constant {bad[0]} "
                            f"(known: {', '.join(sorted(profiles.constants)) or 'none'}; {profiles.file.name})")
        for key in ("path", "query", "body"):
            if key in case:
                value = _constants(case[key], profiles)
                for old, new in rebind.items():
                    value = _substitute(value, lambda text, o=old, n=new: text.replace("${" + o + ".",
                                                                                      "${" + n + "."))
                case[key] = value
        if case["name"] in done:
            raise SpecError(f"{where}: duplicate case name {case['name']!r} in {raw['id']}")
        done[case["name"]] = case
        cases.append((case, entry_line))
    return cases


def _case_schema(raw: dict[str, Any], case: dict[str, Any], path: Path, line: int, resources: Resources,
                 cache: ValidationCache) -> str | None:
    """Register a case's extra schema; return its URI."""
    if "schema" not in case:
        return None
    check_schema(case["schema"], path, cache, line)
    uri = f"{SCHEMA_BASE}inline-{raw['id'].replace('/', '--')}-case-{case['name']}"
    resources.append((uri, case["schema"], path))
    return uri


def build_area(doc: dict[str, Any], path: Path, resources: Resources, profiles: Profiles,
               cache: ValidationCache) -> Area:
    """The area of one validated area file `doc` (the file `path`), its shorthands expanded; its schemas are
    checked and added to `resources`."""
    area = doc["area"]
    defaults = doc.get("defaults") or {}
    endpoints = []
    for i, raw in enumerate(doc["endpoints"]):
        line = doc["endpoints"].item_lines[i]
        where = f"{path}:{line}"
        versions = parse_versions(raw.get("versions", doc.get("versions", ">=0")), where)
        if raw.get("query") and raw["method"] == "GET":
            raise SpecError(f"{path}:{line_of(raw, ['query'])}: `query` marks a request other than GET that stores "
                            "nothing; a GET only reads anyway")
        if "auth" in raw:
            auth = _resolve_auth(raw["auth"], f"{path}:{line_of(raw, ['auth'])}", profiles)
        elif "auth" in defaults:
            auth = _resolve_auth(defaults["auth"], f"{path}:{line_of(doc, ['defaults', 'auth'])}", profiles)
        else:
            raise SpecError(f"{where}: {raw['id']}: no auth (give `auth`, or `defaults: auth` in the area)")
        for role in auth:
            if role not in ROLES:
                raise SpecError(f"{path}:{line_of(raw, ['auth', role])}: unknown role {role!r} "
                                f"(known: {', '.join(ROLES)})")
        own = raw.get("responses") or {}
        merged = {**{k: v for k, v in (defaults.get("responses") or {}).items() if k not in own}, **own}
        # In status order; `null` drops a default status.
        merged = {k: v for k, v in sorted(merged.items(), key=lambda kv: int(kv[0])) if v is not None}
        if not merged:
            raise SpecError(f"{where}: {raw['id']}: no responses (give `responses`, or `defaults: responses`)")
        responses = []
        for status_key, entries in merged.items():
            located = raw if status_key in own else doc.get("defaults")
            prefix = ["responses", status_key]
            for j, entry in enumerate(entries if isinstance(entries, list) else [entries]):
                entry_line = line_of(located, prefix + ([j] if isinstance(entries, list) else []))
                uri = f"{SCHEMA_BASE}inline-{raw['id'].replace('/', '--')}-{status_key}-{j}"
                schema = entry.get("schema")
                if schema is not None:
                    check_schema(schema, path, cache, line_of(located, prefix))
                    resources.append((uri, schema, path))
                responses.append(ResponseSpec(
                    status=int(status_key),
                    versions=parse_versions(entry.get("versions", ">=0"), f"{path}:{entry_line}"),
                    content_type=entry.get("content_type", "application/json" if schema is not None else None),
                    schema=schema, schema_uri=uri, description=entry.get("description", "")))
        expanded = _expand_cases(raw, defaults, path, line, profiles)
        for c, case_line in expanded:
            bad = unknown_placeholders([c.get("path"), c.get("query"), c.get("body")])
            if bad:
                raise SpecError(f"{path}:{case_line}: unknown placeholder {bad[0]} "
                                f"(known roots: {', '.join(sorted(KNOWN_ROOTS))}, now-7d, const)")
        cases = [Case(name=c["name"], line=case_line,
                      path_params=dict(c.get("path", {})), query=dict(c.get("query", {})),
                      body=c.get("body"), status=c.get("status"), roles=c.get("roles"),
                      target=c.get("target"), creates=c.get("creates"),
                      schema_uri=_case_schema(raw, c, path, case_line, resources, cache),
                      fresh_login=c.get("fresh_login", False),
                      description=c.get("description", ""),
                      versions=parse_versions(c.get("versions", ""), f"{path}:{case_line}"),
                      needs=list(c.get("needs", [])))
                 for c, case_line in expanded]
        endpoints.append(Endpoint(
            id=raw["id"], area=area, method=raw["method"], path=raw["path"], versions=versions,
            source=raw["source"], summary=raw.get("summary", ""), auth=auth,
            cases=cases, responses=responses, file=path, line=line,
            operation_id=raw.get("operationId"), safe=raw.get("safe", False),
            query=raw.get("query", False)))
    return Area(name=area, title=doc.get("title", area), description=doc.get("description", ""),
                file=path, endpoints=endpoints)


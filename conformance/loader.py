"""Spec loader: YAML with line numbers -> validated Spec objects with a `$ref` registry.

Every spec file is checked against `specs/meta-schema.yaml`, every schema against the JSON Schema
2020-12 meta-schema, and every `$ref` must resolve. Errors name file and line (`SpecError`).
Shorthands (named auth profiles, case templates and constants from `specs/profiles.yaml`, an area's
`defaults`, a case's `extends`/`template`/`each`) are expanded here into plain `Endpoint`/`Case` objects.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from importlib.metadata import version as package_version
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import SchemaError
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from conformance.errors import SpecError
from conformance.values import KNOWN_ROOTS, unknown_placeholders
from conformance.versions import Inventory, Versions

SCHEMA_BASE = "https://umami-conformance.local/schemas/"
ROLES = ("admin", "user", "view-only", "share", "anonymous")


def _bundled_specs() -> Path:
    """The specs this installation ships: the clone's `specs/` (a checkout, an editable install), else the package
    `umami_specs` that the wheel maps `specs/` to."""
    clone = Path(__file__).resolve().parent.parent / "specs"
    if (clone / "meta-schema.yaml").is_file():
        return clone
    spec = importlib.util.find_spec("umami_specs")
    if spec is None or not spec.submodule_search_locations:
        return clone  # load_specs then says that the directory is missing
    return Path(next(iter(spec.submodule_search_locations))).resolve()


DEFAULT_SPECS = _bundled_specs()

# Files in specs/ that are not API areas.
NOT_AREAS = {"meta-schema.yaml", "known-differences.yaml", "errors.yaml", "discovery.yaml", "profiles.yaml"}
CONSTANT = re.compile(r"\$\{const\.([A-Za-z0-9_-]+)\}")
PATH_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\}")
MERGED_CASE_KEYS = ("path", "query")  # merged per parameter by extends/each; every other key is replaced


class LocatedDict(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LocatedList(list):
    """A sequence that remembers the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: ~10x faster


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LocatedDict:
        # Keys are strings, as in JSON (YAML reads `200:` as an int).
        mapping = LocatedDict((str(k), v) for k, v in
                              super().construct_mapping(node, deep=True).items())
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {str(self.construct_object(k, deep=True)): k.start_mark.line + 1
                             for k, _ in node.value}
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LocatedList:
        seq = LocatedList(super().construct_sequence(node, deep=True))
        seq.line = node.start_mark.line + 1
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _LineLoader.construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
                            _LineLoader.construct_sequence)
# Keep "2023-01-01" and similar as strings: specs are JSON-shaped.
_LineLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in _BaseLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    """Parse one YAML file, keeping line numbers; syntax errors become SpecError with file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise SpecError(f"{path}:{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from None


def line_of(doc: Any, location: list[Any] | tuple[Any, ...]) -> int:
    """The line of the deepest node of `location` (a JSON path as keys/indexes) within `doc`."""
    line = getattr(doc, "line", 1)
    node = doc
    for key in location:
        if isinstance(node, LocatedDict) and key in node:
            line = node.key_lines.get(key, line)
        elif isinstance(node, LocatedList) and isinstance(key, int) and key < len(node):
            line = node.item_lines[key]
        else:
            break
        node = node[key]
    return line


@dataclass
class ResponseSpec:
    """What one status code of an endpoint looks like, for the versions it applies to."""

    status: int
    versions: Versions
    content_type: str | None
    schema: dict[str, Any] | None
    schema_uri: str
    description: str = ""


@dataclass
class Case:
    """One request of an endpoint: parameters, optional fixed expected status, roles it runs for."""

    name: str
    line: int
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    status: int | None = None
    roles: list[str] | None = None
    target: str | None = None
    creates: str | None = None
    schema_uri: str | None = None
    fresh_login: bool = False
    description: str = ""
    versions: Versions = field(default_factory=Versions)  # the versions this case applies to (default all)
    needs: list[str] = field(default_factory=list)  # parts of the seed the case schema expects (revenue)


@dataclass
class Endpoint:
    """One operation: method + path + auth per role + cases + responses."""

    id: str
    area: str
    method: str
    path: str
    versions: Versions
    source: str
    summary: str
    auth: dict[str, int]
    cases: list[Case]
    responses: list[ResponseSpec]
    file: Path
    line: int
    operation_id: str | None = None
    safe: bool = False

    @property
    def writes(self) -> bool:
        """A request other than GET changes server state, unless the spec marks it safe (login)."""
        return self.method != "GET" and not self.safe

    def responses_for(self, status: int, version: str | None) -> list[ResponseSpec]:
        return [r for r in self.responses if r.status == status
                and (version is None or r.versions.contains(version, prereleases=True))]


@dataclass
class Area:
    """One spec file."""

    name: str
    title: str
    description: str
    file: Path
    endpoints: list[Endpoint]


@dataclass
class ErrorShape:
    """How error bodies look on a range of Umami versions (specs/errors.yaml)."""

    versions: Versions
    content_type: str | None
    schema_uri: str | None
    status_pointer: str | None
    description: str


@dataclass
class SpecSet:
    """All areas plus the schema registry used to validate responses."""

    root: Path
    areas: list[Area]
    registry: Registry
    errors: list[ErrorShape] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    inventory: Inventory | None = None
    _validators: dict[str, SchemaValidator] = field(default_factory=dict, repr=False)

    def error_shape(self, version: str | None) -> ErrorShape | None:
        """The error shape of `version` (None when the version is unknown or has none)."""
        return next((e for e in self.errors
                     if version is not None and e.versions.contains(version, prereleases=True)), None)

    @property
    def endpoints(self) -> list[Endpoint]:
        return [e for a in self.areas for e in a.endpoints]

    @cached_property
    def _root_validator(self) -> Draft202012Validator:
        """A validator of no schema in particular, with the registry's resolver (made once)."""
        return Draft202012Validator(True, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def validator_for(self, uri: str) -> SchemaValidator:
        """The validator of one registered schema (made once per URI; safe across threads). Each is the root
        validator evolved, sharing its resolver: one made from the registry would combine the registry with
        jsonschema's meta-schemas anew (milliseconds each, for a hundred and more schemas)."""
        validator = self._validators.get(uri)
        if validator is None:
            made = SchemaValidator(self._root_validator.evolve(schema={"$ref": uri}))
            validator = self._validators.setdefault(uri, made)
        return validator


class SchemaValidator:
    """One schema's validator that remembers the errors of each body it checked: the same body always has the
    same errors, and a recheck replays one recorded answer to many items (roles, cases)."""

    def __init__(self, validator: Draft202012Validator) -> None:
        self.validator = validator
        self._errors: dict[str, list[ValidationError]] = {}  # by the body as JSON text (key order kept)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        key = json.dumps(instance)
        errors = self._errors.get(key)
        if errors is None:
            errors = self._errors.setdefault(key, list(self.validator.iter_errors(instance)))
        return iter(errors)


def parse_versions(value: str, where: str) -> Versions:
    try:
        return Versions(value)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None


class ValidCache:
    """The content hashes of what passed validation (a JSON Schema against the meta-schema, a spec file against
    its schema), kept across processes in one file: checking the JSON Schemas is most of the loading time, and
    they rarely change. Only a success is kept, under the sha256 of the validated content (the schema and the
    document, as canonical JSON) and in a file per jsonschema version, so a changed file, schema or library is
    validated again. An unreadable or malformed cache is ignored (everything is validated); one that cannot be
    written is not written. `UMAMI_CONFORMANCE_SPEC_CACHE=off` turns it off; it lives in
    `$UMAMI_CONFORMANCE_HOME` (default `$XDG_CACHE_HOME/umami-conformance`, else ~/.cache/umami-conformance)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._known: set[str] | None = None
        self._new: set[str] = set()

    @classmethod
    def default(cls) -> ValidCache:
        if os.environ.get("UMAMI_CONFORMANCE_SPEC_CACHE", "").lower() in ("off", "0", "no", "false"):
            return cls(None)
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "umami-conformance"
        home = Path(os.environ.get("UMAMI_CONFORMANCE_HOME") or home)
        return cls(home / f"valid-specs-jsonschema-{package_version('jsonschema')}.txt")

    @staticmethod
    def key(kind: str, *parts: Any) -> str | None:
        """The hash of what is validated, or None when it is not JSON (then it is always validated)."""
        try:
            text = json.dumps([kind, *parts], sort_keys=True, allow_nan=False)
        except (TypeError, ValueError):
            return None
        return hashlib.sha256(text.encode()).hexdigest()

    def __contains__(self, key: str | None) -> bool:
        if key is None:
            return False
        if self._known is None:
            self._known = set()
            try:
                lines = self.path.read_text(encoding="ascii").split() if self.path else []
            except (OSError, ValueError):
                lines = []
            if all(HEX64.fullmatch(line) for line in lines):
                self._known = set(lines)
        return key in self._known or key in self._new

    def add(self, key: str | None) -> None:
        if key is not None:
            self._new.add(key)

    def save(self) -> None:
        """Write what passed since the last save (atomically; best effort)."""
        if not self._new or self.path is None or not (self._new - (self._known or set())):
            return
        known = (self._known or set()) | self._new
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text("".join(f"{k}\n" for k in sorted(known)), encoding="ascii")
            os.replace(tmp, self.path)
        except OSError:
            return
        self._known, self._new = known, set()


HEX64 = re.compile(r"[0-9a-f]{64}")
_VALID = ValidCache.default()


def _check_schema(schema: Any, where: str) -> None:
    """Raise SpecError unless `schema` is a valid JSON Schema (not checked again once it passed: ValidCache)."""
    key = ValidCache.key("schema", schema)
    if key in _VALID:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise SpecError(f"{where}: invalid JSON Schema at {path}: {exc.message}") from None
    _VALID.add(key)


def _iter_refs(node: Any, loc: tuple[Any, ...] = ()) -> list[tuple[str, tuple[Any, ...]]]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append((value, loc + (key,)))
            else:
                found.extend(_iter_refs(value, loc + (key,)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_iter_refs(value, loc + (i,)))
    return found


def meta_validator(root: Path) -> Draft202012Validator:
    """The validator of spec files, from `<root>/meta-schema.yaml` (itself checked first)."""
    meta_path = root / "meta-schema.yaml"
    meta = load_yaml(meta_path)
    _check_schema(meta, f"{meta_path}:1")
    return Draft202012Validator(meta)


def _validate_doc(doc: Any, path: Path, meta: Draft202012Validator) -> None:
    key = ValidCache.key("doc", meta.schema, doc)
    if key in _VALID:
        return

    def location(err: Any) -> list[Any]:
        # A bad key (propertyNames) is reported on its mapping; point at the key itself.
        extra = [err.instance] if "propertyNames" in err.absolute_schema_path else []
        return list(err.absolute_path) + extra

    errors = sorted(meta.iter_errors(doc), key=lambda e: line_of(doc, location(e)))
    if errors:
        err = errors[0]
        line = line_of(doc, location(err))
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise SpecError(f"{path}:{line}: {where}: {err.message}{more}")
    _VALID.add(key)


def load_specs(root: Path = DEFAULT_SPECS) -> SpecSet:
    """Load and fully validate the spec directory; raise SpecError on the first problem. Every call reads the
    files again: a caller that wants one SpecSet for several uses keeps it (the CLI hands it to the session)."""
    return _load_specs(Path(root).resolve())


def _load_specs(root: Path) -> SpecSet:
    if not root.is_dir():
        raise SpecError(f"{root}: spec directory not found")
    meta = meta_validator(root)
    resources: list[tuple[str, Any, Path]] = []  # (uri, schema, file)
    for path in sorted((root / "schemas").glob("*.yaml")):
        doc = load_yaml(path)
        _check_schema(doc, f"{path}:{getattr(doc, 'line', 1)}")
        resources.append((SCHEMA_BASE + path.name, doc, path))
    profiles = _load_profiles(root, meta)
    areas = []
    for path in sorted(root.glob("*.yaml")):
        if path.name in NOT_AREAS:
            continue
        doc = load_yaml(path)
        _validate_doc(doc, path, meta)
        areas.append(_build_area(doc, path, resources, profiles))
    errors = _load_errors(root, meta, resources)
    candidates = _load_candidates(root, meta)
    registry = Registry().with_resources(
        (uri, Resource(contents=schema, specification=DRAFT202012)) for uri, schema, _ in resources)
    _check_refs(registry, resources)
    _check_unique_ids(areas)
    inventory = Inventory.load(root) if (root / "references" / "umami-routes.json").exists() else None
    _VALID.save()
    return SpecSet(root=root, areas=areas, registry=registry, errors=errors, candidates=candidates,
                   inventory=inventory)


def validate_part(doc: Any, path: Path, meta: Draft202012Validator, definition: str) -> None:
    """Validate a non-area spec file against `$defs/<definition>` of the meta-schema."""
    sub = Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": meta.schema["$defs"]})
    _validate_doc(doc, path, sub)


def _load_errors(root: Path, meta: Draft202012Validator, resources: list) -> list[ErrorShape]:
    path = root / "errors.yaml"
    if not path.exists():
        return []
    doc = load_yaml(path)
    validate_part(doc, path, meta, "errors")
    shapes = []
    for i, raw in enumerate(doc):
        where = f"{path}:{doc.item_lines[i]}"
        uri = None
        if "schema" in raw:
            _check_schema(raw["schema"], where)
            uri = f"{SCHEMA_BASE}inline-errors-{i}"
            resources.append((uri, raw["schema"], path))
        shapes.append(ErrorShape(versions=parse_versions(raw["versions"], where),
                                 content_type=raw.get("content_type", "application/json" if uri else None),
                                 schema_uri=uri, status_pointer=raw.get("status_pointer"),
                                 description=raw.get("description", "")))
    return shapes


def _load_candidates(root: Path, meta: Draft202012Validator) -> list[str]:
    path = root / "discovery.yaml"
    if not path.exists():
        return []
    doc = load_yaml(path)
    validate_part(doc, path, meta, "discovery")
    return sorted(set(doc["candidates"]))


def _check_unique_ids(areas: list[Area]) -> None:
    seen: dict[str, Endpoint] = {}
    for ep in (e for a in areas for e in a.endpoints):
        if ep.id in seen:
            first = seen[ep.id]
            raise SpecError(f"{ep.file}:{ep.line}: duplicate endpoint id {ep.id!r} "
                            f"(first at {first.file}:{first.line})")
        seen[ep.id] = ep


def _check_refs(registry: Registry, resources: list[tuple[str, Any, Path]]) -> None:
    resolved: set[str] = set()  # a target once found is found from anywhere (most refs share a few targets)
    for uri, schema, path in resources:
        resolver = registry.resolver(base_uri=uri)
        for ref, loc in _iter_refs(schema):
            target = urljoin(uri, ref)
            if target in resolved:
                continue
            try:
                resolver.lookup(ref)
            except Unresolvable:
                line = line_of(schema, list(loc))
                raise SpecError(f"{path}:{line}: unknown $ref {ref!r}") from None
            resolved.add(target)


def _case_schema(raw: dict[str, Any], case: dict[str, Any], path: Path, line: int,
                 resources: list) -> str | None:
    """Register a case's extra schema; return its URI."""
    if "schema" not in case:
        return None
    _check_schema(case["schema"], f"{path}:{line}")
    uri = f"{SCHEMA_BASE}inline-{raw['id'].replace('/', '--')}-case-{case['name']}"
    resources.append((uri, case["schema"], path))
    return uri


@dataclass
class Profiles:
    """The shared definitions of specs/profiles.yaml: auth profiles, case templates, constants."""

    file: Path
    auth: dict[str, dict[str, int]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)


def _load_profiles(root: Path, meta: Draft202012Validator) -> Profiles:
    path = root / "profiles.yaml"
    if not path.exists():
        return Profiles(file=path)
    doc = load_yaml(path)
    validate_part(doc, path, meta, "profiles")
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


def _build_area(doc: dict[str, Any], path: Path, resources: list, profiles: Profiles) -> Area:
    area = doc["area"]
    defaults = doc.get("defaults") or {}
    endpoints = []
    for i, raw in enumerate(doc["endpoints"]):
        line = doc["endpoints"].item_lines[i]
        where = f"{path}:{line}"
        versions = parse_versions(raw.get("versions", doc.get("versions", ">=0")), where)
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
                    _check_schema(schema, f"{path}:{line_of(located, prefix)}")
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
                      schema_uri=_case_schema(raw, c, path, case_line, resources),
                      fresh_login=c.get("fresh_login", False),
                      description=c.get("description", ""),
                      versions=parse_versions(c.get("versions", ""), f"{path}:{case_line}"),
                      needs=list(c.get("needs", [])))
                 for c, case_line in expanded]
        endpoints.append(Endpoint(
            id=raw["id"], area=area, method=raw["method"], path=raw["path"], versions=versions,
            source=raw["source"], summary=raw.get("summary", ""), auth=auth,
            cases=cases, responses=responses, file=path, line=line,
            operation_id=raw.get("operationId"), safe=raw.get("safe", False)))
    return Area(name=area, title=doc.get("title", area), description=doc.get("description", ""),
                file=path, endpoints=endpoints)

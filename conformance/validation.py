"""Spec validation: spec files against the meta-schema, JSON Schemas against the 2020-12 meta-schema, `$ref`s
against the registry, each error at file:line (`SpecError`); what passed is remembered by a `ValidationCache`."""

from __future__ import annotations

import hashlib
import json
import os
import re
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable

from conformance.errors import SpecError
from conformance.versions import Versions
from conformance.yamlfile import ParsedCache, line_of, load_yaml

HEX64 = re.compile(r"[0-9a-f]{64}")


class ValidationCache:
    """The content hashes of what passed validation (a JSON Schema against the meta-schema, a spec file against
    its schema): checking the JSON Schemas is most of the loading time, and they rarely change. Only a success is
    kept, under the sha256 of the validated content (the schema and the document, as canonical JSON), so a changed
    file or schema is validated again. With a `path` (one file per jsonschema version, see `default`) it is kept
    across processes: an unreadable or malformed file is ignored (everything is validated), one that cannot be
    written is not written. Without one it lasts as long as the object."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._known: set[str] | None = None
        self._new: set[str] = set()
        # The parsed spec files beside it (`<name>.parsed.json`): a cold load parses no file it has seen.
        self.parsed = ParsedCache(path.with_name(f"{path.stem}.parsed.json") if path else None)

    @classmethod
    def default(cls) -> ValidationCache:
        """The entry points' cache: `$UMAMI_CONFORMANCE_HOME` (default `$XDG_CACHE_HOME/umami-conformance`, else
        ~/.cache/umami-conformance); `UMAMI_CONFORMANCE_SPEC_CACHE=off` keeps it in memory only, `=FILE` in FILE."""
        setting = os.environ.get("UMAMI_CONFORMANCE_SPEC_CACHE", "")
        if setting.lower() in ("off", "0", "no", "false"):
            return cls(None)
        if setting and setting.lower() not in ("on", "1", "yes", "true"):
            return cls(Path(setting))
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
        """Write what passed since the last save, and the parses (atomically; best effort); without a path,
        nothing."""
        self.parsed.save()
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


def parse_versions(value: str, where: str) -> Versions:
    """A version range of a spec file; an invalid one is a SpecError at `where` (file:line)."""
    try:
        return Versions(value)
    except ValueError as exc:
        raise SpecError(f"{where}: {exc}") from None


def check_schema(schema: Any, path: Path | str, cache: ValidationCache, line: int = 1) -> None:
    """Raise SpecError unless `schema` is a valid JSON Schema (not checked again once it passed: `cache`). The
    error names the line of the offending keyword where the schema was read with its lines, else `line`."""
    key = ValidationCache.key("schema", schema)
    if key in cache:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        offending = line_of(schema, list(exc.absolute_path)) if hasattr(schema, "line") else line
        raise SpecError(f"{path}:{offending}: invalid JSON Schema at {at}: {exc.message}") from None
    cache.add(key)


def meta_validator(root: Path, cache: ValidationCache | None = None) -> Draft202012Validator:
    """The validator of spec files, from `<root>/meta-schema.yaml` (itself checked first)."""
    meta_path = root / "meta-schema.yaml"
    cache = cache if cache is not None else ValidationCache()
    meta = load_yaml(meta_path, cache.parsed)
    check_schema(meta, meta_path, cache)
    return Draft202012Validator(meta)


def validate_doc(doc: Any, path: Path, meta: Draft202012Validator, cache: ValidationCache) -> None:
    """Raise SpecError at the file:line of the first error of `doc` (the file `path`) against `meta`."""
    key = ValidationCache.key("doc", meta.schema, doc)
    if key in cache:
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
    cache.add(key)


def validate_part(doc: Any, path: Path, meta: Draft202012Validator, definition: str,
                  cache: ValidationCache | None = None) -> None:
    """Validate a non-area spec file against `$defs/<definition>` of the meta-schema."""
    sub = Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": meta.schema["$defs"]})
    validate_doc(doc, path, sub, cache if cache is not None else ValidationCache())


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


def check_refs(registry: Registry, resources: list[tuple[str, Any, Path]]) -> None:
    """Raise SpecError at the file:line of the first `$ref` of `resources` (uri, schema, file) that `registry`
    cannot resolve."""
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

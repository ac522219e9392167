"""Spec loader: a spec directory into a validated `SpecSet` with its `$ref` registry.

The walk: the meta-schema, the shared JSON Schemas (`schemas/`), the profiles, each area file (validated, then
expanded: expand.py), the error shapes and the discovery candidates; then every `$ref` must resolve and endpoint
ids be unique. Errors name file and line (`SpecError`) and stop the load at the first one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from conformance.errors import SpecError
from conformance.expand import Resources, build_area, load_profiles
from conformance.model import SCHEMA_BASE, Area, Endpoint, ErrorShape, SpecSet
from conformance.validation import ValidationCache, check_refs, check_schema, meta_validator, parse_versions, \
    validate_doc, validate_part
from conformance.versions import Inventory
from conformance.yamlfile import load_yaml


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


def load_specs(root: Path = DEFAULT_SPECS, cache: ValidationCache | None = None) -> SpecSet:
    """Load and fully validate the spec directory; raise SpecError on the first problem. Every call reads the
    files again: a caller that wants one SpecSet for several uses keeps it (the CLI hands it to the session).
    `cache` remembers what passed validation (the entry points pass `ValidationCache.default()`, kept across
    processes); without one, everything is validated."""
    cache = cache if cache is not None else ValidationCache()
    root = Path(root).resolve()
    if not root.is_dir():
        raise SpecError(f"{root}: spec directory not found")
    meta = meta_validator(root, cache)
    resources: Resources = []
    for path in sorted((root / "schemas").glob("*.yaml")):
        doc = load_yaml(path, cache.parsed)
        check_schema(doc, path, cache, getattr(doc, "line", 1))
        resources.append((SCHEMA_BASE + path.name, doc, path))
    profiles = load_profiles(root, meta, cache)
    areas = []
    for path in sorted(root.glob("*.yaml")):
        if path.name in NOT_AREAS:
            continue
        doc = load_yaml(path, cache.parsed)
        validate_doc(doc, path, meta, cache)
        areas.append(build_area(doc, path, resources, profiles, cache))
    errors = _load_errors(root, meta, resources, cache)
    candidates = _load_candidates(root, meta, cache)
    registry = Registry().with_resources(
        (uri, Resource(contents=schema, specification=DRAFT202012)) for uri, schema, _ in resources)
    check_refs(registry, resources)
    _check_unique_ids(areas)
    inventory = Inventory.load(root, cache.parsed) if (root / "references" / "umami-routes.json").exists() else None
    cache.save()
    return SpecSet(root=root, areas=areas, registry=registry, errors=errors, candidates=candidates,
                   inventory=inventory)


def _load_errors(root: Path, meta: Draft202012Validator, resources: Resources,
                 cache: ValidationCache) -> list[ErrorShape]:
    path = root / "errors.yaml"
    if not path.exists():
        return []
    doc = load_yaml(path, cache.parsed)
    validate_part(doc, path, meta, "errors", cache)
    shapes = []
    for i, raw in enumerate(doc):
        where = f"{path}:{doc.item_lines[i]}"
        uri = None
        if "schema" in raw:
            check_schema(raw["schema"], path, cache, doc.item_lines[i])
            uri = f"{SCHEMA_BASE}inline-errors-{i}"
            resources.append((uri, raw["schema"], path))
        shapes.append(ErrorShape(versions=parse_versions(raw["versions"], where),
                                 content_type=raw.get("content_type", "application/json" if uri else None),
                                 schema_uri=uri, status_pointer=raw.get("status_pointer"),
                                 description=raw.get("description", "")))
    return shapes


def _load_candidates(root: Path, meta: Draft202012Validator, cache: ValidationCache) -> list[str]:
    path = root / "discovery.yaml"
    if not path.exists():
        return []
    doc = load_yaml(path, cache.parsed)
    validate_part(doc, path, meta, "discovery", cache)
    return sorted(set(doc["candidates"]))


def _check_unique_ids(areas: list[Area]) -> None:
    seen: dict[str, Endpoint] = {}
    for ep in (e for a in areas for e in a.endpoints):
        if ep.id in seen:
            first = seen[ep.id]
            raise SpecError(f"{ep.file}:{ep.line}: duplicate endpoint id {ep.id!r} "
                            f"(first at {first.file}:{first.line})")
        seen[ep.id] = ep

"""`coverage`: for each reference (v1 doc, v2 doc, v3 contract, the routes of the newest release) how many
operations have a spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.model import SpecSet
from conformance.validation import ValidationCache, meta_validator, validate_part
from conformance.versions import INVENTORY, template_key
from conformance.yamlfile import load_yaml


@dataclass
class Coverage:
    name: str
    title: str
    total: int
    missing: list[str]

    @property
    def specified(self) -> int:
        return self.total - len(self.missing)

    @property
    def percent(self) -> float:
        return 100.0 * self.specified / self.total if self.total else 100.0


def coverage(specs: SpecSet, cache: ValidationCache | None = None) -> list[Coverage]:
    """One Coverage per specs/references/*.yaml, then one for the routes of the newest release of the
    route inventory. An operation is specified when a spec that applies to one of the reference's
    versions has its operationId, or its method and path template. The references are validated
    (`cache`: what passed before, see load_specs)."""
    cache = cache if cache is not None else ValidationCache()
    meta = meta_validator(specs.root, cache)
    results = []
    for path in sorted((specs.root / "references").glob("*.yaml")):
        doc = load_yaml(path, cache.parsed)
        validate_part(doc, path, meta, "reference", cache)
        endpoints = [e for e in specs.endpoints
                     if any(e.versions.contains(v, prereleases=True) for v in doc["versions"])]
        by_route = {(e.method, template_key(e.path)) for e in endpoints}
        by_operation = {e.operation_id for e in endpoints if e.operation_id}
        missing = [f"{op['method']} {op['path']}" + (f" ({op['operationId']})" if op.get("operationId") else "")
                   for op in doc["operations"]
                   if op.get("operationId") not in by_operation
                   and (op["method"], template_key(op["path"])) not in by_route]
        results.append(Coverage(Path(path).stem, doc["title"], len(doc["operations"]), missing))
    cache.save()
    if specs.inventory is not None:
        results.append(release_coverage(specs))
    return results


def release_coverage(specs: SpecSet) -> Coverage:
    """The routes of the newest real release in the route inventory: a route is specified when a spec
    that applies to that release has its path template and its method (`ANY` matches any method)."""
    assert specs.inventory is not None
    release = [r for r in specs.inventory.releases if r.source == "release"][-1]
    endpoints = [e for e in specs.endpoints if e.versions.contains(release.version, prereleases=True)]
    specified = {(e.method, template_key(e.path)) for e in endpoints}
    routes = sorted((r.split(" ", 1) for r in release.routes), key=lambda mp: (mp[1], mp[0]))
    missing = [f"{method} {path}" for method, path in routes
               if not any(key == template_key(path) and method in (m, "ANY") for m, key in specified)]
    return Coverage(f"umami-{release.version}", f"Umami {release.version} routes (route inventory, "
                    f"{INVENTORY})", len(routes), missing)

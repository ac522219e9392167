"""`coverage`: for each reference (v1 doc, v2 doc, v3 contract) how many operations have a spec."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformance.discovery import template_key
from conformance.loader import SpecSet, load_yaml, meta_validator, validate_part


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


def coverage(specs: SpecSet) -> list[Coverage]:
    """One Coverage per specs/references/*.yaml. An operation is specified when a spec that applies
    to one of the reference's versions has its operationId, or its method and path template."""
    meta = meta_validator(specs.root)
    results = []
    for path in sorted((specs.root / "references").glob("*.yaml")):
        doc = load_yaml(path)
        validate_part(doc, path, meta, "reference")
        endpoints = [e for e in specs.endpoints
                     if any(e.versions.contains(v, prereleases=True) for v in doc["versions"])]
        by_route = {(e.method, template_key(e.path)) for e in endpoints}
        by_operation = {e.operation_id for e in endpoints if e.operation_id}
        missing = [f"{op['method']} {op['path']}" + (f" ({op['operationId']})" if op.get("operationId") else "")
                   for op in doc["operations"]
                   if op.get("operationId") not in by_operation
                   and (op["method"], template_key(op["path"])) not in by_route]
        results.append(Coverage(Path(path).stem, doc["title"], len(doc["operations"]), missing))
    return results

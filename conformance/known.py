"""Known differences: reviewed, accepted deviations (specs/known-differences.yaml).

A finding that matches an entry is reported as known, not as a failure; an entry that matched
nothing in a run where its endpoint was checked is reported as stale.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from conformance.checks import Finding, path_pattern
from conformance.validation import ValidationCache, meta_validator, parse_versions, validate_part
from conformance.versions import Versions
from conformance.yamlfile import load_yaml

FILE = "known-differences.yaml"


@dataclass
class KnownDifference:
    endpoint: str
    reason: str
    versions: Versions
    line: int
    cls: str | None = None
    status: int | None = None
    json_path: str | None = None
    roles: list[str] | None = None
    cases: list[str] | None = None
    expires: dt.date | None = None
    matched: int = field(default=0)

    def applies(self, versions: list[str] | None) -> bool:
        """Whether the entry is about one of the versions the server may be (None: not known)."""
        return versions is None or any(self.versions.contains(v) for v in versions)

    def matches(self, finding: Finding, role: str, case: str, versions: list[str] | None) -> bool:
        if finding.endpoint != self.endpoint or not self.applies(versions):
            return False
        if self.expires and dt.date.today() > self.expires:
            return False
        if self.roles and role not in self.roles:
            return False
        if self.cases and case not in self.cases:
            return False
        if self.cls and finding.cls != self.cls:
            return False
        if self.status is not None and finding.actual != self.status:
            return False
        return self.json_path is None or path_pattern(finding.json_path) == path_pattern(self.json_path)

    def could_match(self, record: dict) -> bool:
        """Whether `record` (a checked spec item) is one this entry is about: only then can the
        entry be stale. An entry about array items (`$.chart[*].y`) is about an answer that has such items: an
        empty array (no revenue seeded) shows nothing of them."""
        if not (record["endpoint"] == self.endpoint and record["outcome"] not in ("skipped", "unavailable", None)
                and record["case"] != "negative"
                and (not self.roles or record["role"] in self.roles)
                and (not self.cases or record["case"] in self.cases)):
            return False
        items = path_pattern(self.json_path or "").rpartition("[*]")
        shape = record.get("shape")
        return not (items[1] and isinstance(shape, dict) and items[0] + items[1] not in shape)

    def describe(self) -> str:
        what = self.json_path or (f"HTTP {self.status}" if self.status else self.cls or "any")
        return f"{self.endpoint} {what} ({self.versions or 'all versions'})"


def load_known(root: Path, cache: ValidationCache | None = None) -> list[KnownDifference]:
    """The entries of `<root>/known-differences.yaml`, validated (`cache`: what passed before, see load_specs)."""
    path = root / FILE
    if not path.exists():
        return []
    cache = cache if cache is not None else ValidationCache()
    doc = load_yaml(path, cache.parsed)
    validate_part(doc, path, meta_validator(root, cache), "known_differences", cache)
    cache.save()
    entries = []
    for i, raw in enumerate(doc or []):
        expires = raw.get("expires")
        entries.append(KnownDifference(
            endpoint=raw["endpoint"], reason=raw["reason"],
            versions=parse_versions(raw.get("versions", ""), f"{path}:{doc.item_lines[i]}"),
            line=doc.item_lines[i], cls=raw.get("class"), status=raw.get("status"),
            json_path=raw.get("json_path"), roles=raw.get("roles"), cases=raw.get("cases"),
            expires=dt.date.fromisoformat(expires) if expires else None))
    return entries


def apply_known(findings: list[Finding], known: list[KnownDifference], role: str, case: str,
                versions: list[str] | None) -> None:
    """Mark findings that a known difference accepts."""
    for finding in findings:
        for entry in known:
            if entry.matches(finding, role, case, versions):
                finding.known = entry.reason
                entry.matched += 1
                break


def stale(known: list[KnownDifference], records: list[dict], read_only: bool = False,
          versions: list[str] | None = None) -> list[KnownDifference]:
    """Entries about the server's version that matched nothing although an item they are about was
    checked. Read-only runs skip case schemas (no seeded data), so there only entries about a status
    can be judged."""
    by_endpoint: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_endpoint[record["endpoint"]].append(record)
    return [e for e in known if e.matched == 0 and e.applies(versions) and (e.status is not None or not read_only)
            and any(e.could_match(r) for r in by_endpoint.get(e.endpoint, ()))]

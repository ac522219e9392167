"""The items of a spec set, free of pytest: one per endpoint x role x case (`collect`), and what became of one
(`ItemResult`, results.json `items[]`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from conformance import __version__, discovery, negative
from conformance.checks import Finding
from conformance.model import Case, Endpoint, SpecSet
from conformance.versions import Versions
from umami_results.vocabulary import Kind, Outcome, SkipCode


@dataclass(frozen=True)
class Skip:
    """Why an item was not checked: a code of the shared vocabulary, and the details in words."""

    code: SkipCode
    reason: str


@dataclass(frozen=True)
class Item:
    """One check: endpoint x role x case."""

    id: str
    endpoint: Endpoint
    case: Case
    role: str
    kind: Kind = Kind.SPEC

    @property
    def expected_status(self) -> int:
        return self.case.status or self.endpoint.auth[self.role]


@dataclass
class ItemResult:
    """What one item found: its outcome, the answer, and the findings (results.json `items[]`)."""

    item: Item
    server_version: str | None
    outcome: Outcome = Outcome.ERROR
    reason: str | None = None
    skip: Skip | None = None
    schema_checked: bool = False
    findings: list[Finding] = field(default_factory=list)
    duration: float = 0.0
    retries: int = 0
    answer: dict[str, Any] = field(default_factory=dict)  # actual_status, content_type, url, curl, example, shape

    @property
    def id(self) -> str:
        return self.item.id

    @property
    def open_findings(self) -> list[Finding]:
        return [f for f in self.findings if not f.known]

    @property
    def ran(self) -> bool:
        """The item asked the server (or the recording) and got an answer it could judge."""
        return self.outcome not in (Outcome.SKIPPED, Outcome.ERROR, Outcome.UNAVAILABLE)

    def skipped(self, skip: Skip) -> ItemResult:
        """This result, skipped for `skip`."""
        self.outcome, self.skip, self.reason = Outcome.SKIPPED, skip, skip.reason
        return self

    def as_dict(self) -> dict[str, Any]:
        ep, case = self.item.endpoint, self.item.case
        record: dict[str, Any] = {
            "id": self.item.id, "endpoint": ep.id, "area": ep.area, "method": ep.method, "path": ep.path,
            "role": self.item.role, "case": case.name, "operation_id": ep.operation_id, "source": ep.source,
            "expected_status": self.item.expected_status, "actual_status": self.answer.get("actual_status"),
            "outcome": self.outcome.value, "reason": self.reason, "schema_checked": self.schema_checked,
            "findings": [f.as_dict() for f in self.findings], "duration": round(self.duration, 4),
            "server_version": self.server_version, "tool_version": __version__}
        record["kind"] = self.item.kind.value
        if self.skip:
            record["skip"] = {"code": self.skip.code.value, "reason": self.skip.reason}
        if self.retries:
            record["retries"] = self.retries
        record.update({k: v for k, v in self.answer.items() if k != "actual_status"})
        return record


def collect(specs: SpecSet, negative_examples: int = 0, discover: bool = False) -> Iterator[Item]:
    """Every item of the spec set, file by file in the order of their names (pytest's order): endpoint x case x
    role, then the generated bad inputs of an endpoint (`negative_examples` > 0); the discovery probes
    (`discover`) where discovery.yaml falls."""
    files: list[tuple[str, Callable[[], Iterator[Item]]]] = [
        (area.file.name, functools.partial(area_items, specs, area.name, negative_examples)) for area in specs.areas]
    if discover:
        files.append(("discovery.yaml", functools.partial(discovery_items, specs)))
    for _, items in sorted(files, key=lambda file: file[0]):
        yield from items()


def area_items(specs: SpecSet, area_name: str, negative_examples: int = 0) -> Iterator[Item]:
    area = next(a for a in specs.areas if a.name == area_name)
    for endpoint in area.endpoints:
        for case in endpoint.cases:
            for role in case.roles or list(endpoint.auth):
                yield Item(f"{endpoint.id}[{role}-{case.name}]", endpoint, case, role)
        if negative_examples and negative.applies(endpoint) and "admin" in endpoint.auth:
            yield Item(f"{endpoint.id}[admin-negative]", endpoint,
                       replace(negative.probe_case(endpoint), name="negative"), "admin", Kind.NEGATIVE)


def discovery_items(specs: SpecSet) -> Iterator[Item]:
    """One item per candidate path no spec covers, plus the server's own OpenAPI paths, plus the route evidence
    of every known template (`discovery/routes[all]`)."""
    probes = [(p, p.strip("/").replace("{", "").replace("}", "").lower())
              for p in discovery.undescribed(specs.candidates, specs.endpoints)]
    for path, name in [*probes, ("/openapi.json", "published")]:
        case = Case(name=re.sub(r"[^a-z0-9-]", "-", name) or "root", line=1)
        endpoint = Endpoint(id="discovery/undocumented", area="discovery", method="GET", path=path,
                            versions=Versions(""), source="specs/discovery.yaml",
                            summary="an endpoint the server has and no spec describes",
                            auth={"admin": 404}, cases=[case], responses=[], file=specs.root / "discovery.yaml",
                            line=1)
        yield Item(f"discovery/undocumented[{path}]", endpoint, case, "admin", Kind.DISCOVERY)
    case = Case(name="all", line=1)
    endpoint = Endpoint(id="discovery/routes", area="discovery", method="GET", path="/", versions=Versions(""),
                        source="specs/discovery.yaml", summary="which route templates answer on the server",
                        auth={"admin": 200}, cases=[case], responses=[], file=specs.root / "discovery.yaml", line=1)
    yield Item("discovery/routes[all]", endpoint, case, "admin", Kind.ROUTES)

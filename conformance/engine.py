"""The engine, free of pytest: which items a spec set has (`collect`), and what one item finds on the server
(`run_item(session, item) -> ItemResult`). The pytest plugin and the CLI are thin adapters around it."""

from __future__ import annotations

import contextvars
import functools
import itertools
import json
import re
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from conformance import __version__, discovery, negative
from conformance.checks import Finding, check_exchange, declared_paths, schema_findings, security_findings, \
    with_security
from conformance.client import Credential, Exchange, Tally, tallied
from conformance.errors import ConformanceError, ServerGone, Unavailable
from conformance.har import exchange_item
from conformance.known import apply_known
from conformance.model import Case, Endpoint, SpecSet
from conformance.results import example_body, shape, write_results
from conformance.run import UmamiRun
from conformance.values import MissingValue, render
from conformance.versions import Versions, path_regex, template_key
from umami_results.vocabulary import Kind, Outcome, SkipCode

READ_ONLY_NO_WEBSITE = "read-only run without --umami-website-id"


@dataclass(frozen=True)
class Skip:
    """Why an item was not checked: a code of the shared vocabulary, and the details in words."""

    code: SkipCode
    reason: str


@dataclass
class SessionOutcome:
    """What a session tells whoever ran it, beside its results."""

    stopped: ConformanceError | None = None  # a set-up error, or the server gone, that stopped the session
    not_written: str | None = None  # why results.json was not written (the run produced no results)
    empty: str | None = None  # why the run tested nothing (every selected item skipped)
    cleanup: str = ""  # what the cleanup removed and what remains


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


def run_item(run: UmamiRun, item: Item) -> ItemResult:
    """Check one item against the server (or the recordings). Never raises for the item's own sake: a skip, a
    transient failure, a finding and a tool error are outcomes. Only `ServerGone` (the server stopped
    answering) escapes: the run cannot go on. Every exchange is recorded (and replayed) under the item's id."""
    with exchange_item(item.id), tallied() as tally:
        return _run_item(run, item, tally)


def lane(item: Item, run: UmamiRun) -> str | None:
    """Which items this one may run beside (`batch`): those of the same lane, and skipped ones (lane "any": they
    send nothing). None: it runs alone.

    - "read": a GET that only reads state no item of its batch changes.
    - "write": a write that changes only its own throwaway object (a `target`, or what it `creates`; where
      websites cannot be deleted, the one kept target website, which nothing changes there), a write the spec
      expects the server to refuse (4xx), or an item on a session of its own (a fresh login). Such writes change
      nothing another write of the batch reads, and the batch ends before the next read, so every read sees what
      it sees in a sequential run. (On a server that wrongly accepts a refused write, the writes beside it may
      see its effect sooner than in order; the accepted write itself is a finding either way.)
    - "shared:<endpoint>": a write the spec expects to succeed on shared state (a report computed over the seeded
      traffic, an event sent to the run's website, a login): only beside the same endpoint's items.

    Alone: discovery (one shared prober), generated inputs (hypothesis is not thread-safe), and everything in a
    replay, which matches recorded answers in order."""
    if skip_reason(item, run):
        return "any"
    case = item.case
    if run.replay is not None or item.kind is not Kind.SPEC:
        return None
    if item.endpoint.method in ("GET", "HEAD") and not (case.target or case.creates or case.fresh_login):
        return "read"
    if case.target or case.creates or case.fresh_login or not 200 <= item.expected_status < 300:
        return "write"
    return f"shared:{item.endpoint.id}"


def batch(items: Sequence[Item | None], start: int, run: UmamiRun, concurrency: int) -> list[Item]:
    """The items that run together from `items[start]` on: it and the items that directly follow it in the same
    lane (`lane`), up to a None (not an item of the engine); only the first item with `concurrency` 1."""
    first = items[start]
    assert first is not None
    kind = lane(first, run) if concurrency > 1 else None
    if kind is None:
        return [first]
    group = [first]
    for other in itertools.islice(items, start + 1, None):
        other_kind = lane(other, run) if other is not None else None
        if other is None or other_kind is None or (other_kind != kind and "any" not in (kind, other_kind)):
            break
        kind = other_kind if kind == "any" else kind
        group.append(other)
    return group


def run_batch(run: UmamiRun, items: Sequence[Item | None], start: int, concurrency: int
              ) -> list[tuple[Item, ItemResult | ServerGone]]:
    """Run the batch that starts at `items[start]` (`batch`): each of its items with its result. Once an item met
    `ServerGone`, the items not started then have it as their result too."""
    group = batch(items, start, run, concurrency)
    results = run_items(run, group, concurrency)
    gone = next((r for r in results if isinstance(r, ServerGone)), None)
    return [(item, gone if result is None else result) for item, result in zip(group, results, strict=True)]


def run_all(run: UmamiRun, items: list[Item], concurrency: int) -> Iterator[tuple[Item, ItemResult | ServerGone]]:
    """Every item's result, in the items' order, batch after batch (`run_batch`). After `ServerGone` (yielded in
    the place of the item that met it) nothing more runs."""
    start = 0
    while start < len(items):
        ran = run_batch(run, items, start, concurrency)
        for item, result in ran:
            yield item, result
            if isinstance(result, ServerGone):
                return
        start += len(ran)


def run_items(run: UmamiRun, items: list[Item], concurrency: int) -> list[ItemResult | ServerGone | None]:
    """Run the items of one batch (`batch`) in a pool of `concurrency` threads; their results in the
    items' order. `ServerGone` is returned in the place of the item that met it, and the items not yet started
    then are not run (None). Ctrl-C or the --max-time alarm stops the pool: the items in flight finish their
    request, the others are not started, and the interrupt goes on."""
    stop = threading.Event()

    def task(item: Item) -> ItemResult | ServerGone | None:
        if stop.is_set():
            return None
        try:
            return run_item(run, item)
        except ServerGone as exc:
            stop.set()
            return exc

    if concurrency <= 1 or sum(1 for item in items if not skip_reason(item, run)) <= 1:
        return [task(item) for item in items]  # a skip sends nothing: no pool for one item that asks the server
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ucf-item")
    try:
        # each task in its own copy of this context: the item and tally context variables stay per item
        futures = [pool.submit(contextvars.copy_context().run, task, item) for item in items]
        return [f.result() for f in futures]
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _run_item(run: UmamiRun, item: Item, tally: Tally) -> ItemResult:
    result = ItemResult(item, run.server_version)
    skip = skip_reason(item, run)
    if skip:
        return result.skipped(skip)
    start = time.perf_counter()
    exchange = None
    try:
        findings, checked, exchange = _execute(item, run, result)
    except MissingValue as exc:
        return result.skipped(_missing_reason(exc.args[0], run))
    except ServerGone:
        raise
    except Unavailable as exc:  # transient after the retries: not checked, and never drift
        result.outcome, result.reason = Outcome.UNAVAILABLE, run.client.redactor.text(str(exc))
        return result
    except ConformanceError as exc:
        if not tally.not_recorded:
            result.reason = run.client.redactor.text(str(exc))
            return result  # ERROR: a failure of the run's own requests (e.g. a login), reported, not raised
        findings, checked = [], False  # a target or login the replay lacks
    except Exception as exc:  # a bug of the tool must not end the run: it is reported per item
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        result.reason = run.client.redactor.text(f"{type(exc).__name__}: {exc} ({frame.filename.rsplit('/', 1)[-1]}"
                                                 f":{frame.lineno})")
        return result
    finally:
        result.duration = time.perf_counter() - start
        result.retries = tally.retries
    if tally.not_recorded:
        return result.skipped(Skip(SkipCode.NOT_RECORDED, "not in the recording"))
    apply_known(findings, run.known, item.role, item.case.name, run.server_versions)
    contract = run.contract_once() if findings and exchange is not None else None
    for finding in findings if contract else []:
        finding.contract = contract.verdict(finding, item.endpoint.method, item.endpoint.path, exchange)
    result.schema_checked, result.findings = checked, findings
    if exchange is not None:
        result.answer = _answer(exchange, run)
    if result.open_findings:
        result.outcome = Outcome.FAILED
    else:
        result.outcome = Outcome.KNOWN if findings else (Outcome.PASSED if checked else Outcome.PASSED_NO_SCHEMA)
    return result


def _answer(exchange: Exchange, run: UmamiRun) -> dict[str, Any]:
    body = exchange.body
    return {"actual_status": exchange.response.status_code,
            "content_type": exchange.response.headers.get("content-type"),
            "url": run.client.redactor.text(_without_query(exchange.request.url)),
            "curl": run.client.redactor.curl(exchange.request),
            "example": example_body(exchange, run.client.redactor),
            "shape": shape(body) if body is not None else None}


def _without_query(url: httpx.URL) -> str:
    """The URL as text without its query, as `copy_with(query=None)` gives it (without parsing it again: the
    first `?` of a parsed URL starts its query)."""
    return str(url.copy_with(query=None)) if url.fragment else str(url).partition("?")[0]


def skip_reason(item: Item, run: UmamiRun) -> Skip | None:
    """Why the item is not checked on this server and in this run, or None."""
    ep, case = item.endpoint, item.case
    detected = run.detected
    if detected is not None and not detected.applies(ep.versions):
        return Skip(SkipCode.OUT_OF_RANGE,
                    f"not on this server: applies to Umami {ep.versions}, server is {detected.range}")
    if detected is not None and not detected.applies(case.versions):
        return Skip(SkipCode.CASE_OUT_OF_RANGE,
                    f"not on this server: case applies to Umami {case.versions}, server is {detected.range}")
    if run.read_only and (ep.writes or case.target):
        return Skip(SkipCode.READ_ONLY, "read-only run: write endpoint not checked")
    if item.role in run.unavailable:
        return Skip(SkipCode.ROLE_UNAVAILABLE, f"role {item.role!r} not available: {run.unavailable[item.role]}")
    if item.role != "anonymous" and item.role not in run.credentials:
        return Skip(SkipCode.NO_CREDENTIAL, f"role {item.role!r} has no credentials in this run")
    if case.creates == "website" and run.sandbox is not None and run.sandbox.keeps \
            and 200 <= item.expected_status < 300:
        return Skip(SkipCode.UNDELETABLE,
                    "not checked on this server: it cannot delete websites (Umami 2.10.x: DELETE answers 500), so "
                    "every website created would stay for good; runs reuse a kept set (ucf-keep-*) instead")
    return None


def _missing_reason(name: str, run: UmamiRun) -> Skip:
    """Why an item that needs `${name}` is skipped."""
    if run.read_only and name.split(".")[0] == "website" and not run.options.website_id:
        return Skip(SkipCode.NO_WEBSITE, f"{READ_ONLY_NO_WEBSITE}: there is no existing website to read")
    if run.read_only:
        return Skip(SkipCode.READ_ONLY,
                    f"read-only run: needs ${{{name}}}, which only the sandbox (not created in read-only runs) has")
    return Skip(SkipCode.MISSING_VALUE, f"needs ${{{name}}}, which this run does not have")


def _execute(item: Item, run: UmamiRun, result: ItemResult) -> tuple[list[Finding], bool, Exchange | None]:
    if item.kind is Kind.NEGATIVE:
        return _negative(item, run, result)
    if item.kind is Kind.DISCOVERY:
        return _discover(item, run)
    if item.kind is Kind.ROUTES:
        return _routes(run, result)
    ep, case = item.endpoint, item.case
    context = dict(run.context)
    if case.target:
        assert run.sandbox is not None
        context["target"] = run.sandbox.target(case.target)
    path = ep.path.format(**{k: render(v, context) for k, v in case.path_params.items()})
    auth = run.credentials.get(item.role)
    if case.fresh_login and auth is not None:
        auth = _fresh_login(item.role, run) or auth
    exchange = run.client.request(ep.method, path, auth=auth, params=render(case.query, context) or None,
                                  json_body=render(case.body, context))
    if exchange.not_recorded:
        return [], False, exchange  # skipped: there is no answer to check
    exchange.settled()  # a gateway error that outlived the retries: the item is unavailable
    if case.creates and run.sandbox is not None and exchange.response.is_success:
        run.sandbox.adopt(case.creates, exchange.json())
    if case.target and ep.method == "DELETE" and exchange.response.is_success \
            and path == f"/{case.target}s/{context['target']['id']}":
        run.sandbox.deleted(context["target"]["id"])
    findings, checked = _check_versions(item, exchange, run, context)
    # Case schemas state what the sandbox's seeded traffic must give: without a sandbox (read-only)
    # there is no seed to expect, and only the endpoint's schema applies; nor in a replayed answer
    # about other objects (recheck).
    seeded = run.sandbox is not None and not exchange.other_objects
    if seeded and case.schema_uri and exchange.response.status_code == item.expected_status \
            and exchange.response.is_success:
        missing = run.sandbox.not_seeded(case.needs)
        if missing:  # the sandbox left this out on purpose (results.json seeded.skipped says why)
            result.reason = f"case schema not applied: {missing}"
        else:
            findings += schema_findings(ep, run.specs.validator_for(case.schema_uri), exchange.body,
                                        run.client.redactor.curl(exchange.request), run.client.redactor,
                                        exchange.replayed)
    return with_security(_security(ep, exchange, run), findings), checked, exchange


def _negative(item: Item, run: UmamiRun, result: ItemResult) -> tuple[list[Finding], bool, Exchange | None]:
    """Generated bad inputs for one endpoint; a 5xx is a finding with the smallest request."""
    ep = item.endpoint
    parts = negative.render_parts(item.case, lambda v: render(v, run.context))
    failing, sent = negative.find_server_errors(run.client, ep, run.credentials.get(item.role), parts,
                                                run.options.negative)
    result.reason = f"{sent} generated requests" + ("" if failing else ", no 5xx")
    if failing is None:
        return [], False, None
    curl = run.client.redactor.curl(failing.request)
    return [Finding("status-changed", ep.id, "$", "4xx", failing.response.status_code,
                    "server error on a generated bad input (smallest request hypothesis found)", curl)], \
        False, failing


def _discover(item: Item, run: UmamiRun) -> tuple[list[Finding], bool, Exchange | None]:
    """One candidate path: an existing route that no spec describes is a finding."""
    prober = run.prober
    # Candidates were filtered at collection; the server's own document only now.
    paths = (discovery.undescribed(prober.published_paths(), run.specs.endpoints)
             if item.case.name == "published" else [item.endpoint.path])
    findings: list[Finding] = []
    last = None
    for path in paths:
        found = prober.exists(path, run.context)
        if found is not None:
            last = found
            curl = run.client.redactor.curl(found.request)
            findings += security_findings(item.endpoint, found, curl, own=_own_credentials(found))
            findings.append(Finding("undocumented-endpoint", item.endpoint.id, path, "no route or a spec",
                                    f"HTTP {found.response.status_code}",
                                    f"GET {path} exists on the server; no spec describes it", curl))
    return findings, False, last


def _routes(run: UmamiRun, result: ItemResult) -> tuple[list[Finding], bool, Exchange | None]:
    """Route evidence, not a check: GET every template of the specs, the candidates and the route inventory
    (those an undocumented item probed already are not sent again); results.json `routes` lists the answers."""
    prober = run.prober
    templates = discovery.route_templates(run.specs)
    failed = []
    for template in templates:
        if template_key(template) not in prober.seen:
            try:
                prober.exists(template, run.context)
            except Unavailable as exc:  # the other templates are still evidence
                failed.append(str(exc))
    counts = Counter(r.presence for r in prober.seen.values())
    result.reason = (f"{len(templates)} route templates, {len(prober.seen)} probed paths answered: " +
                     ", ".join(f"{counts[p]} {p}" for p in ("present", "absent", "error")))
    if failed:
        raise Unavailable(f"{len(failed)} of {len(templates)} probes transient after the retries "
                          f"(first: {failed[0]}); {result.reason}")
    return [], False, None


def _security(ep: Endpoint, exchange: Exchange, run: UmamiRun) -> list[Finding]:
    """Secrets in a success answer, whatever its shape: credentials are allowed only where one of the
    endpoint's response schemas for this status names them, or as the caller's own."""
    status = exchange.response.status_code
    if not exchange.response.is_success:
        return []
    declared = run.credential_paths.get((ep.id, status))
    if declared is None:
        declared = set()
        for spec in ep.responses:
            if spec.status == status and spec.schema is not None:
                declared |= declared_paths(spec.schema, run.specs.registry.resolver(base_uri=spec.schema_uri))
        run.credential_paths[(ep.id, status)] = declared
    return security_findings(ep, exchange, run.client.redactor.curl(exchange.request), declared,
                             _own_credentials(exchange))


def _own_credentials(exchange: Exchange) -> set[str]:
    """The credentials the request itself sent (a bearer token, a share token, an API key)."""
    headers = exchange.request.headers
    values = {headers.get("x-umami-share-token"), headers.get("x-umami-api-key")}
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    values.add(token if scheme.lower() == "bearer" else None)
    return {v for v in values if v}


# What each role owns or may view, as `run.context` names it: a success for a refused role whose body holds an
# object none of whose ids is one of these shows other principals' objects (`checks.foreign_objects`: security).
# The admin may see everything; it is never judged.
OWNS = {"anonymous": (), "share": ("website",), "view-only": ("viewer", "team", "team_website"),
        "user": ("user", "website", "team", "team_website", "target")}


def own_ids(role: str, context: dict[str, Any], exchange: Exchange) -> set[str] | None:
    """The ids of what `role` owns or may view (OWNS), or None when that cannot be told: the admin, and a
    replayed answer about other objects than the run's (a template match)."""
    if role not in OWNS or exchange.other_objects:
        return None
    return {str(context[name]["id"]) for name in OWNS[role]
            if isinstance(context.get(name), dict) and context[name].get("id")}


def _check_versions(item: Item, exchange: Exchange, run: UmamiRun,
                    context: dict[str, Any]) -> tuple[list[Finding], bool]:
    """Check against the shapes of every version the server may be: the answer conforms when it holds for
    one of them; otherwise the findings are those of the newest. `context`: the item's values (its target)."""
    ep = item.endpoint
    own = own_ids(item.role, context, exchange)
    results = []
    seen: set[tuple[str, ...]] = set()
    for version in run.server_versions or [None]:
        responses = ep.responses_for(exchange.response.status_code, version)
        error_shape = run.specs.error_shape(version)
        key = (*(r.schema_uri for r in responses[:1]), error_shape.description if error_shape else "")
        if key in seen:
            continue
        seen.add(key)
        results.append(check_exchange(ep, item.expected_status, exchange, responses, run.specs.validator_for,
                                      run.client.redactor, error_shape,
                                      role_allowed=200 <= ep.auth[item.role] < 300,
                                      own=own))
        if not results[-1][0]:
            return results[-1]
    return results[0]


def _fresh_login(role: str, run: UmamiRun) -> Credential | None:
    """A new session for `role` (None where the role does not log in, e.g. an API key)."""
    target = run.options.target
    if role == "admin" and target.username and target.password and not target.api_key:
        return run.client.login(target.username, target.password)
    label = {"user": "user", "view-only": "viewer"}.get(role)
    if label and run.sandbox is not None and label in run.sandbox.passwords:
        return run.sandbox.login_again(label)
    return None


def setup_results(run: UmamiRun) -> list[ItemResult]:
    """The set-up's drift (answers the run worked around) as results of the endpoints the requests went to,
    case `setup`, one per endpoint and role: a drift there is a finding like any other."""
    results: dict[str, ItemResult] = {}
    base = httpx.URL(run.options.target.api_base).path.rstrip("/")
    for drift in run.client.drift:
        ex = drift.exchange
        path = ex.request.url.path.removeprefix(base) or "/"
        ep = _endpoint_of(run, ex.request.method, path)
        role = _role_of(run, ex)
        endpoint = ep or Endpoint(id=f"setup/{ex.request.method.lower()}{re.sub(r'[^a-z0-9]+', '-', path)}",
                                  area="setup", method=ex.request.method, path=path, versions=Versions(""),
                                  source="the run's set-up", summary="", auth={}, cases=[], responses=[],
                                  file=run.specs.root, line=1)
        item_id = f"{endpoint.id}[{role}-setup]"
        result = results.get(item_id)
        if result is None:
            case = Case(name="setup", line=1, status=drift.expected_status)
            result = results[item_id] = ItemResult(Item(item_id, endpoint, case, role, Kind.SETUP),
                                                   run.server_version, duration=ex.seconds)
            result.answer = _answer(ex, run)
            result.answer.pop("shape")
        finding = Finding(drift.cls, endpoint.id, drift.json_path, drift.expected, drift.actual, drift.message,
                          result.answer["curl"])
        apply_known([finding], run.known, role, "setup", run.server_versions)
        result.findings.append(finding)
        result.reason = "; ".join(f.message for f in result.findings)
        result.outcome = Outcome.FAILED if result.open_findings else Outcome.KNOWN
    return list(results.values())


def _endpoint_of(run: UmamiRun, method: str, path: str) -> Endpoint | None:
    """The spec endpoint a request goes to (on this server's versions), the one with fewest parameters."""
    found = [ep for ep in run.specs.endpoints if ep.method == method and path_regex(ep.path).fullmatch(path)
             and (run.detected is None or run.detected.applies(ep.versions))]
    return min(found, key=lambda ep: ep.path.count("{"), default=None)


def _role_of(run: UmamiRun, ex: Exchange) -> str:
    """Whose request it was: the role whose credential it carried (a login: whose username it sent)."""
    if ex.request.url.path.endswith("/auth/login"):
        try:
            username = json.loads(ex.request.content).get("username")
        except (ValueError, AttributeError):
            username = None
        sandbox = run.sandbox
        labels = {**{label: f"{sandbox.prefix}{label}" for label in sandbox.passwords}, **sandbox.logins} \
            if sandbox else {}
        label = next((label for label, name in labels.items() if name == username), None)
        return {"user": "user", "viewer": "view-only"}.get(label or "", "admin")
    for role, credential in run.credentials.items():
        if ex.request.headers.get(credential.header) == credential.value:
            return role
    return "admin" if {"authorization", "x-umami-api-key"} & set(ex.request.headers) else "anonymous"


def finish_session(run: UmamiRun, outcome: SessionOutcome, interrupted: bool) -> None:
    """After the last item, also after a stop or an interrupt: remove what the sandbox made, then write
    results.json, unless the run produced nothing worth writing (the last good one then stays as it was)."""
    try:
        with exchange_item("cleanup"):
            run.finish()
    except ConformanceError as exc:
        run.residue.append({"kind": "run", "id": "-", "name": "-", "reason": f"cleanup failed: {exc}"})
    outcome.cleanup = run.cleanup_summary()
    empty = nothing_tested(run.results)
    outcome.empty = None if interrupted else empty
    ran = any(r.outcome is not Outcome.SKIPPED and r.item.kind is not Kind.SETUP for r in run.results)
    if outcome.stopped is not None and not ran:
        outcome.not_written = f"the run stopped before any item ran: {outcome.stopped}"
    elif not ran:
        outcome.not_written = empty or "no item ran"
    else:
        write_results(run, interrupted=interrupted)


def setup_failed(run: UmamiRun) -> bool:
    """Whether the set-up met drift that is not a known difference (a finding like any other)."""
    return any(r.item.kind is Kind.SETUP and r.outcome is Outcome.FAILED for r in run.results)


def skip_group(skip: Skip) -> str:
    """A skip reason without its details (versions, why a role is not available), to count skips by kind."""
    detailed = (SkipCode.OUT_OF_RANGE, SkipCode.CASE_OUT_OF_RANGE, SkipCode.ROLE_UNAVAILABLE, SkipCode.NO_WEBSITE)
    return skip.reason.split(":")[0] if skip.code in detailed else skip.reason


def nothing_tested(results: list[ItemResult]) -> str | None:
    """Why a run tested nothing (every selected item skipped), or None. Such a run never passes."""
    results = [r for r in results if r.item.kind is not Kind.SETUP]  # the set-up's drift: no items
    if not results or any(r.outcome is not Outcome.SKIPPED for r in results):
        return None
    reasons = Counter(r.reason or "" for r in results)
    top = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(3))
    return f"nothing was tested: all {len(results)} selected items were skipped ({top})"

"""pytest plugin (pytest11 entry point): spec YAML files -> one item per endpoint x role x case."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn
from collections.abc import Iterator

import httpx
import pytest

from conformance import __version__, discovery, negative
from conformance.checks import (CLASSES, Finding, check_exchange, class_rank, declared_paths, schema_findings,
                               security_findings, with_security)
from conformance.client import REDACTED, Credential, Exchange, Target
from conformance.contract import Contract
from conformance.errors import ConformanceError, ConnectionFailed, ServerGone, Unavailable, cli_flags
from conformance.har import exchange_item
from conformance.known import apply_known, load_known, stale
from conformance.loader import DEFAULT_SPECS, Case, Endpoint, SpecSet, load_specs
from conformance.replay import Replay
from conformance.results import example_body, shape, write_results
from conformance.run import Options, UmamiRun
from conformance.values import MissingValue, render
from conformance.versions import Versions, path_regex, template_key


@dataclass
class SessionOutcome:
    """What the last session tells the CLI, which runs pytest in the same process."""

    stopped: ConformanceError | None = None  # a set-up error that stopped the session (pytest.exit)
    not_written: str | None = None  # why results.json was not written (the run produced no results)
    empty: str | None = None  # why the run tested nothing (every selected item skipped)
    cleanup: str = ""  # what the cleanup removed and what remains


LAST = SessionOutcome()
RUN_KEY = pytest.StashKey["UmamiRun | None"]()
SPECS_KEY = pytest.StashKey[SpecSet]()
ERROR_KEY = pytest.StashKey[str]()
READ_ONLY_NO_WEBSITE = "read-only run without --umami-website-id"
NOT_RECORDED = "not in the recording"  # a replay had no answer for one of the item's requests
REPLAY_URL = "http://umami"  # a replay sends nowhere; the recordings answer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("umami", "Umami API conformance")
    env = os.environ.get
    group.addoption("--umami-url", default=env("UMAMI_URL"),
                    help="Umami server URL, e.g. http://localhost:3000 or https://api.umami.is/v1 (env UMAMI_URL)")
    group.addoption("--umami-username", default=env("UMAMI_USERNAME", "admin"),
                    help="admin username for self-hosted login (env UMAMI_USERNAME, default admin)")
    group.addoption("--umami-password", default=env("UMAMI_PASSWORD", "umami"),
                    help="admin password (env UMAMI_PASSWORD, default umami)")
    group.addoption("--umami-api-key", default=env("UMAMI_API_KEY"),
                    help="Umami Cloud API key, sent as x-umami-api-key (env UMAMI_API_KEY)")
    group.addoption("--umami-user-username", default=env("UMAMI_USER_USERNAME"),
                    help="an existing regular user, used when the server cannot create one (env UMAMI_USER_USERNAME)")
    group.addoption("--umami-user-password", default=env("UMAMI_USER_PASSWORD"),
                    help="its password (env UMAMI_USER_PASSWORD)")
    group.addoption("--umami-viewer-username", default=env("UMAMI_VIEWER_USERNAME"),
                    help="another existing regular user, made the view-only team member (env UMAMI_VIEWER_USERNAME)")
    group.addoption("--umami-viewer-password", default=env("UMAMI_VIEWER_PASSWORD"),
                    help="its password (env UMAMI_VIEWER_PASSWORD)")
    group.addoption("--umami-version", default=env("UMAMI_VERSION"),
                    help="Umami version to assume instead of detecting it (env UMAMI_VERSION)")
    group.addoption("--umami-specs", default=env("UMAMI_SPECS", str(DEFAULT_SPECS)),
                    help="directory of spec files (default: the bundled specs/)")
    group.addoption("--umami-results", default="reports/results.json",
                    help="where results.json is written (default reports/results.json)")
    group.addoption("--umami-read-only", action="store_true", default=False,
                    help="send no request other than GET and login; write endpoints are reported as not checked")
    group.addoption("--umami-website-id", default=env("UMAMI_WEBSITE_ID"),
                    help="existing website to read in --umami-read-only mode")
    group.addoption("--umami-discover", action="store_true", default=False,
                    help="probe specs/discovery.yaml candidates and the server's OpenAPI for undocumented endpoints")
    group.addoption("--umami-negative", type=int, default=0, metavar="N",
                    help="send N generated bad inputs per GET endpoint (hypothesis, seeded); 5xx is a finding")
    group.addoption("--umami-contract", default=env("UMAMI_CONTRACT"),
                    help="OpenAPI document for the three-way check (default: the one the server publishes)")
    group.addoption("--umami-timeout", type=float, default=15.0,
                    help="seconds to wait for one answer (default 15)")
    group.addoption("--umami-retries", type=int, default=3, metavar="N",
                    help="send a request again up to N times after a transient failure (502/503/504, 429, a "
                         "dropped connection, a timeout; writes only when they provably did not arrive); default 3")
    group.addoption("--umami-retry-wait", type=float, default=0.25, metavar="S",
                    help="seconds before the first retry, doubling each time (at most 8); Retry-After wins "
                         "(default 0.25)")
    group.addoption("--umami-record", default=None, metavar="FILE.har",
                    help="write every exchange of the run as HAR 1.2, secrets redacted (gzip when FILE ends in .gz)")
    group.addoption("--umami-replay", action="append", default=[], metavar="FILE.har",
                    help="answer from these recordings instead of a server (repeatable; see `recheck`)")
    group.addoption("--umami-ledger-dir", default=None,
                    help="where the sandbox ledger is kept (default: beside results.json)")
    group.addoption("--umami-cli", action="store_true", default=False,
                    help="set by `umami-conformance`, which reports set-up errors itself")


def _specs_dir(config: pytest.Config) -> Path:
    return Path(config.getoption("--umami-specs")).resolve()


def pytest_configure(config: pytest.Config) -> None:
    global LAST
    LAST = SessionOutcome()
    config.stash[RUN_KEY] = None
    specs_dir = _specs_dir(config)
    if not any(_in_specs(Path(a.split("::")[0]).resolve(), specs_dir) or
               Path(a).resolve() == specs_dir for a in config.args):
        return
    try:
        specs = load_specs(specs_dir)
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SPECS_KEY] = specs
    for area in specs.areas:
        config.addinivalue_line("markers", f"{area.name}: endpoints of the {area.title} area")
    config.addinivalue_line("markers", "negative: generated bad inputs (--umami-negative)")
    config.addinivalue_line("markers", "discovery: undocumented endpoints (--umami-discover)")
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _in_specs(path: Path, specs_dir: Path) -> bool:
    return path.parent == specs_dir and path.suffix == ".yaml"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if SPECS_KEY not in config.stash or not _in_specs(file_path.resolve(), _specs_dir(config)):
        return None
    if file_path.name == "discovery.yaml":
        return DiscoveryFile.from_parent(parent, path=file_path) if config.getoption("--umami-discover") else None
    area = next((a for a in config.stash[SPECS_KEY].areas if a.file.resolve() == file_path.resolve()), None)
    return SpecFile.from_parent(parent, path=file_path, area_name=area.name) if area else None


class SpecFile(pytest.File):
    """One spec file (an area)."""

    def __init__(self, *, area_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.area_name = area_name

    def collect(self) -> Iterator[pytest.Item]:
        specs = self.config.stash[SPECS_KEY]
        area = next(a for a in specs.areas if a.name == self.area_name)
        examples = self.config.getoption("--umami-negative")
        for endpoint in area.endpoints:
            for case in endpoint.cases:
                for role in case.roles or list(endpoint.auth):
                    item = SpecItem.from_parent(self, name=f"{endpoint.id}[{role}-{case.name}]",
                                                endpoint=endpoint, case=case, role=role)
                    item.add_marker(getattr(pytest.mark, area.name))
                    yield item
            if examples and negative.applies(endpoint) and "admin" in endpoint.auth:
                item = NegativeItem.from_parent(self, name=f"{endpoint.id}[admin-negative]", endpoint=endpoint,
                                                case=replace(negative.probe_case(endpoint), name="negative"),
                                                role="admin")
                item.add_marker(getattr(pytest.mark, area.name))
                item.add_marker(pytest.mark.negative)
                yield item


class DiscoveryFile(pytest.File):
    """specs/discovery.yaml: one item per candidate no spec covers, plus the server's own OpenAPI paths, plus
    the route evidence of every known template (`discovery/routes[all]`)."""

    def collect(self) -> Iterator[pytest.Item]:
        specs = self.config.stash[SPECS_KEY]
        probes = [(p, p.strip("/").replace("{", "").replace("}", "").lower())
                  for p in discovery.undescribed(specs.candidates, specs.endpoints)]
        for path, name in [*probes, ("/openapi.json", "published")]:
            endpoint = Endpoint(id="discovery/undocumented", area="discovery", method="GET", path=path,
                                versions=Versions(""), source="specs/discovery.yaml",
                                summary="an endpoint the server has and no spec describes",
                                auth={"admin": 404}, cases=[], responses=[], file=self.path, line=1)
            case = Case(name=re.sub(r"[^a-z0-9-]", "-", name) or "root", line=1)
            endpoint.cases.append(case)
            item = DiscoveryItem.from_parent(self, name=f"discovery/undocumented[{path}]", endpoint=endpoint,
                                             case=case, role="admin")
            item.add_marker(pytest.mark.discovery)
            yield item
        case = Case(name="all", line=1)
        endpoint = Endpoint(id="discovery/routes", area="discovery", method="GET", path="/", versions=Versions(""),
                            source="specs/discovery.yaml", summary="which route templates answer on the server",
                            auth={"admin": 200}, cases=[case], responses=[], file=self.path, line=1)
        item = RoutesItem.from_parent(self, name="discovery/routes[all]", endpoint=endpoint, case=case, role="admin")
        item.add_marker(pytest.mark.discovery)
        yield item


class SpecFailure(Exception):
    """Findings of one item that are not known differences."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(f"{len(findings)} finding(s)")
        self.findings = findings


class SpecItem(pytest.Item):
    """One request: endpoint x role x case."""

    def __init__(self, *, endpoint: Endpoint, case: Case, role: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint, self.case, self.role = endpoint, case, role

    def runtest(self) -> None:
        run = _run(self.config)
        record = _new_record(self, run)
        run.records.append(record)
        reason = _skip_reason(self, run)
        if reason:
            record.update(outcome="skipped", reason=reason)
            pytest.skip(reason)
        start = time.perf_counter()
        not_recorded, retries = run.client.not_recorded, run.client.retries
        try:
            findings, schema_checked, exchange = self.execute(run, record)
        except MissingValue as exc:
            reason = _missing_reason(exc.args[0], run)
            record.update(outcome="skipped", reason=reason)
            pytest.skip(reason)
        except ServerGone as exc:
            _stop(self.config, exc, run)
        except Unavailable as exc:  # transient after the retries: not checked, and never drift
            record.update(outcome="unavailable", reason=run.client.redactor.text(str(exc)))
            pytest.skip(f"unavailable: {record['reason']}")
        except ConformanceError:
            if run.client.not_recorded == not_recorded:
                raise
            findings, schema_checked, exchange = [], False, None  # a target or login the replay lacks
        finally:
            record["duration"] = round(time.perf_counter() - start, 4)
            if run.client.retries > retries:
                record["retries"] = run.client.retries - retries
        if run.client.not_recorded != not_recorded:
            record.update(outcome="skipped", reason=NOT_RECORDED)
            pytest.skip(NOT_RECORDED)
        apply_known(findings, run.known, self.role, self.case.name, run.server_versions)
        contract = _contract(run) if findings and exchange is not None else None
        for finding in findings if contract else []:
            finding.contract = contract.verdict(finding, self.endpoint.method, self.endpoint.path, exchange)
        record.update(schema_checked=schema_checked, findings=[f.as_dict() for f in findings])
        if exchange is not None:
            record.update(
                actual_status=exchange.response.status_code,
                content_type=exchange.response.headers.get("content-type"),
                url=run.client.redactor.text(str(exchange.request.url.copy_with(query=None))),
                curl=run.client.redactor.curl(exchange.request),
                example=example_body(exchange, run.client.redactor),
                shape=shape(exchange.json()) if exchange.response.is_success and exchange.json() is not None
                else None)
        open_findings = [f for f in findings if not f.known]
        if open_findings:
            record["outcome"] = "failed"
            raise SpecFailure(open_findings)
        record["outcome"] = "known" if findings else ("passed" if schema_checked else "passed-no-schema")
        if findings:  # JUnit shows a pass; its properties say it is a known difference, and which
            self.user_properties.append(("outcome", "known"))
            self.user_properties += [(name, value) for f in findings for name, value in
                                     (("finding_class", f.cls), ("json_path", f.json_path), ("known_reason", f.known))]

    def execute(self, run: UmamiRun, record: dict[str, Any]) -> tuple[list[Finding], bool, Exchange | None]:
        return _execute(self, run, record)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SpecFailure):
            lines = [f"{self.endpoint.id} as {self.role}, case {self.case.name!r} "
                     f"({self.endpoint.file.name}:{self.case.line})"]
            for f in excinfo.value.findings:
                lines.append(f"  [{f.cls}] {f.json_path}{f' ({f.count} items)' if f.count > 1 else ''}: "
                             f"expected {f.expected!r}, actual {f.actual!r}"
                             f" - {f.message}" + (f" (contract: {f.contract})" if f.contract else ""))
            lines.append(f"  request: {excinfo.value.findings[0].curl}")
            lines.extend(_source_lines(self.endpoint.file, self.case.line))
            return "\n".join(lines)
        if isinstance(excinfo.value, ConformanceError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.case.line - 1, self.name


class NegativeItem(SpecItem):
    """Generated bad inputs for one endpoint; a 5xx is a finding with the smallest request."""

    def execute(self, run: UmamiRun, record: dict[str, Any]) -> tuple[list[Finding], bool, Exchange | None]:
        ep = self.endpoint
        parts = negative.render_parts(self.case, lambda v: render(v, run.context))
        examples = self.config.getoption("--umami-negative")
        failing, sent = negative.find_server_errors(run.client, ep, run.credentials.get(self.role), parts, examples)
        record["reason"] = f"{sent} generated requests" + ("" if failing else ", no 5xx")
        if failing is None:
            return [], False, None
        curl = run.client.redactor.curl(failing.request)
        return [Finding("status-changed", ep.id, "$", "4xx", failing.response.status_code,
                        "server error on a generated bad input (smallest request hypothesis found)", curl)], \
            False, failing


class DiscoveryItem(SpecItem):
    """One candidate path: an existing route that no spec describes is a finding."""

    def execute(self, run: UmamiRun, record: dict[str, Any]) -> tuple[list[Finding], bool, Exchange | None]:
        prober = _prober(run)
        # Candidates were filtered at collection; the server's own document only now.
        paths = (discovery.undescribed(prober.published_paths(), run.specs.endpoints)
                 if self.case.name == "published" else [self.endpoint.path])
        findings: list[Finding] = []
        last = None
        for path in paths:
            found = prober.exists(path, run.context)
            if found is not None:
                last = found
                curl = run.client.redactor.curl(found.request)
                findings += security_findings(self.endpoint, found, curl, own=_own_credentials(found))
                findings.append(Finding("undocumented-endpoint", self.endpoint.id, path, "no route or a spec",
                                        f"HTTP {found.response.status_code}",
                                        f"GET {path} exists on the server; no spec describes it", curl))
        return findings, False, last


class RoutesItem(SpecItem):
    """Route evidence, not a check: GET every template of the specs, the candidates and the route inventory
    (those an undocumented item probed already are not sent again); results.json `routes` lists the answers."""

    def execute(self, run: UmamiRun, record: dict[str, Any]) -> tuple[list[Finding], bool, Exchange | None]:
        prober = _prober(run)
        templates = discovery.route_templates(run.specs)
        failed = []
        for template in templates:
            if template_key(template) not in prober.seen:
                try:
                    prober.exists(template, run.context)
                except Unavailable as exc:  # the other templates are still evidence
                    failed.append(str(exc))
        counts = Counter(r.presence for r in prober.seen.values())
        record["reason"] = (f"{len(templates)} route templates, {len(prober.seen)} probed paths answered: " +
                            ", ".join(f"{counts[p]} {p}" for p in ("present", "absent", "error")))
        if failed:
            raise Unavailable(f"{len(failed)} of {len(templates)} probes transient after the retries "
                              f"(first: {failed[0]}); {record['reason']}")
        return [], False, None


def _contract(run: UmamiRun) -> Contract | None:
    """The contract given with --umami-contract, else the one the server publishes (looked up once)."""
    if run.contract is None:
        given = run.options.contract
        if given:
            run.contract = Contract.load(Path(given))
        else:
            doc = _prober(run).published_contract()
            run.contract = Contract(doc, f"{run.options.target.url} (published)") if doc else False
    return run.contract or None


def _prober(run: UmamiRun) -> discovery.Prober:
    if run.prober is None:
        run.prober = discovery.Prober(run.client, run.credentials.get("admin"), discovery.route_templates(run.specs))
    return run.prober


def _source_lines(path: Path, line: int, count: int = 6) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [f"  {path.name}:{n:>4} | {lines[n - 1]}" for n in range(line, min(line + count, len(lines) + 1))]


def _run(config: pytest.Config) -> UmamiRun:
    run = config.stash[RUN_KEY]
    if run is not None:
        return run
    if ERROR_KEY in config.stash:
        pytest.exit(config.stash[ERROR_KEY], returncode=3)
    specs = config.stash[SPECS_KEY]
    replay = _replay(config, specs)
    url = REPLAY_URL if replay else config.getoption("--umami-url")
    if not url:
        config.stash[ERROR_KEY] = "no Umami server given: pass --umami-url (or set UMAMI_URL)"
        LAST.stopped = ConnectionFailed(config.stash[ERROR_KEY])
        pytest.exit(config.stash[ERROR_KEY], returncode=3)
    target = Target(url=url, username=config.getoption("--umami-username"),
                    password=config.getoption("--umami-password"), api_key=config.getoption("--umami-api-key"),
                    timeout=config.getoption("--umami-timeout"), read_only=config.getoption("--umami-read-only"),
                    retries=config.getoption("--umami-retries"), retry_wait=config.getoption("--umami-retry-wait"))
    existing = _existing_users(config)
    if replay:  # the recorded run's borrowed users; their logins are answered from the recording
        existing = {**{label: (name, REDACTED) for label, name in replay.users.items()}, **existing}
    record = config.getoption("--umami-record")
    options = Options(target=target, specs_dir=_specs_dir(config),
                      results_path=Path(config.getoption("--umami-results")),
                      ledger_dir=Path(ledger) if (ledger := config.getoption("--umami-ledger-dir")) else None,
                      version=config.getoption("--umami-version"),
                      website_id=config.getoption("--umami-website-id"),
                      existing_users=existing, contract=config.getoption("--umami-contract"),
                      record=Path(record) if record else None, replay=replay,
                      prefix=replay.prefix if replay else None)
    run = UmamiRun(options=options, specs=specs, known=load_known(specs.root))
    config.stash[RUN_KEY] = run
    try:
        with exchange_item("setup"):
            run.start()
    except ConformanceError as exc:
        _stop(config, exc, run)
    run.records += setup_records(run)
    return run


def _stop(config: pytest.Config, exc: ConformanceError, run: UmamiRun) -> NoReturn:
    """End the session: the server cannot be used (set-up failed, or it stopped answering). Cleanup still runs
    (pytest_sessionfinish), and the CLI adds what it removed and what remains."""
    message = run.client.redactor.text(str(exc))
    config.stash[ERROR_KEY] = message
    LAST.stopped = type(exc)(message)
    pytest.exit(message, returncode=int(exc.exit_code))


def setup_records(run: UmamiRun) -> list[dict[str, Any]]:
    """The set-up's drift (answers the run worked around) as records of the endpoints the requests went to,
    case `setup`, one per endpoint and role: a drift there is a finding like any other."""
    records: dict[str, dict[str, Any]] = {}
    base = httpx.URL(run.options.target.api_base).path.rstrip("/")
    for drift in run.client.drift:
        ex = drift.exchange
        path = ex.request.url.path.removeprefix(base) or "/"
        ep = _endpoint_of(run, ex.request.method, path)
        role = _role_of(run, ex)
        endpoint_id = ep.id if ep else f"setup/{ex.request.method.lower()}{re.sub(r'[^a-z0-9]+', '-', path)}"
        record = records.get(f"{endpoint_id}[{role}-setup]")
        if record is None:
            record = records[f"{endpoint_id}[{role}-setup]"] = {
                "id": f"{endpoint_id}[{role}-setup]", "endpoint": endpoint_id, "area": ep.area if ep else "setup",
                "method": ex.request.method, "path": ep.path if ep else path, "role": role, "case": "setup",
                "operation_id": ep.operation_id if ep else None, "source": ep.source if ep else "the run's set-up",
                "expected_status": drift.expected_status, "actual_status": ex.response.status_code,
                "content_type": ex.response.headers.get("content-type"), "outcome": None, "reason": None,
                "url": run.client.redactor.text(str(ex.request.url.copy_with(query=None))),
                "curl": run.client.redactor.curl(ex.request), "example": example_body(ex, run.client.redactor),
                "schema_checked": False, "findings": [], "duration": round(ex.seconds, 4),
                "server_version": run.server_version, "tool_version": __version__}
        finding = Finding(drift.cls, endpoint_id, drift.json_path, drift.expected, drift.actual, drift.message,
                          record["curl"])
        apply_known([finding], run.known, role, "setup", run.server_versions)
        record["findings"].append(finding.as_dict())
        record["reason"] = "; ".join(f["message"] for f in record["findings"])
        record["outcome"] = "failed" if any(not f["known"] for f in record["findings"]) else "known"
    return list(records.values())


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


def _replay(config: pytest.Config, specs: SpecSet) -> Replay | None:
    """The recordings a `recheck` answers from (--umami-replay), matched on the specs' and releases' routes."""
    files = [Path(f) for f in config.getoption("--umami-replay")]
    if not files:
        return None
    templates = [e.path for e in specs.endpoints] + list(specs.inventory.templates if specs.inventory else [])
    return Replay.load(files, templates)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """Every exchange of a spec item is recorded (and replayed) under the item's id."""
    if not isinstance(item, SpecItem):
        return (yield)
    with exchange_item(item.name):
        return (yield)


def _existing_users(config: pytest.Config) -> dict[str, tuple[str, str]]:
    """Regular users given for servers that cannot create users: label -> (username, password)."""
    users = {}
    for label in ("user", "viewer"):
        username = config.getoption(f"--umami-{label}-username")
        password = config.getoption(f"--umami-{label}-password")
        if username and password:
            users[label] = (username, password)
    return users


def _new_record(item: SpecItem, run: UmamiRun) -> dict[str, Any]:
    ep = item.endpoint
    return {"id": item.name, "endpoint": ep.id, "area": ep.area, "method": ep.method, "path": ep.path,
            "role": item.role, "case": item.case.name, "operation_id": ep.operation_id,
            "source": ep.source, "expected_status": item.case.status or ep.auth[item.role],
            "actual_status": None, "outcome": None, "reason": None, "schema_checked": False,
            "findings": [], "duration": 0.0, "server_version": run.server_version,
            "tool_version": __version__}


def _skip_reason(item: SpecItem, run: UmamiRun) -> str | None:
    ep = item.endpoint
    detected = run.detected
    if detected is not None and not detected.applies(ep.versions):
        return f"not on this server: applies to Umami {ep.versions}, server is {detected.range}"
    if detected is not None and not detected.applies(item.case.versions):
        return f"not on this server: case applies to Umami {item.case.versions}, server is {detected.range}"
    if run.read_only and (ep.writes or item.case.target):
        return "read-only run: write endpoint not checked"
    if item.role in run.unavailable:
        return f"role {item.role!r} not available: {run.unavailable[item.role]}"
    if item.role != "anonymous" and item.role not in run.credentials:
        return f"role {item.role!r} has no credentials in this run"
    expected = item.case.status or ep.auth[item.role]
    if item.case.creates == "website" and run.sandbox is not None and run.sandbox.keeps and 200 <= expected < 300:
        return ("not checked on this server: it cannot delete websites (Umami 2.10.x: DELETE answers 500), so "
                "every website created would stay for good; runs reuse a kept set (ucf-keep-*) instead")
    return None


def _missing_reason(name: str, run: UmamiRun) -> str:
    """Why an item that needs `${name}` is skipped."""
    if run.read_only and name.split(".")[0] == "website" and not run.options.website_id:
        return f"{READ_ONLY_NO_WEBSITE}: there is no existing website to read"
    if run.read_only:
        return f"read-only run: needs ${{{name}}}, which only the sandbox (not created in read-only runs) has"
    return f"needs ${{{name}}}, which this run does not have"


def _execute(item: SpecItem, run: UmamiRun, record: dict[str, Any]) -> tuple[list[Finding], bool, Any]:
    ep, case = item.endpoint, item.case
    context = dict(run.context)
    if case.target:
        assert run.sandbox is not None
        context["target"] = run.sandbox.target(case.target)
    path = ep.path.format(**{k: render(v, context) for k, v in case.path_params.items()})
    auth = run.credentials.get(item.role)
    if case.fresh_login and auth is not None:
        auth = _fresh_login(item.role, run) or auth
    exchange = run.client.request(ep.method, path, auth=auth,
                                  params=render(case.query, context) or None,
                                  json_body=render(case.body, context))
    if exchange.not_recorded:
        return [], False, exchange  # skipped by runtest: there is no answer to check
    exchange.settled()  # a gateway error that outlived the retries: the item is unavailable
    if case.creates and run.sandbox is not None and exchange.response.is_success:
        run.sandbox.adopt(case.creates, exchange.json())
    if case.target and ep.method == "DELETE" and exchange.response.is_success \
            and path == f"/{case.target}s/{context['target']['id']}":
        run.sandbox.deleted(context["target"]["id"])
    expected = case.status or ep.auth[item.role]
    findings, checked = _check_versions(ep, expected, exchange, run, item.role)
    # Case schemas state what the sandbox's seeded traffic must give: without a sandbox (read-only)
    # there is no seed to expect, and only the endpoint's schema applies; nor in a replayed answer
    # about other objects (recheck).
    seeded = run.sandbox is not None and not exchange.other_objects
    if seeded and case.schema_uri and exchange.response.status_code == expected and exchange.response.is_success:
        missing = run.sandbox.not_seeded(case.needs)
        if missing:  # the sandbox left this out on purpose (results.json seeded.skipped says why)
            record["reason"] = f"case schema not applied: {missing}"
        else:
            findings += schema_findings(ep, run.specs.validator_for(case.schema_uri), exchange.json(),
                                        run.client.redactor.curl(exchange.request), run.client.redactor)
            checked = True
    return with_security(_security(ep, exchange, run), findings), checked, exchange


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


def _check_versions(ep: Endpoint, expected: int, exchange: Exchange, run: UmamiRun,
                    role: str) -> tuple[list[Finding], bool]:
    """Check against the shapes of every version the server may be: the answer conforms when it holds for
    one of them; otherwise the findings are those of the newest."""
    results = []
    seen: set[tuple[str, ...]] = set()
    for version in run.server_versions or [None]:
        responses = ep.responses_for(exchange.response.status_code, version)
        shape = run.specs.error_shape(version)
        key = (*(r.schema_uri for r in responses[:1]), shape.description if shape else "")
        if key in seen:
            continue
        seen.add(key)
        results.append(check_exchange(ep, expected, exchange, responses, run.specs.validator_for,
                                      run.client.redactor, shape, role_allowed=200 <= ep.auth[role] < 300))
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


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if LAST.stopped is not None and session.config.getoption("--umami-cli"):
        # The CLI says it once, as `umami-conformance: error: ...`; pytest would add an Exit banner.
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if hasattr(reporter, "_keyboardinterrupt_memo"):
            reporter._keyboardinterrupt_memo = None
    run = session.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    try:
        with exchange_item("cleanup"):
            run.finish()
    except ConformanceError as exc:
        run.residue.append({"kind": "run", "id": "-", "name": "-", "reason": f"cleanup failed: {exc}"})
    LAST.cleanup = run.cleanup_summary()
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    LAST.empty = None if interrupted else nothing_tested(run.records)
    LAST.not_written = _no_results(session.config, run)
    if LAST.not_written is None:  # a failed run leaves the last good results.json as it was
        write_results(run, interrupted=interrupted)
    if LAST.empty:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    elif exitstatus == pytest.ExitCode.OK and any(r["case"] == "setup" and r["outcome"] == "failed"
                                                  for r in run.records):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a drift in the set-up is a finding too


def _no_results(config: pytest.Config, run: UmamiRun) -> str | None:
    """Why this run produced no results worth writing (None when it did): a set-up error, or no item ran."""
    ran = any(r["outcome"] not in ("skipped", None) and r["case"] != "setup" for r in run.records)
    if ERROR_KEY in config.stash and not ran:
        return f"the run stopped before any item ran: {config.stash[ERROR_KEY]}"
    if not ran:
        return nothing_tested(run.records) or "no item ran"
    return None


def _skip_group(reason: str) -> str:
    """A skip reason without its details (versions, roles), to count skips by kind."""
    return reason.split(":")[0] if reason.startswith(("not on this server", "role ", READ_ONLY_NO_WEBSITE)) \
        else reason


def nothing_tested(records: list[dict[str, Any]]) -> str | None:
    """Why a run tested nothing (every selected item skipped), or None. Such a run never passes."""
    records = [r for r in records if r["case"] != "setup"]  # the set-up's drift records are no items
    if not records or any(r["outcome"] != "skipped" for r in records):
        return None
    reasons = Counter(r["reason"] or "" for r in records)
    top = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(3))
    return f"nothing was tested: all {len(records)} selected items were skipped ({top})"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    tr = terminalreporter
    findings = [(r, f) for r in run.records for f in r["findings"]]
    tr.section("Umami conformance")
    detected = run.detected
    tr.line(f"server {run.options.target.url} - Umami {detected.range if detected else 'unknown'} "
            f"({detected.source if detected else 'not detected'}); tool {__version__}")
    for part, why in (run.sandbox.seeded.get("skipped", {}) if run.sandbox else {}).items():
        tr.line(f"seeded without {part}: {why}", yellow=True)
    outcomes = Counter(r["outcome"] for r in run.records)
    tr.line("items: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items(), key=lambda kv: str(kv[0]))))
    unavailable = [r for r in run.records if r["outcome"] == "unavailable"]
    if run.client.retries or unavailable:
        tr.line(f"transient failures (502/503/504, dropped connections, timeouts; not drift): "
                f"{run.client.retries} request(s) retried, {len(unavailable)} item(s) unavailable after "
                f"{run.options.target.retries} retries", yellow=True)
        for r in unavailable:
            tr.line(f"  {r['id']}: {r['reason']}")
    say = cli_flags if config.getoption("--umami-cli") else str
    skipped = Counter(_skip_group(r["reason"] or "") for r in run.records if r["outcome"] == "skipped")
    for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        tr.line(f"  skipped {n}: {say(reason)}")
    if run.read_only and not run.options.website_id and skipped.get(READ_ONLY_NO_WEBSITE):
        tr.line(say(f"{READ_ONLY_NO_WEBSITE}: {skipped[READ_ONLY_NO_WEBSITE]} items that read one website were "
                    "skipped; pass --umami-website-id with the id of an existing website to check them"), yellow=True)
    for cls in CLASSES:
        # Security comes first, known ones included (marked as known): a reviewed leak is still a leak.
        group = [(r, f) for r, f in findings if f["class"] == cls and (cls == "security" or not f["known"])]
        if group:
            opened = sum(1 for _, f in group if not f["known"])
            tr.line(f"{cls} ({opened}{f', known {len(group) - opened}' if opened < len(group) else ''}): "
                    f"{CLASSES[cls]}", red=bool(opened), yellow=not opened, bold=True)
            for r, f in group:
                verdict = f" ({f['contract']})" if f.get("contract") else ""
                times = f" ({f['count']} items)" if f.get("count", 1) > 1 else ""
                known = " [known]" if f["known"] else ""
                tr.line(f"  {r['id']} {f['json_path']}{times}: expected {f['expected']!r}, actual {f['actual']!r}"
                        f"{verdict}{known}")
    known = Counter((r["endpoint"], f["class"], f["known"]) for r, f in findings if f["known"])
    if known:
        tr.line(f"known differences ({sum(known.values())} findings), accepted in "
                "specs/known-differences.yaml:", yellow=True)
        for (endpoint, cls, reason), n in sorted(known.items(), key=lambda kv: (class_rank(kv[0][1]), kv[0])):
            tr.line(f"  {endpoint} [{cls}] x{n}: {reason}")
    for entry in stale(run.known, run.records, run.read_only, run.server_versions):
        tr.line(f"stale known difference ({entry.describe()}, line {entry.line}): matched nothing", yellow=True)
    kept = list(run.sandbox.kept.values()) if run.sandbox else []
    if kept:
        tr.line(f"kept set on this server, which cannot delete websites ({len(kept)} object(s), reused by every "
                "run, never more):", yellow=True)
        for k in kept:
            traffic = f", traffic {k['traffic']}" if "traffic" in k else ""
            tr.line(f"  {k['kind']} {k['name']} ({k['id']}): {'reused' if k['reused'] else 'created'}{traffic}")
    if run.residue:
        tr.line(f"could not remove {len(run.residue)} object(s) the run created:", red=True)
        for r in run.residue:
            tr.line(f"  {r['kind']} {r['name']} ({r['id']}): {r['reason']}")
    if LAST.cleanup:
        tr.line(LAST.cleanup, yellow=bool(run.residue))
    path = run.options.results_path
    if config.getoption("--umami-cli"):
        pass  # the CLI says where the reports went, or that the last ones were kept
    elif LAST.not_written:
        kept = f"{path} of an earlier run is left as it was" if path.exists() else f"{path} was not written"
        tr.line(f"no results: {kept} ({LAST.not_written})", yellow=True)
    else:
        tr.line(f"results: {path}")
    if LAST.empty and not config.getoption("--umami-cli"):
        tr.line(f"error: {LAST.empty}", red=True, bold=True)

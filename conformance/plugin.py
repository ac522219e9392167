"""pytest plugin (pytest11 entry point): each spec file becomes a pytest file and each endpoint x role x case an
item. The engine (engine.py) runs them; the plugin only collects, maps each result to pass, fail or skip, and
prints the summary."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from conformance import __version__, options as opts
from conformance.checks import CLASSES, Finding, class_rank
from conformance.engine import Item, ItemResult, Outcome, READ_ONLY_NO_WEBSITE, area_items, discovery_items, \
    nothing_tested, batch, run_items, setup_results, skip_group
from conformance.errors import ConformanceError, ServerGone
from conformance.har import exchange_item
from conformance.known import load_known, stale
from conformance.loader import DEFAULT_SPECS, SpecSet, load_specs
from conformance.options import Options, cli_flags
from conformance.results import write_results
from conformance.run import UmamiRun


@dataclass
class SessionOutcome:
    """What a session tells whoever ran it (the CLI runs pytest in the same process)."""

    stopped: ConformanceError | None = None  # a set-up error that stopped the session (pytest.exit)
    not_written: str | None = None  # why results.json was not written (the run produced no results)
    empty: str | None = None  # why the run tested nothing (every selected item skipped)
    cleanup: str = ""  # what the cleanup removed and what remains


@dataclass(eq=False)  # a plugin object: hashed by identity
class Handoff:
    """What the CLI hands a session it runs in-process (`pytest.main(..., plugins=[handoff])`): the options,
    secrets included (never on a command line or in the environment), and the specs it loaded; `outcome` is
    what the session tells back."""

    options: Options
    specs: SpecSet
    outcome: SessionOutcome | None = None


RUN_KEY = pytest.StashKey["UmamiRun | None"]()
SPECS_KEY = pytest.StashKey[SpecSet]()
OPTIONS_KEY = pytest.StashKey[Options]()
OUTCOME_KEY = pytest.StashKey[SessionOutcome]()
ERROR_KEY = pytest.StashKey[str]()
DONE_KEY = pytest.StashKey["dict[str, ItemResult | ServerGone]"]()  # results run ahead, by node id
ORDER_KEY = pytest.StashKey["tuple[dict[str, int], list[Item | None]]"]()  # node positions; the engine's items


def pytest_addoption(parser: pytest.Parser) -> None:
    opts.add_to_pytest(parser.getgroup("umami", "Umami API conformance"))


def _handoff(config: pytest.Config) -> Handoff | None:
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, Handoff)), None)


def pytest_configure(config: pytest.Config) -> None:
    handoff = _handoff(config)
    config.stash[OUTCOME_KEY] = SessionOutcome()
    if handoff is not None:
        handoff.outcome = config.stash[OUTCOME_KEY]
    config.stash[RUN_KEY] = None
    try:
        options = handoff.options if handoff else Options.from_values(
            {o.name: config.getoption(f"umami_{o.name}") for o in opts.OPTIONS}, DEFAULT_SPECS)
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None
    specs_dir = options.specs_dir
    if not any(_in_specs(Path(a.split("::")[0]).resolve(), specs_dir) or
               Path(a).resolve() == specs_dir for a in config.args):
        return
    try:
        specs = handoff.specs if handoff else load_specs(specs_dir)
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SPECS_KEY] = specs
    config.stash[OPTIONS_KEY] = options
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
    if SPECS_KEY not in config.stash or not _in_specs(file_path.resolve(), config.stash[OPTIONS_KEY].specs_dir):
        return None
    if file_path.name == "discovery.yaml":
        return DiscoveryFile.from_parent(parent, path=file_path) if config.stash[OPTIONS_KEY].discover else None
    area = next((a for a in config.stash[SPECS_KEY].areas if a.file.resolve() == file_path.resolve()), None)
    return SpecFile.from_parent(parent, path=file_path, area_name=area.name) if area else None


class SpecFile(pytest.File):
    """One spec file (an area)."""

    def __init__(self, *, area_name: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.area_name = area_name

    def collect(self) -> Iterator[pytest.Item]:
        specs, options = self.config.stash[SPECS_KEY], self.config.stash[OPTIONS_KEY]
        for check in area_items(specs, self.area_name, options.negative):
            item = SpecItem.from_parent(self, name=check.id, check=check)
            item.add_marker(getattr(pytest.mark, self.area_name))
            if check.kind.value == "negative":
                item.add_marker(pytest.mark.negative)
            yield item


class DiscoveryFile(pytest.File):
    """specs/discovery.yaml: one item per candidate no spec covers, plus the server's own OpenAPI paths."""

    def collect(self) -> Iterator[pytest.Item]:
        for check in discovery_items(self.config.stash[SPECS_KEY]):
            item = SpecItem.from_parent(self, name=check.id, check=check)
            item.add_marker(pytest.mark.discovery)
            yield item


class SpecFailure(Exception):
    """Findings of one item that are not known differences."""

    def __init__(self, findings: list[Finding]) -> None:
        super().__init__(f"{len(findings)} finding(s)")
        self.findings = findings


class ItemError(Exception):
    """The tool failed on an item (its result's outcome is `error`)."""


class SpecItem(pytest.Item):
    """One engine item; its result decides pass, fail or skip."""

    def __init__(self, *, check: Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        run = _run(self.config)
        result = _result(self, run)
        if isinstance(result, ServerGone):
            _stop(self.config, result, run)
        run.results.append(result)
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.reason or "skipped")
        if result.outcome is Outcome.UNAVAILABLE:
            pytest.skip(f"unavailable: {result.reason}")
        if result.outcome is Outcome.ERROR:
            raise ItemError(result.reason)
        if result.outcome is Outcome.FAILED:
            raise SpecFailure(result.open_findings)
        if result.findings:  # JUnit shows a pass; its properties say it is a known difference, and which
            self.user_properties.append(("outcome", "known"))
            self.user_properties += [(name, value) for f in result.findings for name, value in
                                     (("finding_class", f.cls), ("json_path", f.json_path), ("known_reason", f.known))]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        ep, case = self.check.endpoint, self.check.case
        if isinstance(excinfo.value, SpecFailure):
            lines = [f"{ep.id} as {self.check.role}, case {case.name!r} ({ep.file.name}:{case.line})"]
            for f in excinfo.value.findings:
                lines.append(f"  [{f.cls}] {f.json_path}{f' ({f.count} items)' if f.count > 1 else ''}: "
                             f"expected {f.expected!r}, actual {f.actual!r}"
                             f" - {f.message}" + (f" (contract: {f.contract})" if f.contract else ""))
            lines.append(f"  request: {excinfo.value.findings[0].curl}")
            lines.extend(_source_lines(ep.file, case.line))
            return "\n".join(lines)
        if isinstance(excinfo.value, ItemError):
            return f"{ep.id} as {self.check.role}, case {case.name!r}: the tool failed: {excinfo.value}"
        if isinstance(excinfo.value, ConformanceError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.check.case.line - 1, self.name


def _result(item: SpecItem, run: UmamiRun) -> ItemResult | ServerGone:
    """The item's result. With --umami-concurrency N > 1, an item runs together with the items that directly
    follow it in the same lane (engine.batch), N at a time; each of them then reports its own result when pytest
    reaches it. A batch ends where the lane changes (a write after reads), so every read sees what it would see
    in a sequential run, and the results come in the same order."""
    done = item.config.stash.setdefault(DONE_KEY, {})
    if item.nodeid not in done:
        if ORDER_KEY not in item.config.stash:
            nodes = item.session.items
            item.config.stash[ORDER_KEY] = ({n.nodeid: i for i, n in enumerate(nodes)},
                                            [n.check if isinstance(n, SpecItem) else None for n in nodes])
        positions, checks = item.config.stash[ORDER_KEY]
        start = positions[item.nodeid]
        concurrency = item.config.stash[OPTIONS_KEY].concurrency
        group = batch(checks, start, run, concurrency)
        results = run_items(run, group, concurrency)
        gone = next((r for r in results if isinstance(r, ServerGone)), None)
        nodes = item.session.items[start:start + len(group)]
        done.update((node.nodeid, gone if r is None else r) for node, r in zip(nodes, results, strict=True))
    return done.pop(item.nodeid)


def _source_lines(path: Path, line: int, count: int = 6) -> list[str]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [f"  {path.name}:{n:>4} | {lines[n - 1]}" for n in range(line, min(line + count, len(lines) + 1))]


def _run(config: pytest.Config) -> UmamiRun:
    """The run's session, started at the first item (so a -k that selects nothing sends nothing)."""
    run = config.stash[RUN_KEY]
    if run is not None:
        return run
    if ERROR_KEY in config.stash:
        pytest.exit(config.stash[ERROR_KEY], returncode=3)
    specs = config.stash[SPECS_KEY]
    run = UmamiRun(options=config.stash[OPTIONS_KEY], specs=specs, known=load_known(specs.root))
    config.stash[RUN_KEY] = run
    try:
        with exchange_item("setup"):
            run.start()
    except ConformanceError as exc:
        _stop(config, exc, run)
    run.results += setup_results(run)
    return run


def _stop(config: pytest.Config, exc: ConformanceError, run: UmamiRun) -> NoReturn:
    """End the session: the server cannot be used (set-up failed, or it stopped answering). Cleanup still runs
    (pytest_sessionfinish), and the CLI adds what it removed and what remains."""
    message = run.client.redactor.text(str(exc))
    config.stash[ERROR_KEY] = message
    config.stash[OUTCOME_KEY].stopped = type(exc)(message)
    pytest.exit(message, returncode=int(exc.exit_code))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    outcome = config.stash[OUTCOME_KEY]
    if outcome.stopped is not None and _handoff(config):
        # The CLI says it once, as `umami-conformance: error: ...`; pytest would add an Exit banner.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if hasattr(reporter, "_keyboardinterrupt_memo"):
            reporter._keyboardinterrupt_memo = None
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    try:
        with exchange_item("cleanup"):
            run.finish()
    except ConformanceError as exc:
        run.residue.append({"kind": "run", "id": "-", "name": "-", "reason": f"cleanup failed: {exc}"})
    outcome.cleanup = run.cleanup_summary()
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    outcome.empty = None if interrupted else nothing_tested(run.results)
    outcome.not_written = _no_results(config, run)
    if outcome.not_written is None:  # a failed run leaves the last good results.json as it was
        write_results(run, interrupted=interrupted)
    if outcome.empty:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    elif exitstatus == pytest.ExitCode.OK and any(r.item.case.name == "setup" and r.outcome is Outcome.FAILED
                                                  for r in run.results):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a drift in the set-up is a finding too


def _no_results(config: pytest.Config, run: UmamiRun) -> str | None:
    """Why this run produced no results worth writing (None when it did): a set-up error, or no item ran."""
    ran = any(r.outcome is not Outcome.SKIPPED and r.item.case.name != "setup" for r in run.results)
    if ERROR_KEY in config.stash and not ran:
        return f"the run stopped before any item ran: {config.stash[ERROR_KEY]}"
    if not ran:
        return nothing_tested(run.results) or "no item ran"
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    outcome = config.stash[OUTCOME_KEY]
    handoff = _handoff(config)
    tr = terminalreporter
    results: list[ItemResult] = run.results
    findings = [(r, f) for r in results for f in r.findings]
    tr.section("Umami conformance")
    detected = run.detected
    tr.line(f"server {run.options.target.url} - Umami {detected.range if detected else 'unknown'} "
            f"({detected.source if detected else 'not detected'}); tool {__version__}")
    for part, why in (run.sandbox.seeded.get("skipped", {}) if run.sandbox else {}).items():
        tr.line(f"seeded without {part}: {why}", yellow=True)
    outcomes = Counter(r.outcome.value for r in results)
    tr.line("items: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    unavailable = [r for r in results if r.outcome is Outcome.UNAVAILABLE]
    if run.client.retries or unavailable:
        tr.line(f"transient failures (502/503/504, dropped connections, timeouts; not drift): "
                f"{run.client.retries} request(s) retried, {len(unavailable)} item(s) unavailable after "
                f"{run.options.target.retries} retries", yellow=True)
        for r in unavailable:
            tr.line(f"  {r.id}: {r.reason}")
    for r in (r for r in results if r.outcome is Outcome.ERROR):
        tr.line(f"  error {r.id}: {r.reason}", red=True)
    say = cli_flags if handoff else str
    skipped = Counter(skip_group(r.reason or "") for r in results if r.outcome is Outcome.SKIPPED)
    for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        tr.line(f"  skipped {n}: {say(reason)}")
    if run.read_only and not run.options.website_id and skipped.get(READ_ONLY_NO_WEBSITE):
        tr.line(say(f"{READ_ONLY_NO_WEBSITE}: {skipped[READ_ONLY_NO_WEBSITE]} items that read one website were "
                    "skipped; pass --umami-website-id with the id of an existing website to check them"), yellow=True)
    for cls in CLASSES:
        # Security comes first, known ones included (marked as known): a reviewed leak is still a leak.
        group = [(r, f) for r, f in findings if f.cls == cls and (cls == "security" or not f.known)]
        if group:
            opened = sum(1 for _, f in group if not f.known)
            tr.line(f"{cls} ({opened}{f', known {len(group) - opened}' if opened < len(group) else ''}): "
                    f"{CLASSES[cls]}", red=bool(opened), yellow=not opened, bold=True)
            for r, f in group:
                verdict = f" ({f.contract})" if f.contract else ""
                times = f" ({f.count} items)" if f.count > 1 else ""
                known = " [known]" if f.known else ""
                tr.line(f"  {r.id} {f.json_path}{times}: expected {f.expected!r}, actual {f.actual!r}"
                        f"{verdict}{known}")
    known = Counter((r.item.endpoint.id, f.cls, f.known) for r, f in findings if f.known)
    if known:
        tr.line(f"known differences ({sum(known.values())} findings), accepted in "
                "specs/known-differences.yaml:", yellow=True)
        for (endpoint, cls, reason), n in sorted(known.items(), key=lambda kv: (class_rank(kv[0][1]), kv[0])):
            tr.line(f"  {endpoint} [{cls}] x{n}: {reason}")
    for entry in stale(run.known, [r.as_dict() for r in results], run.read_only, run.server_versions):
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
    if outcome.cleanup:
        tr.line(outcome.cleanup, yellow=bool(run.residue))
    path = run.options.results_path
    if handoff:
        pass  # the CLI says where the reports went, or that the last ones were kept
    elif outcome.not_written:
        kept_note = f"{path} of an earlier run is left as it was" if path.exists() else f"{path} was not written"
        tr.line(f"no results: {kept_note} ({outcome.not_written})", yellow=True)
    else:
        tr.line(f"results: {path}")
    if outcome.empty and not handoff:
        tr.line(f"error: {outcome.empty}", red=True, bold=True)

"""pytest plugin (pytest11 entry point): each spec file becomes a pytest file and each endpoint x role x case an
item. The session driver (driver.py) runs them, with results.json and the HAR recording as handlers of its
events; the plugin only collects, maps each result to pass, fail or skip, and prints the summary."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from conformance import options as opts
from conformance.console import failure_lines, summary_lines
from conformance.driver import Driver, setup_failed, terminate
from conformance.errors import ConformanceError, ServerGone
from conformance.items import Item, ItemResult, area_items, discovery_items
from conformance.loader import DEFAULT_SPECS, load_specs
from conformance.model import SpecSet
from conformance.options import Options
from conformance.results import verdict
from conformance.validation import ValidationCache
from conformance.writers import HarWriter, ResultsWriter
from umami_results.vocabulary import Outcome, Verdict

DRIVER_KEY = pytest.StashKey["Driver | None"]()
SPECS_KEY = pytest.StashKey[SpecSet]()
OPTIONS_KEY = pytest.StashKey[Options]()
ERROR_KEY = pytest.StashKey[str]()
DONE_KEY = pytest.StashKey["dict[str, ItemResult | ServerGone]"]()  # results run ahead, by node id
ORDER_KEY = pytest.StashKey["tuple[dict[str, int], list[Item | None]]"]()  # node positions; the engine's items


def pytest_addoption(parser: pytest.Parser) -> None:
    opts.add_to_pytest(parser.getgroup("umami", "Umami API conformance"))


def pytest_configure(config: pytest.Config) -> None:
    config.stash[DRIVER_KEY] = None
    specs_dir = Path(config.getoption("umami_specs") or os.environ.get(opts.BY_NAME["specs"].env or "")
                     or DEFAULT_SPECS).resolve()
    if not any(_in_specs(Path(a.split("::")[0]).resolve(), specs_dir) or
               Path(a).resolve() == specs_dir for a in config.args):
        return  # not a session of the specs: their options and environment variables are not read
    try:
        options = Options.from_values(
            {o.name: config.getoption(f"umami_{o.name}") for o in opts.OPTIONS}, DEFAULT_SPECS)
        specs = load_specs(specs_dir, ValidationCache.default())
    except ConformanceError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SPECS_KEY] = specs
    config.stash[OPTIONS_KEY] = options
    for area in specs.areas:
        config.addinivalue_line("markers", f"{area.name}: endpoints of the {area.title} area")
    config.addinivalue_line("markers", "negative: generated bad inputs (--umami-negative)")
    config.addinivalue_line("markers", "discovery: undocumented endpoints (--umami-discover)")
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, terminate)


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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Once -k and -m have chosen: the items of another release than the server's are no test cases of this
    session (its JUnit, its counts), as in the CLI's reports; results.json keeps them as skips of that kind. The
    session starts here, to tell the release: a selection of nothing, and --collect-only, send nothing."""
    if config.option.collectonly or not any(isinstance(i, SpecItem) for i in items):
        return
    other = set(map(id, _driver(config).other_release([i.check for i in items if isinstance(i, SpecItem)])))
    if other:
        config.hook.pytest_deselected(items=[i for i in items if isinstance(i, SpecItem) and id(i.check) in other])
        items[:] = [i for i in items if not (isinstance(i, SpecItem) and id(i.check) in other)]


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

    def __init__(self, result: ItemResult) -> None:
        super().__init__(f"{len(result.open_findings)} finding(s)")
        self.result = result


class ItemError(Exception):
    """The tool failed on an item (its result's outcome is `error`)."""

    def __init__(self, result: ItemResult) -> None:
        super().__init__(result.reason)
        self.result = result


class SpecItem(pytest.Item):
    """One engine item; its result decides pass, fail or skip."""

    def __init__(self, *, check: Item, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        driver = _driver(self.config)
        result = _result(self, driver)
        if isinstance(result, ServerGone):
            _stop(self.config, result, driver)
        driver.record(result)
        if result.outcome is Outcome.SKIPPED:
            pytest.skip(result.reason or "skipped")
        if result.outcome is Outcome.UNAVAILABLE:
            pytest.skip(f"unavailable: {result.reason}")
        if result.outcome is Outcome.ERROR:
            raise ItemError(result)
        if result.outcome is Outcome.FAILED:
            raise SpecFailure(result)
        if result.findings:  # JUnit shows a pass; its properties say it is a known difference, and which
            self.user_properties.append(("outcome", "known"))
            self.user_properties += [(name, value) for f in result.findings for name, value in
                                     (("finding_class", f.cls), ("json_path", f.json_path), ("known_reason", f.known))]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (SpecFailure, ItemError)):
            return "\n".join(failure_lines(excinfo.value.result))
        if isinstance(excinfo.value, ConformanceError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.check.case.line - 1, self.name


def _result(item: SpecItem, driver: Driver) -> ItemResult | ServerGone:
    """The item's result. With --umami-concurrency N > 1, an item runs together with the items that directly
    follow it in the same lane (schedule.batch), N at a time; each of them then reports its own result when pytest
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
        ran = driver.execute_batch(checks, start)
        nodes = item.session.items[start:start + len(ran)]
        done.update((node.nodeid, result) for node, (_, result) in zip(nodes, ran, strict=True))
    return done.pop(item.nodeid)


def _driver(config: pytest.Config) -> Driver:
    """The session's driver, started at the first item (so a -k that selects nothing sends nothing)."""
    driver = config.stash[DRIVER_KEY]
    if driver is not None:
        return driver
    if ERROR_KEY in config.stash:
        pytest.exit(config.stash[ERROR_KEY], returncode=3)
    driver = Driver(config.stash[OPTIONS_KEY], config.stash[SPECS_KEY], [HarWriter(), ResultsWriter()],
                    ValidationCache.default())
    config.stash[DRIVER_KEY] = driver
    try:
        driver.start()
    except ConformanceError as exc:
        _stop(config, exc, driver)
    return driver


def _stop(config: pytest.Config, exc: ConformanceError, driver: Driver) -> NoReturn:
    """End the session: the server cannot be used (set-up failed, or it stopped answering). Cleanup still runs
    (pytest_sessionfinish), and the CLI adds what it removed and what remains."""
    message = str(driver.stop(exc))
    config.stash[ERROR_KEY] = message
    pytest.exit(message, returncode=int(exc.exit_code))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    driver = config.stash.get(DRIVER_KEY, None)
    if driver is None:
        return
    outcome = driver.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
    if outcome.empty:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    elif exitstatus == pytest.ExitCode.OK and setup_failed(driver.session):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a drift in the set-up is a finding too


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    driver = config.stash.get(DRIVER_KEY, None)
    if driver is None:
        return
    outcome = driver.outcome
    tr = terminalreporter
    tr.section("Umami conformance")
    for text, style in summary_lines(driver.session, outcome, verbose=config.option.verbose > 0):
        tr.line(text, **dict.fromkeys(style.split(), True))
    path = driver.session.options.results_path
    if outcome.not_written:
        kept_note = f"{path} of an earlier run is left as it was" if path.exists() else f"{path} was not written"
        tr.line(f"no results: {kept_note} ({outcome.not_written})", yellow=True)
    else:
        tr.line(f"results: {path}")
    if outcome.empty:
        tr.line(f"error: {outcome.empty}", red=True, bold=True)
    said = verdict([r.as_dict() for r in driver.session.results], exitstatus == pytest.ExitCode.INTERRUPTED,
                   str(outcome.stopped) if outcome.stopped else None)
    tr.line(f"verdict: {said['text']}", bold=True, red=said["code"] in (Verdict.DRIFT, Verdict.ERROR),
            green=said["code"] == Verdict.CONFORMS)

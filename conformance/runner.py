"""The CLI's runner: the engine's items without pytest in the loop. It selects items with pytest's -k and -m
expressions (areas, `negative` and `discovery` are the markers), runs them in order (engine.run_all, with
--concurrency), prints progress, the failures and the summary (console.py), and writes junit.xml."""

from __future__ import annotations

import datetime as dt
import signal
import socket
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conformance.console import failure_lines, summary_lines
from conformance.engine import Item, ItemResult, SessionOutcome, collect, finish_session, run_all, setup_failed, \
    setup_results
from conformance.errors import ConformanceError, ServerGone, UsageError
from conformance.har import exchange_item
from conformance.known import load_known
from conformance.model import SpecSet
from conformance.options import Options, cli_flags
from conformance.run import UmamiRun
from umami_results.vocabulary import Kind, Outcome

# How each outcome counts: passed (.), failed (F: open findings or a tool error), skipped (s: also unavailable).
MARK = {Outcome.PASSED: ".", Outcome.PASSED_NO_SCHEMA: ".", Outcome.KNOWN: ".", Outcome.FAILED: "F",
        Outcome.ERROR: "F", Outcome.SKIPPED: "s", Outcome.UNAVAILABLE: "s"}
PROGRESS_WIDTH = 80


@dataclass
class Suite:
    """What a run of the suite tells the CLI."""

    outcome: SessionOutcome = field(default_factory=SessionOutcome)
    selected: int = 0  # items the -k/-m expressions selected
    failed: bool = False  # an item failed (open findings, or the tool failed), or the set-up met drift
    interrupted: bool = False  # Ctrl-C, SIGTERM or the --max-time alarm


def markers(item: Item) -> set[str]:
    """The markers -m selects by: the item's area, and `negative` or `discovery` by kind."""
    kind = {Kind.NEGATIVE: {"negative"}, Kind.DISCOVERY: {"discovery"}, Kind.ROUTES: {"discovery"}}
    return {item.endpoint.area, *kind.get(item.kind, set())}


def _expression(text: str | None, flag: str) -> Any:
    """pytest's compiled -k/-m expression (its grammar, so that expressions mean the same), or None."""
    if not text:
        return None
    from _pytest.mark.expression import Expression  # only where an expression is given: it imports pytest
    try:
        return Expression.compile(text)
    except Exception as exc:  # pytest raises SyntaxError (9.x) or its own ParseError (8.x)
        raise UsageError(f"wrong expression passed to {flag}: {text!r}: {exc}") from None


def select(items: Iterable[Item], keyword: str | None, marker: str | None) -> list[Item]:
    """The items pytest would select with `-k keyword -m marker`: -k matches a substring (any case) of the
    item's id, its spec file's name or a marker; -m a marker's name."""
    by_keyword, by_marker = _expression(keyword, "-k"), _expression(marker, "-m")
    return [item for item in items if (by_keyword is None or by_keyword.evaluate(_keywords(item)))
            and (by_marker is None or by_marker.evaluate(_marked(item)))]


def _keywords(item: Item) -> Callable[..., bool]:
    names = [name.lower() for name in (item.id, item.endpoint.file.name, *markers(item))]
    return lambda sub, /, **kwargs: not kwargs and any(sub.lower() in name for name in names)


def _marked(item: Item) -> Callable[..., bool]:
    marks = markers(item)
    return lambda name, /, **kwargs: not kwargs and name in marks


class Progress:
    """One line per spec file, a mark per item (. passed, F failed, s skipped), the share done at the end."""

    def __init__(self, total: int, out: TextIO, quiet: bool) -> None:
        self.total, self.out, self.quiet = total, out, quiet
        self.done, self.file, self.width = 0, "", 0

    def add(self, result: ItemResult) -> None:
        self.done += 1
        if self.quiet:
            return
        name = result.item.endpoint.file.name
        if name != self.file or self.width >= PROGRESS_WIDTH:
            self.end_line()
            self.file = name
            self.out.write(name + " ")
            self.width = len(name) + 1
        self.out.write(MARK[result.outcome])
        self.width += 1

    def end_line(self) -> None:
        if self.width:
            self.out.write(" " * max(1, PROGRESS_WIDTH - self.width) + f"[{100 * self.done // self.total:>3}%]\n")
            self.out.flush()
        self.width = 0


def run_suite(options: Options, specs: SpecSet, keyword: str | None = None, marker: str | None = None,
              quiet: bool = False, junit: Path | None = None, out: TextIO | None = None) -> Suite:
    """Select, run and report the suite's items; the session starts at the first selected item (a selection
    of none sends nothing), and its cleanup runs whatever happens (also after Ctrl-C and --max-time)."""
    out = out or sys.stdout
    suite = Suite()
    items = select(collect(specs, options.negative, options.discover), keyword, marker)
    suite.selected = len(items)
    if not items:
        return suite
    start = time.perf_counter()
    stamp = dt.datetime.now(dt.timezone.utc).isoformat()
    progress = Progress(len(items), out, quiet)
    run = UmamiRun(options=options, specs=specs, known=load_known(specs.root))
    term = signal.signal(signal.SIGTERM, _terminate)
    try:
        try:
            with exchange_item("setup"):
                run.start()
            run.results += setup_results(run)
            for _, result in run_all(run, items, options.concurrency):
                if isinstance(result, ServerGone):
                    raise result
                run.results.append(result)
                progress.add(result)
        except ConformanceError as exc:
            suite.outcome.stopped = type(exc)(run.client.redactor.text(str(exc)))
        except KeyboardInterrupt:
            suite.interrupted = True
        finally:  # also after a bug of the tool: what the run made is removed
            progress.end_line()
            finish_session(run, suite.outcome, suite.interrupted)
    finally:
        signal.signal(signal.SIGTERM, term)
    wall = time.perf_counter() - start
    checked = [r for r in run.results if r.item.kind is not Kind.SETUP]
    suite.failed = setup_failed(run) or any(MARK[r.outcome] == "F" for r in checked)
    _report(run, suite, checked, wall, out)
    if junit is not None and checked:
        write_junit(junit, checked, wall, stamp)
    return suite


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _marks(results: list[ItemResult]) -> Counter[str]:
    """How many items failed (F), passed (.) and were skipped (s), as MARK tells them apart."""
    return Counter(MARK[r.outcome] for r in results)


def _report(run: UmamiRun, suite: Suite, results: list[ItemResult], wall: float, out: TextIO) -> None:
    """The failures, the summary, and one line of counts."""
    failures = [r for r in results if MARK[r.outcome] == "F"]
    if failures:
        print(" FAILURES ".center(PROGRESS_WIDTH, "="), file=out)
        for r in failures:
            print(f" {r.id} ".center(PROGRESS_WIDTH, "_"), file=out)
            print("\n".join(failure_lines(r)), file=out)
    print(" Umami conformance ".center(PROGRESS_WIDTH, "="), file=out)
    for text, _ in summary_lines(run, suite.outcome, cli_flags):
        print(text, file=out)
    marks = _marks(results)
    counts = {"failed": marks["F"], "passed": marks["."], "skipped": marks["s"]}
    shown = ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "no items"
    print(f" {shown} in {wall:.2f}s ".center(PROGRESS_WIDTH, "="), file=out)
    out.flush()


def write_junit(path: Path, results: list[ItemResult], wall: float, stamp: str) -> None:
    """JUnit XML as CI systems read it: one testcase per item (classname: its spec file), a failure with its
    findings, a skip with its reason, and the known differences of a passed item as properties."""
    marks = _marks(results)
    root = ET.Element("testsuites", name="umami-conformance")
    suite = ET.SubElement(root, "testsuite", name="umami-conformance", errors="0", failures=str(marks["F"]),
                          skipped=str(marks["s"]), tests=str(len(results)), time=f"{wall:.3f}", timestamp=stamp,
                          hostname=socket.gethostname())
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.item.endpoint.file.name, name=r.id,
                             time=f"{r.duration:.3f}")
        if r.outcome is Outcome.KNOWN:
            properties = ET.SubElement(case, "properties")
            ET.SubElement(properties, "property", name="outcome", value="known")
            for f in r.findings:
                for name, value in (("finding_class", f.cls), ("json_path", f.json_path),
                                    ("known_reason", f.known)):
                    ET.SubElement(properties, "property", name=name, value=str(value))
        elif MARK[r.outcome] == "F":
            message = "the tool failed" if r.outcome is Outcome.ERROR else f"{len(r.open_findings)} finding(s)"
            ET.SubElement(case, "failure", message=message).text = "\n".join(failure_lines(r))
        elif MARK[r.outcome] == "s":
            reason = r.reason or "skipped"
            reason = f"unavailable: {reason}" if r.outcome is Outcome.UNAVAILABLE else reason
            ET.SubElement(case, "skipped", type="skipped", message=reason).text = reason
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)

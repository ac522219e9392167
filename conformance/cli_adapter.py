"""The CLI's adapter: the engine's items without pytest in the loop. It selects items with pytest's -k and -m
expressions (areas, `negative` and `discovery` are the markers) and hands them to the session driver (driver.py),
with the console (console.py), results.json, junit.xml and the HAR recording as the handlers of its events."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conformance.console import MARK, Console
from conformance.driver import Driver, setup_failed
from conformance.errors import UsageError
from conformance.events import Handler, SessionOutcome
from conformance.items import Item, collect
from conformance.model import SpecSet
from conformance.options import Options, cli_flags
from conformance.validation import ValidationCache
from conformance.writers import HarWriter, JUnitWriter, ResultsWriter
from umami_results.vocabulary import Kind


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


def run_suite(options: Options, specs: SpecSet, keyword: str | None = None, marker: str | None = None,
              quiet: bool = False, junit: Path | None = None, out: TextIO | None = None,
              verbose: bool = False, cache: ValidationCache | None = None) -> Suite:
    """Select, run and report the suite's items; the session starts at the first selected item (a selection
    of none sends nothing), and its cleanup runs whatever happens (also after Ctrl-C and --max-time). `cache`:
    what passed validation (see load_specs)."""
    suite = Suite()
    items = select(collect(specs, options.negative, options.discover), keyword, marker)
    suite.selected = len(items)
    if not items:
        return suite
    handlers: list[Handler] = [HarWriter(), ResultsWriter(), Console(len(items), out or sys.stdout, quiet, cli_flags,
                                                                              verbose)]
    if junit is not None:
        handlers.append(JUnitWriter(junit))
    driver = Driver(options, specs, handlers, cache)
    suite.outcome = driver.outcome
    suite.interrupted = driver.drive(items)
    checked = [r for r in driver.session.results if r.item.kind is not Kind.SETUP]
    suite.failed = setup_failed(driver.session) or any(MARK[r.outcome] == "F" for r in checked)
    return suite

"""The session driver, the one both front ends call (the CLI's adapter and the pytest plugin): start (the set-up),
the items batch after batch, finish (the cleanup, whatever happened), and the events of it all for the handlers
(events.py). The CLI hands it the whole loop (`drive`); pytest calls its steps from its hooks."""

from __future__ import annotations

import datetime as dt
import signal
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from conformance.context import ExecutionContext
from conformance.errors import ConformanceError, ServerGone
from conformance.events import Event, Handler, ItemFinished, ItemsDone, SessionFinished, SessionOutcome, \
    SessionStarted
from conformance.execute import skip_reason
from conformance.har import exchange_item
from conformance.items import Item, ItemResult
from conformance.known import load_known
from conformance.model import SpecSet
from conformance.options import Options
from conformance.schedule import execute_batch, execute_in_batches
from conformance.session import Session
from conformance.setup_drift import setup_results
from conformance.validation import ValidationCache
from umami_results.vocabulary import OUT_OF_RELEASE, Kind, Outcome


class Driver:
    """One session from its start to its end; every step emits its events to the handlers, in their order."""

    def __init__(self, options: Options, specs: SpecSet, handlers: Sequence[Handler],
                 cache: ValidationCache | None = None) -> None:
        """`cache`: what passed validation (see load_specs); without one known-differences.yaml and the meta-schema
        are validated again."""
        self.started = time.perf_counter()
        self.timestamp = dt.datetime.now(dt.timezone.utc).isoformat()
        self.handlers = list(handlers)
        self.session = Session(options=options, specs=specs, known=load_known(specs.root, cache))
        self.outcome = SessionOutcome()
        self.context: ExecutionContext | None = None  # what the items read, once the set-up is done
        self.selected: int | None = None  # the items the session set out to check (None: those it has)

    def emit(self, event: Event) -> None:
        for handler in self.handlers:
            handler.handle(event)

    def start(self) -> None:
        """The set-up: probe the server, log in, build the sandbox; its drift becomes results. A set-up error
        (ConformanceError) is raised: the caller stops (`stop`) and still finishes."""
        self.emit(SessionStarted(self.session, self.timestamp))
        with exchange_item("setup"):
            self.session.start()
        self.session.results += setup_results(self.session)
        self.context = self.session.execution()

    def execute_batch(self, items: Sequence[Item | None], start: int) -> list[tuple[Item, ItemResult | ServerGone]]:
        """The batch of items that starts at `items[start]` (schedule.batch), each with its result."""
        assert self.context is not None, "start() first"
        return execute_batch(self.context, items, start, self.session.options.concurrency)

    def other_release(self, items: Sequence[Item]) -> list[Item]:
        """The items of another release than the server's, each recorded as that skip (out-of-range,
        case-out-of-range) without a request: results.json keeps them, a front end's test cases leave them out."""
        assert self.context is not None, "start() first"
        skips = [(item, skip_reason(item, self.context)) for item in items]
        other = [(item, skip) for item, skip in skips if skip is not None and skip.code in OUT_OF_RELEASE]
        for item, skip in other:
            self.record(ItemResult(item, self.context.server_version).skipped(skip))
        return [item for item, _ in other]

    def record(self, result: ItemResult) -> None:
        """An item's result, in the items' order."""
        self.session.results.append(result)
        self.emit(ItemFinished(result))

    def stop(self, exc: ConformanceError) -> ConformanceError:
        """The session cannot go on (the set-up failed, or the server stopped answering): the error, redacted,
        becomes the outcome's `stopped`."""
        self.outcome.stopped = type(exc)(self.session.client.redactor.text(str(exc)))
        return self.outcome.stopped

    def finish(self, interrupted: bool) -> SessionOutcome:
        """After the last item, also after a stop or an interrupt: remove what the sandbox made, then tell the
        handlers (results.json is written unless the run produced nothing worth writing: the last good one then
        stays as it was)."""
        session, outcome = self.session, self.outcome
        self.emit(ItemsDone(session))
        try:
            with exchange_item("cleanup"):
                session.finish()
        except ConformanceError as exc:
            session.residue.append({"kind": "run", "id": "-", "name": "-", "reason": f"cleanup failed: {exc}"})
        outcome.cleanup = session.cleanup_summary()
        empty = nothing_tested(session.results)
        outcome.empty = None if interrupted else empty
        ran = any(r.outcome is not Outcome.SKIPPED and r.item.kind is not Kind.SETUP for r in session.results)
        if outcome.stopped is not None and not ran:
            outcome.not_written = f"the run stopped before any item ran: {outcome.stopped}"
        elif not ran:
            outcome.not_written = empty or "no item ran"
        self.emit(SessionFinished(session, outcome, interrupted, time.perf_counter() - self.started, self.selected))
        return outcome

    def drive(self, items: list[Item]) -> bool:
        """The whole session: start, every item batch after batch, finish. The cleanup runs whatever happens
        (a set-up error, the server gone, Ctrl-C, SIGTERM, the --max-time alarm, a bug of the tool). Returns
        whether it was interrupted."""
        interrupted = False
        self.selected = len(items)
        with sigterm_interrupts():
            try:
                self.start()
                assert self.context is not None
                for _, result in execute_in_batches(self.context, items, self.session.options.concurrency):
                    if isinstance(result, ServerGone):
                        raise result
                    self.record(result)
            except ConformanceError as exc:
                self.stop(exc)
            except KeyboardInterrupt:
                interrupted = True
            finally:
                self.finish(interrupted)
        return interrupted


def setup_failed(session: Session) -> bool:
    """Whether the set-up met drift that is not a known difference (a finding like any other)."""
    return any(r.item.kind is Kind.SETUP and r.outcome is Outcome.FAILED for r in session.results)


def nothing_tested(results: list[ItemResult]) -> str | None:
    """Why a run tested nothing (every selected item skipped), or None. Such a run never passes."""
    results = [r for r in results if r.item.kind is not Kind.SETUP]  # the set-up's drift: no items
    if not results or any(r.outcome is not Outcome.SKIPPED for r in results):
        return None
    reasons = Counter(r.reason or "" for r in results)
    top = "; ".join(f"{n}x {reason}" for reason, n in reasons.most_common(3))
    return f"nothing was tested: all {len(results)} selected items were skipped ({top})"


def terminate(signum: int, frame: Any) -> NoReturn:
    """SIGTERM as Ctrl-C: the session stops where it is and still cleans up."""
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """`terminate` as the SIGTERM handler while the block runs."""
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

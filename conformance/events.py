"""The events of a session, in the order the driver (driver.py) emits them: `SessionStarted`, an `ItemFinished` per
item, `ItemsDone` before the cleanup, `SessionFinished` after it. The console, results.json, JUnit and HAR writers
are handlers of this one stream (`Handler.handle`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from conformance.errors import ConformanceError
from conformance.items import ItemResult
from conformance.session import Session


@dataclass
class SessionOutcome:
    """What a session tells whoever ran it, beside its results."""

    stopped: ConformanceError | None = None  # a set-up error, or the server gone, that stopped the session
    not_written: str | None = None  # why results.json was not written (the run produced no results)
    empty: str | None = None  # why the run tested nothing (every selected item skipped)
    cleanup: str = ""  # what the cleanup removed and what remains


@dataclass(frozen=True)
class SessionStarted:
    """Before the set-up."""

    session: Session
    timestamp: str  # ISO 8601, UTC


@dataclass(frozen=True)
class ItemFinished:
    """An item's result, in the items' order."""

    result: ItemResult


@dataclass(frozen=True)
class ItemsDone:
    """No more items run (the last one finished, or the session stopped or was interrupted); the cleanup is next."""

    session: Session


@dataclass(frozen=True)
class SessionFinished:
    """After the cleanup, whatever happened."""

    session: Session
    outcome: SessionOutcome
    interrupted: bool  # Ctrl-C, SIGTERM or the --max-time alarm
    seconds: float  # wall time from the driver's start to the end of the cleanup
    selected: int | None = None  # the items the session set out to check (None: those it has)


Event = SessionStarted | ItemFinished | ItemsDone | SessionFinished


class Handler(Protocol):
    """What the driver hands its events to."""

    def handle(self, event: Event) -> None: ...

"""User-facing failure families and the CLI's exit codes."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of `umami-conformance`, documented in README.md."""

    OK = 0
    DRIFT = 1
    USAGE = 2
    SERVER = 3
    SERVER_SETUP = 4
    UNAVAILABLE = 5
    TIMED_OUT = 6


class ConformanceError(Exception):
    """Base class: a failure that is reported to the user as one line, without a traceback."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(ConformanceError):
    """A missing file or a wrong combination of options."""

    exit_code = ExitCode.USAGE


class SpecError(ConformanceError):
    """A spec file, schema or `$ref` is invalid; the message names file and line."""

    exit_code = ExitCode.USAGE


class ConnectionFailed(ConformanceError):
    """The server cannot be reached, hangs, answers 5xx, or is not an Umami server."""

    exit_code = ExitCode.SERVER


class Unavailable(ConnectionFailed):
    """A request still failed transiently after its retries (502/503/504, a dropped or refused connection,
    a timeout): the server could not be asked, which is never drift. An item reports it as `unavailable`."""

    def __init__(self, message: str, attempts: int = 1) -> None:
        super().__init__(message)
        self.attempts = attempts


class ServerGone(ConnectionFailed):
    """So many requests in a row failed transiently that the server is taken to be down: the run ends."""


class AuthFailed(ConformanceError):
    """Login or API key rejected."""

    exit_code = ExitCode.SERVER


class ServerSetupError(ConformanceError):
    """The local Umami or PostgreSQL could not be installed or started."""

    exit_code = ExitCode.SERVER_SETUP

"""The session of one conformance run: options, client, version, sandbox, role credentials, prober, contract,
and the results of its items. It knows nothing of pytest (see items.py for the items)."""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from packaging.version import Version

from conformance import __version__
from conformance.cleanup import deletion_notes
from conformance.client import Credential, UmamiClient
from conformance.context import ExecutionContext
from conformance.contract import Contract
from conformance.discovery import Prober, route_templates, signature
from conformance.errors import ConnectionFailed, Unavailable, UsageError
from conformance.har import HarRecorder
from conformance.items import ItemResult
from conformance.known import KnownDifference
from conformance.model import SpecSet
from conformance.objects import new_prefix
from conformance.options import Options
from conformance.redact import REDACTED
from conformance.replay import Replay
from conformance.sandbox import Sandbox
from conformance.versions import PROBE_ROUND, Answer, Detected, fingerprint


@dataclass
class Session:
    """One run's session: made before the first item, finished (sandbox removed) after the last."""

    options: Options
    specs: SpecSet
    known: list[KnownDifference]
    client: UmamiClient = field(init=False)
    replay: Replay | None = field(init=False)
    detected: Detected | None = None
    sandbox: Sandbox | None = None
    credentials: dict[str, Credential] = field(default_factory=dict)
    results: list[ItemResult] = field(default_factory=list)
    residue: list[dict[str, str]] = field(default_factory=list)
    started: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    unavailable: dict[str, str] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    created: int = 0  # objects the sandbox created (counted before cleanup)

    def __post_init__(self) -> None:
        options = self.options
        self.replay = None
        if options.replay:  # matched on the specs' and the releases' routes
            templates = [e.path for e in self.specs.endpoints] + list(self.specs.inventory.templates
                                                                     if self.specs.inventory else [])
            self.replay = Replay.load(list(options.replay), templates)
        recorder = HarRecorder(options.record, options.target.api_base) if options.record else None
        self.client = UmamiClient(options.target, transport=self.replay, recorder=recorder)
        self._lock = threading.Lock()

    @property
    def existing_users(self) -> dict[str, tuple[str, str]]:
        """Users given for servers that cannot create them; a replay's are the recorded run's (their logins are
        answered from the recording)."""
        recorded = {label: (name, REDACTED) for label, name in self.replay.users.items()} if self.replay else {}
        return {**recorded, **self.options.existing_users}

    @cached_property
    def prober(self) -> Prober:
        """What 'no such route' looks like on this server (made at first use)."""
        return Prober(self.client, self.credentials.get("admin"), route_templates(self.specs))

    @property
    def prober_if_made(self) -> Prober | None:
        """The prober, if an item made one (asking for `prober` sends the baseline requests)."""
        return self.__dict__.get("prober")

    @cached_property
    def contract(self) -> Contract | None:
        """The contract given with --contract, else the OpenAPI document the server publishes, else None."""
        if self.options.contract:
            return Contract.load(self.options.contract)
        doc = self.prober.published_contract()
        return Contract(doc, f"{self.options.target.url} (published)") if doc else None

    def contract_once(self) -> Contract | None:
        """`contract`, made by one thread only (its first use may send requests)."""
        with self._lock:
            return self.contract

    @property
    def server_version(self) -> str | None:
        """The version whose shapes and known differences apply (the newest the server may be)."""
        return self.detected.version if self.detected else None

    @property
    def server_versions(self) -> list[str] | None:
        """Every version the server may be, newest first (None before detection)."""
        return sorted(self.detected.candidates, key=Version, reverse=True) if self.detected else None

    @property
    def read_only(self) -> bool:
        return self.options.target.read_only

    def start(self) -> None:
        """Probe the server, log in, and (unless read-only) build the sandbox."""
        target = self.options.target
        if not target.url:
            raise ConnectionFailed("no Umami server given: pass --umami-url (or set UMAMI_URL)")
        told = self.client.probe()
        self.detected = self.detect(told)
        if self.replay is not None and all(Version(v).major < 3 for v in self.detected.candidates):
            self.replay.ignore("x-umami-share-context")  # 2.x grants a share token without it
        if target.api_key:
            self.credentials["admin"] = Credential.api_key(target.api_key)
            self.client.check_api_key(self.credentials["admin"])
        elif target.username and target.password:
            self.credentials["admin"] = self.client.login(target.username, target.password)
        else:
            raise ConnectionFailed("no credentials: pass --umami-username/--umami-password "
                                   "(or --umami-api-key for Umami Cloud)")
        context: dict[str, Any] = {"credentials": {"username": target.username or "",
                                                   "password": target.password or ""}}
        if self.read_only:
            self.unavailable["user"] = "read-only: no sandbox user is created"
            self.unavailable["share"] = "read-only: no share link is created"
            self.unavailable["view-only"] = "read-only: no team is created"
            if self.options.website_id:  # no seed to read from: its window is the last hour (no case schema applies)
                context["website"] = {"id": self.options.website_id, "seededSince": int(time.time() * 1000) - 3_600_000}
            self.context = context
            return
        admin = self.credentials["admin"]
        prefix = (self.replay.prefix if self.replay else None) or new_prefix()
        # The seed and the cleanup's order depend on the releases the server may be (cleanup.LEFT_BEHIND).
        self.sandbox = Sandbox(self.client, admin, prefix,
                               ledger=(self.options.ledger_dir or self.options.results_path.parent)
                               / f"sandbox-ledger-{prefix.rstrip('-')}.json",
                               versions=self.server_versions,
                               concurrency=1 if self.replay is not None else self.options.concurrency)
        existing = self.existing_users
        _with_signals_deferred(lambda: self.sandbox.setup(context["credentials"], existing))
        self.credentials.update(self.sandbox.credentials)
        self.unavailable.update(self.sandbox.unavailable)
        self.context = {**context, **self.sandbox.context}

    def execution(self) -> ExecutionContext:
        """What the items read of this session, once `start` has set it up."""
        target = self.options.target
        return ExecutionContext(
            specs=self.specs, known=self.known, client=self.client, detected=self.detected,
            server_version=self.server_version, server_versions=self.server_versions, credentials=self.credentials,
            unavailable=self.unavailable, values=self.context, sandbox=self.sandbox, read_only=self.read_only,
            replaying=self.replay is not None, website_id=self.options.website_id, negative=self.options.negative,
            admin_login=(target.username, target.password)
            if target.username and target.password and not target.api_key else None,
            prober=lambda: self.prober, contract=self.contract_once)

    def detect(self, told: str | None) -> Detected:
        """`--umami-version`, else what `/api/version` says, else the route fingerprint."""
        if self.options.version:
            return Detected.exact(self.options.version, "--umami-version")
        if told:
            return Detected.exact(told, "server /api/version")
        replay = self.replay
        found = None
        if self.specs.inventory:
            width = 1 if replay is not None else min(self.options.concurrency, PROBE_ROUND)  # a replay: in order
            with ThreadPoolExecutor(width, thread_name_prefix="probe") as pool:
                found = fingerprint(self.specs.inventory, self.route_answer(),
                                    observed=replay.observations() if replay else (),
                                    ask=pool.map if width > 1 else map)
        if found is None:
            raise UsageError(f"cannot tell the Umami version of {self.options.target.url}: it has no /api/version "
                             "and its routes gave no answer to tell it by; pass --umami-version")
        return found

    def route_answer(self) -> Answer:
        """Whether a GET (unauthenticated) reaches a route: anything but the answer to a path that surely does
        not exist; None when the server cannot tell (a gateway error, a rate limit, a catch-all 2xx, an
        answer a replay does not have)."""
        missing = self.client.request("GET", f"/ucf-no-such-route-{new_prefix()[-5:-1]}").settled()
        baseline = signature(missing)
        if baseline[0] < 400 or missing.not_recorded:
            return lambda path: None

        def answer(path: str) -> bool | None:
            try:
                ex = self.client.request("GET", path)
            except Unavailable:
                return None
            if ex.response.status_code in (429, 502, 503, 504) or ex.not_recorded:
                return None
            return signature(ex) != baseline

        return answer

    def finish(self) -> None:
        """Remove everything the sandbox created (also after failures and Ctrl-C)."""
        try:
            if self.sandbox is not None:
                if self.client.unsure_writes and self.replay is None:
                    self.sandbox.adopt_leftovers()  # writes that may have landed unseen, found by the prefix
                self.created = len({o.id for o in self.sandbox.created})
                self.residue = _with_signals_deferred(self.sandbox.cleanup)
                if self.replay is not None:
                    self.residue = []  # a replay leaves nothing on any server
                self.sandbox.keep_in_ledger({r["id"] for r in self.residue})
        finally:
            self.client.close()

    def cleanup_summary(self) -> str:
        """What the cleanup removed and what remains, in one line ("" for a replay, which sends nothing)."""
        if self.replay is not None:
            return ""
        if self.sandbox is None or not self.created:
            return "cleanup: the run had created nothing; nothing remains"
        removed = self.created - len(self.residue)
        line = f"cleanup: removed {removed} of the {self.created} object(s) the run created"
        order = "; ".join(deletion_notes(self.sandbox.versions))  # what this release's delete queries ask of it
        line += f" [{order}]" if order else ""
        if not self.residue:
            return line + "; nothing remains"
        return (line + f"; {len(self.residue)} remain, listed in {self.sandbox.ledger} "
                "(`umami-conformance cleanup` tries again)")

    def header(self) -> dict[str, Any]:
        return {"tool": "umami-conformance", "tool_version": __version__,
                "server": {"url": self.replay.describe() if self.replay else self.options.target.url,
                           "version": self.server_version,
                           "release": self.detected.release if self.detected else None,
                           "version_source": self.detected.source if self.detected else "unknown",
                           "version_range": self.detected.range if self.detected else None,
                           "version_detection": self.detected.as_dict() if self.detected else None,
                           "profile": "cloud" if self.options.target.api_key else "self-hosted"},
                "read_only": self.read_only, "started": self.started,
                "prefix": self.sandbox.prefix if self.sandbox else None,
                "seeded": self.sandbox.seeded if self.sandbox else {},
                "kept": list(self.sandbox.kept.values()) if self.sandbox else []}


def _with_signals_deferred(func: Any) -> Any:
    """Run `func` with SIGINT/SIGTERM/SIGALRM held back, so set-up and cleanup are never cut in
    half; a signal that arrived meanwhile is delivered afterwards."""
    if threading.current_thread() is not threading.main_thread():
        return func()
    pending: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum))
           for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    try:
        return func()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])

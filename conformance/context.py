"""What executing an item may use of the session (`ExecutionContext`): made once the set-up is done, the same for
every item, and safe to share among the worker threads of a batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.checks import declared_paths
from conformance.client import Credential, UmamiClient
from conformance.contract import Contract
from conformance.discovery import Prober
from conformance.known import KnownDifference
from conformance.model import Endpoint, SpecSet
from conformance.redact import Redactor
from conformance.sandbox import Sandbox
from conformance.versions import Detected


@dataclass(frozen=True)
class ExecutionContext:
    """The session's parts an item reads: the specs, the client, the server's versions, the role credentials, the
    `${...}` values, the sandbox (None in a read-only run), and the options that change what an item does."""

    specs: SpecSet
    known: list[KnownDifference]
    client: UmamiClient
    detected: Detected | None
    server_version: str | None  # the version whose shapes and known differences apply
    server_versions: list[str] | None  # every version the server may be, newest first
    credentials: Mapping[str, Credential]
    unavailable: Mapping[str, str]  # roles this run has no credentials for, and why
    values: Mapping[str, Any]  # what the specs' `${...}` placeholders name
    sandbox: Sandbox | None
    read_only: bool
    replaying: bool  # a recheck: answers are matched in order, so every item runs alone
    website_id: str | None  # --website-id of a read-only run
    negative: int  # generated bad inputs per endpoint (--negative)
    admin_login: tuple[str, str] | None  # username and password for a fresh admin session (not with an API key)
    prober: Callable[[], Prober]  # the route prober, made at first use
    contract: Callable[[], Contract | None]  # the contract, made by one thread at first use
    _declared: dict[tuple[str, int], set[str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def redactor(self) -> Redactor:
        return self.client.redactor

    def declared_credentials(self, endpoint: Endpoint, status: int) -> set[str]:
        """The JSON paths where one of the endpoint's response schemas for `status` names a credential; worked
        out once per endpoint and status, under a lock (items of a batch ask from several threads)."""
        with self._lock:
            declared = self._declared.get((endpoint.id, status))
            if declared is None:
                declared = set()
                for spec in endpoint.responses:
                    if spec.status == status and spec.schema is not None:
                        resolver = self.specs.registry.resolver(base_uri=spec.schema_uri)
                        declared |= declared_paths(spec.schema, resolver)
                self._declared[(endpoint.id, status)] = declared
            return declared

"""The run's objects as the set-up, the seed and the cleanup share them: the record of one (`Created`), their
names (the run prefix `ucf-<time>-<hex>-`, the kept set `ucf-keep-*`), the paged lists they are found in, and
handling them `concurrency` at a time."""

from __future__ import annotations

import contextvars
import re
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from conformance.client import Credential, UmamiClient

PREFIX_PATTERN = re.compile(r"^ucf-\d{8}t\d{6}-[0-9a-f]{4}-")
KEEP_MARK = "ucf-keep-"  # the fixed set a run reuses where the server cannot delete websites


def new_prefix() -> str:
    return f"ucf-{time.strftime('%Y%m%dt%H%M%S', time.gmtime())}-{secrets.token_hex(2)}-"


@dataclass
class Created:
    """One object the run created."""

    kind: str  # one of cleanup.KINDS or cleanup.CHILD_KINDS
    id: str
    name: str
    owner: str | None = None  # id of the sandbox user that owns it (websites)
    website: str | None = None  # id of the website it belongs to (reports, segments)
    kept: bool = False  # one of the kept set, reused by every run (found by `cleanup`, never in a ledger)

    @property
    def path(self) -> str:
        """Its own path (DELETE and GET by id): a segment's is under its website."""
        if self.kind == "segment":
            return f"/websites/{self.website}/segments/{self.id}"
        return f"/{self.kind}s/{self.id}"


def is_kept(row: dict[str, Any]) -> bool:
    """One of the kept set (`ucf-keep-<label>`, a website also by its domain)."""
    return any(isinstance(n, str) and n.startswith(KEEP_MARK) for n in (row.get("name"), row.get("domain")))


def list_rows(client: UmamiClient, auth: Credential | None, path: str, params: dict[str, Any] | None = None
              ) -> list[dict[str, Any]] | None:
    """Every row of a paged list, or None when the server refuses the list (e.g. 2.16-2.20's
    /admin/websites without userId answers 400)."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        ex = client.request("GET", path, auth=auth, params={**(params or {}), "page": page, "pageSize": 200})
        ex.settled()  # a list a gateway error hid is no empty list: nothing is made twice for want of it
        if ex.response.status_code != 200:
            return rows if page > 1 else None
        body = ex.json()
        batch = body.get("data", []) if isinstance(body, dict) else body if isinstance(body, list) else []
        rows += [r for r in batch if isinstance(r, dict)]
        if len(batch) < 200:
            return rows
        page += 1


def each(func: Callable[[Any], Any], values: list[Any], concurrency: int) -> list[Any]:
    """`func` of every value, `concurrency` at a time, the results in the values' order (the first exception
    raised is raised, once every call has ended)."""
    if concurrency <= 1 or len(values) <= 1:
        return [func(v) for v in values]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(values)), thread_name_prefix="ucf-sandbox") as pool:
        # each call in its own copy of this context: the item and tally context variables stay the caller's
        futures = [pool.submit(contextvars.copy_context().run, func, v) for v in values]
        return [f.result() for f in futures]

"""The schedule of a concurrent run: which items may run beside which (`lane`, `batch`), and the loop that runs
them batch after batch in a pool of threads (`execute_in_batches`)."""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from conformance.context import ExecutionContext
from conformance.errors import ServerGone
from conformance.execute import execute_item, skip_reason
from conformance.items import Item, ItemResult
from umami_results.vocabulary import Kind


def lane(item: Item, ctx: ExecutionContext) -> str | None:
    """Which items this one may run beside (`batch`): those of the same lane, and skipped ones (lane "any": they
    send nothing). None: it runs alone.

    - "read": a GET, or a `query` (a request that only computes an answer and stores nothing: a report), that
      only reads state no item of its batch changes. A query the spec expects refused changes nothing either way.
    - "write": a write that changes only its own throwaway object (a `target`, or what it `creates`; where
      websites cannot be deleted, the one kept target website, which nothing changes there), a write the spec
      expects the server to refuse (4xx), or an item on a session of its own (a fresh login). Such writes change
      nothing another write of the batch reads, and the batch ends before the next read, so every read sees what
      it sees in a sequential run. (On a server that wrongly accepts a refused write, the writes beside it may
      see its effect sooner than in order; the accepted write itself is a finding either way.)
    - "shared:<endpoint>": a write the spec expects to succeed on shared state (an event sent to the run's
      website, a login): only beside the same endpoint's items.

    Alone: discovery (one shared prober), generated inputs (hypothesis is not thread-safe), and everything in a
    replay, which matches recorded answers in order."""
    if skip_reason(item, ctx):
        return "any"
    case = item.case
    if ctx.replaying or item.kind is not Kind.SPEC:
        return None
    reads = item.endpoint.method in ("GET", "HEAD") or item.endpoint.query
    if reads and not (case.target or case.creates or case.fresh_login):
        return "read"
    if case.target or case.creates or case.fresh_login or not 200 <= item.expected_status < 300:
        return "write"
    return f"shared:{item.endpoint.id}"


def batch(items: Sequence[Item | None], start: int, ctx: ExecutionContext, concurrency: int) -> list[Item]:
    """The items that run together from `items[start]` on: it and the items that directly follow it in the same
    lane (`lane`), up to a None (not an item of the engine); only the first item with `concurrency` 1."""
    first = items[start]
    assert first is not None
    kind = lane(first, ctx) if concurrency > 1 else None
    if kind is None:
        return [first]
    group = [first]
    for other in itertools.islice(items, start + 1, None):
        other_kind = lane(other, ctx) if other is not None else None
        if other is None or other_kind is None or (other_kind != kind and "any" not in (kind, other_kind)):
            break
        kind = other_kind if kind == "any" else kind
        group.append(other)
    return group


def execute_batch(ctx: ExecutionContext, items: Sequence[Item | None], start: int, concurrency: int
              ) -> list[tuple[Item, ItemResult | ServerGone]]:
    """Run the batch that starts at `items[start]` (`batch`): each of its items with its result. Once an item met
    `ServerGone`, the items not started then have it as their result too."""
    group = batch(items, start, ctx, concurrency)
    results = execute_concurrently(ctx, group, concurrency)
    gone = next((r for r in results if isinstance(r, ServerGone)), None)
    return [(item, gone if result is None else result) for item, result in zip(group, results, strict=True)]


def execute_in_batches(ctx: ExecutionContext, items: list[Item], concurrency: int
                       ) -> Iterator[tuple[Item, ItemResult | ServerGone]]:
    """Every item's result, in the items' order, batch after batch (`execute_batch`). After `ServerGone` (yielded in
    the place of the item that met it) nothing more runs."""
    start = 0
    while start < len(items):
        ran = execute_batch(ctx, items, start, concurrency)
        for item, result in ran:
            yield item, result
            if isinstance(result, ServerGone):
                return
        start += len(ran)


def execute_concurrently(ctx: ExecutionContext, items: list[Item], concurrency: int
                         ) -> list[ItemResult | ServerGone | None]:
    """Run the items of one batch (`batch`) in a pool of `concurrency` threads; their results in the
    items' order. `ServerGone` is returned in the place of the item that met it, and the items not yet started
    then are not run (None). Ctrl-C or the --max-time alarm stops the pool: the items in flight finish their
    request, the others are not started, and the interrupt goes on."""
    stop = threading.Event()

    def task(item: Item) -> ItemResult | ServerGone | None:
        if stop.is_set():
            return None
        try:
            return execute_item(ctx, item)
        except ServerGone as exc:
            stop.set()
            return exc

    if concurrency <= 1 or sum(1 for item in items if not skip_reason(item, ctx)) <= 1:
        return [task(item) for item in items]  # a skip sends nothing: no pool for one item that asks the server
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ucf-item")
    try:
        # each task in its own copy of this context: the item and tally context variables stay per item
        futures = [pool.submit(contextvars.copy_context().run, task, item) for item in items]
        return [f.result() for f in futures]
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)

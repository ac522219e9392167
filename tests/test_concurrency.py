"""Concurrent items (--concurrency): which items may run beside others, the bounded pool keeps the items' order,
and a 429 or Retry-After holds back every request of the client. No server: fake runs and httpx.MockTransport."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from types import SimpleNamespace

import httpx
import pytest

from conformance import schedule
from conformance.client import Target, UmamiClient, tallied
from conformance.items import Item, collect
from conformance.schedule import batch, lane, execute_concurrently
from conformance.errors import ServerGone
from umami_results.vocabulary import Kind

from conftest import bundled_specs, cli_in_process

ROLES = ("admin", "user", "view-only", "share", "anonymous")


def _context(**overrides: object) -> SimpleNamespace:
    """What `lane` and `skip_reason` read of an execution context: every role logged in, no version limits."""
    values = {"detected": None, "read_only": False, "unavailable": {}, "credentials": dict.fromkeys(ROLES, object()),
              "sandbox": None, "replaying": False}
    return SimpleNamespace(**{**values, **overrides})


def _item(endpoint_id: str, case: str | None = None) -> Item:
    return next(i for i in collect(bundled_specs()) if i.endpoint.id == endpoint_id
                and (case is None or i.case.name == case))


def test_lanes_reads_beside_reads_and_writes_on_their_own_objects_beside_each_other() -> None:
    ctx = _context()
    items = list(collect(bundled_specs(), discover=True))
    lanes = {i.id: lane(i, ctx) for i in items}
    reads = [i for i in items if lanes[i.id] == "read"]
    assert reads and all((i.endpoint.method == "GET" or i.endpoint.query) and i.kind is Kind.SPEC for i in reads)
    assert not any(i.case.target or i.case.creates or i.case.fresh_login for i in reads)
    writes = [i for i in items if lanes[i.id] == "write"]
    assert writes and all(i.endpoint.method != "GET" or i.case.target or i.case.creates for i in writes)
    assert all(i.case.target or i.case.creates or i.case.fresh_login or i.expected_status >= 400 for i in writes)
    assert lanes[_item("websites/update", "rename").id] == "write"  # its own throwaway website
    shared = {i.id: lanes[i.id] for i in items if (lanes[i.id] or "").startswith("shared:")}
    assert shared and all(kind == f"shared:{i.split('[')[0]}" for i, kind in shared.items())
    assert {k.split(":", 1)[1].split("/")[0] for k in shared.values()} <= {"auth", "send", "v1"}
    assert all(lanes[i.id] == "write" for i in items if i.case.fresh_login)  # a session of its own
    assert not any(lanes[i.id] for i in items if i.kind is not Kind.SPEC)  # one prober, hypothesis
    assert lane(replace(_item("websites/get"), kind=Kind.NEGATIVE), ctx) is None


def test_a_report_query_runs_beside_reads_refused_or_not_but_not_in_read_only_runs() -> None:
    """A report stores nothing (`query: true`, e.g. POST /reports/funnel): its items are reads, also those a role
    must be refused, so a run of reports and GETs is one batch; --read-only still sends only GET and login."""
    ctx = _context()
    queries = [e.id for e in bundled_specs().endpoints if e.query]
    assert {"reports/funnel", "reports/retention", "reports/performance", "auth/verify"} <= set(queries)
    assert all(e.method == "POST" and (e.path.startswith("/reports/") or e.id == "auth/verify")
               for e in bundled_specs().endpoints if e.query)
    items = [i for i in collect(bundled_specs()) if i.endpoint.id in ("reports/funnel", "reports/get")]
    assert {i.endpoint.id for i in items} == {"reports/funnel", "reports/get"}
    assert any(i.expected_status >= 400 for i in items if i.endpoint.id == "reports/funnel")
    assert all(lane(i, ctx) == "read" for i in items if not i.case.target)
    funnel = [i for i in items if i.endpoint.id == "reports/funnel"]
    assert batch(funnel, 0, ctx, 4) == funnel
    assert not _item("reports/create").endpoint.query and lane(_item("reports/create"), ctx) != "read"
    assert all(lane(i, _context(read_only=True)) == "any" for i in funnel)  # skipped: not a GET, not safe


def test_a_skipped_item_joins_any_lane_and_a_replay_runs_alone() -> None:
    write = _item("websites/update", "rename")
    assert lane(write, _context(read_only=True)) == "any"  # skipped: read-only runs send no writes
    assert lane(_item("websites/get"), _context(replaying=True)) is None  # a recheck matches answers in order


def test_a_batch_is_the_run_of_items_in_one_lane() -> None:
    ctx = _context()
    items = [i for i in collect(bundled_specs()) if i.endpoint.id in ("teams/list", "teams/create", "teams/get")]
    kinds = [lane(i, ctx) for i in items]
    assert kinds[0] == "read" and "write" in kinds
    first_write = kinds.index("write")
    assert batch(items, 0, ctx, 4) == items[:first_write]
    group = batch(items, first_write, ctx, 4)
    assert group and all(lane(i, ctx) == "write" for i in group)
    assert batch(items, 0, ctx, 1) == items[:1]
    assert batch([*items[:2], None, *items[2:]], 0, ctx, 4) == items[:2]  # None: not an engine item


def test_the_pool_keeps_the_order_and_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [i for i in collect(bundled_specs()) if i.endpoint.id == "website-stats/get-metrics"][:24]
    running, peak, lock = [0], [0], threading.Lock()

    def fake_execute_item(ctx: object, item: Item) -> str:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.001 * (len(item.id) % 5))  # finish out of order
        with lock:
            running[0] -= 1
        return item.id

    monkeypatch.setattr(schedule, "execute_item", fake_execute_item)
    assert execute_concurrently(_context(), items, 3) == [i.id for i in items]
    assert 1 <= peak[0] <= 3
    peak[0] = 0
    assert execute_concurrently(_context(), items, 1) == [i.id for i in items]
    assert peak[0] == 1


def test_a_server_gone_in_the_pool_stops_the_items_not_started(monkeypatch: pytest.MonkeyPatch) -> None:
    items = [i for i in collect(bundled_specs()) if i.endpoint.id == "website-stats/get-metrics"][:12]
    gone = ServerGone("stopped answering")

    def fake_execute_item(ctx: object, item: Item) -> str:
        if item is items[2]:
            raise gone
        return item.id

    monkeypatch.setattr(schedule, "execute_item", fake_execute_item)
    results = execute_concurrently(_context(), items, 1)
    assert results[:3] == [items[0].id, items[1].id, gone] and results[3:] == [None] * 9
    results = execute_concurrently(_context(), items, 2)
    assert results[2] is gone and results[-1] is None  # the last ones were never started


def _client(handler) -> UmamiClient:
    client = UmamiClient(Target(url="http://umami.test", username="admin", password="pa55word-long"))
    client.http = httpx.Client(base_url=client.target.api_base, transport=httpx.MockTransport(handler))
    return client


def test_a_429_holds_back_every_request_of_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 with Retry-After: 2 to one request: a request another thread sends during that pause waits for its
    end before it goes out, then the first request is sent again. The clock stands still (monotonic fixed), so
    the waits are exact."""
    monkeypatch.setattr("conformance.client.time.monotonic", lambda: 100.0)
    events: list[str] = []
    answers = {"/api/a": iter([httpx.Response(429, headers={"Retry-After": "2"}), httpx.Response(200, json={})])}

    def handler(request: httpx.Request) -> httpx.Response:
        events.append(f"sent {request.url.path}")
        return next(answers[request.url.path]) if request.url.path in answers else httpx.Response(200, json={})

    client = _client(handler)
    other: list[str] = []

    def sleep(seconds: float) -> None:
        events.append(f"wait {seconds:g}")
        if not other:  # another thread of the pool sends a request while the first waits out the 429
            other.append("/b")
            client.request("GET", "/b")

    monkeypatch.setattr("conformance.client.time.sleep", sleep)
    with tallied() as tally:
        assert client.request("GET", "/a").response.status_code == 200
    assert events == ["sent /api/a", "wait 2", "wait 2", "sent /api/b", "sent /api/a"]
    assert client.retries == 1 and tally.retries == 1  # the retry counts for the item that met the 429


def test_a_429_without_retry_after_pauses_the_pool_for_the_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("conformance.client.time.monotonic", lambda: 50.0)
    waits: list[float] = []
    monkeypatch.setattr("conformance.client.time.sleep", waits.append)
    answers = iter([httpx.Response(429), httpx.Response(200, json={})])
    client = _client(lambda request: next(answers) if request.url.path == "/api/a" else httpx.Response(200))
    assert client.request("GET", "/a").response.status_code == 200
    client.request("GET", "/b")  # the clock stood still: the pause is not over for anyone else
    assert waits == [0.25, 0.25]


def test_retries_count_per_item_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("conformance.client.time.sleep", lambda seconds: None)
    flaky = {"/api/flaky": 2}

    def handler(request: httpx.Request) -> httpx.Response:
        left = flaky.get(request.url.path, 0)
        if left:
            flaky[request.url.path] = left - 1
            return httpx.Response(502)
        return httpx.Response(200, json={})

    client = _client(handler)
    counts: dict[str, int] = {}

    def item(path: str) -> None:
        with tallied() as tally:
            client.request("GET", path)
        counts[path] = tally.retries

    threads = [threading.Thread(target=item, args=(p,)) for p in ("/flaky", "/fine")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == {"/flaky": 2, "/fine": 0} and client.retries == 2


@pytest.mark.parametrize("value", ["0", "-2"])
def test_concurrency_below_one_is_a_usage_error(value: str, tmp_path) -> None:
    proc = cli_in_process("run", "--url", "http://127.0.0.1:9", "--out", str(tmp_path), "--concurrency", value)
    assert proc.returncode == 2 and "--concurrency must be at least 1" in proc.stderr
    assert "Traceback" not in proc.stderr

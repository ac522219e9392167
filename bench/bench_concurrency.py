"""Benchmark: a full run against the server's own limit, sequential and concurrent, near and far.

    .venv/bin/python bench/bench_concurrency.py [--concurrency 4] [--latency-ms 20] [--runs 1] [--recording FILE]

Against the local real Umami (started if needed), side by side:
- the suite's wall time (a whole `umami-conformance run`, process start to reports and docs written), with
  --concurrency 1 and N;
- the bare replay, measured in the same run: a run in this process (--concurrency N) records every request it
  sends (method, URL, headers, body), and before its cleanup (the sandbox and the tokens still there) a bare
  httpx pool of N threads sends all of them again, writes too, in the run's order (what the writes make again
  carries the run's prefix and is removed with the run's objects); the cleanup counts as long as the run took
  for it. That is the server's limit for this run on this machine (a bare pool does not wait for a write before
  the read after it, so it is, if anything, faster than any correct run); the suite's wall divided by it is
  what the harness costs; and its reads again through the delaying proxy below, one at a time and N at a time:
  the speed-up this machine allows at that distance (the server on the same cores caps it);
- requests per second of each;
- the same two runs through a proxy that adds `--latency-ms` to every request (a server farther away);
- the wall time of `umami-conformance recheck` of a full recording (default: the 3.1.0 one of tests/recordings), and of
  rendering the docs from the concurrent run's results.json.
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from runs import ROOT, local_server, timed_run

sys.path.insert(0, str(ROOT / "tests"))

from proxy import RecordingProxy  # noqa: E402  (the test suite's proxy)

DEFAULT_RECORDING = ROOT / "tests" / "recordings" / "umami-3.1.0-run.har.gz"
NOT_SENT_AGAIN = {"host", "content-length", "connection", "accept-encoding"}


@dataclass
class Capture:
    """Stands in for the run's HAR recorder: keeps every request as sent (secrets included, in memory only)."""

    sent: list[tuple[httpx.Request, int, float]] = field(default_factory=list)  # request, status, seconds

    def add(self, request: httpx.Request, response: httpx.Response, seconds: float) -> None:
        self.sent.append((request, response.status_code, seconds))

    def write(self, redactor: Any) -> None:
        """Nothing is written."""


@dataclass
class Replay:
    """The bare replay: the run's requests sent again by a pool, and the cleanup as the run did it."""

    requests: int = 0
    reads: int = 0
    pool_wall: float = 0.0
    same_status: int = 0
    cleanup: int = 0
    cleanup_wall: float = 0.0
    far_one: float = 0.0  # the reads again through the delaying proxy, one at a time
    far_pool: float = 0.0  # the same, by the pool

    @property
    def wall(self) -> float:
        return self.pool_wall + self.cleanup_wall

    @property
    def total(self) -> int:
        return self.requests + self.cleanup


def send_all(requests: list[httpx.Request], concurrency: int, base: str | None = None) -> tuple[float, list[int]]:
    """Send `requests` again (to `base` instead of their own server, when given) by a bare httpx pool of
    `concurrency` threads: the wall time and the statuses."""
    target = httpx.URL(base) if base else None
    with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:
        def send(request: httpx.Request) -> int:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_SENT_AGAIN}
            url = request.url.copy_with(host=target.host, port=target.port) if target else request.url
            return http.request(request.method, url, headers=headers, content=request.content).status_code
        with ThreadPoolExecutor(concurrency) as pool:
            start = time.perf_counter()
            statuses = list(pool.map(send, requests))
            return time.perf_counter() - start, statuses


def bare_replay(url: str, env: dict[str, str], concurrency: int, latency: float) -> Replay:
    """One run in this process that records its requests; before its cleanup, every request it sent (set-up and
    items, writes too) is sent again, in the run's order, by a bare httpx pool of `concurrency` threads. What the
    writes made again carries the run's prefix and goes with the run's cleanup (found by the prefix). Then its
    reads go again through a proxy `latency` seconds away, one at a time and by the pool: the speed-up this
    machine allows there."""
    from conformance import session as session_module
    from umami_conformance import cli
    replay = Replay()
    capture = Capture()
    made, finish = session_module.Session.__post_init__, session_module.Session.finish

    def post_init(self: Any) -> None:
        made(self)
        self.client.recorder = capture

    def before_cleanup(self: Any) -> None:
        sent = [r for r, _, _ in capture.sent]
        replay.requests, replay.reads = len(sent), sum(1 for r in sent if r.method == "GET")
        replay.pool_wall, statuses = send_all(sent, concurrency)
        replay.same_status = sum(a == b for a, b in zip(statuses, (s for _, s, _ in capture.sent), strict=True))
        reads = [r for r in sent if r.method == "GET"]
        with RecordingProxy(url, delay=latency) as proxy:
            replay.far_one, _ = send_all(reads, 1, proxy.url)
            replay.far_pool, _ = send_all(reads, concurrency, proxy.url)
        if self.sandbox is not None:
            self.sandbox.adopt_leftovers()  # what the replayed creates made again
        before = len(capture.sent)
        start = time.perf_counter()
        finish(self)
        replay.cleanup_wall = time.perf_counter() - start
        replay.cleanup = len(capture.sent) - before

    old_env = dict(os.environ)
    os.environ.update(env)
    session_module.Session.__post_init__, session_module.Session.finish = post_init, before_cleanup
    try:
        with tempfile.TemporaryDirectory() as out, open(os.devnull, "w") as quiet, \
                contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            code = cli.main(["run", "--url", url, "--out", out, "-q", "--no-docs", "--concurrency", str(concurrency)])
    finally:
        session_module.Session.__post_init__, session_module.Session.finish = made, finish
        os.environ.clear()
        os.environ.update(old_env)
    if code != 0:
        print(f"note: the recording run exited {code}", file=sys.stderr)
    return replay

def suite(url: str, env: dict[str, str], concurrency: int, runs: int) -> tuple[float, int, dict[str, Any]]:
    """Median wall time of `runs` whole runs, their requests, and the last run's results."""
    walls, results = [], {}
    for _ in range(runs):
        proc, wall, results = timed_run(url, env, "--concurrency", str(concurrency))
        if proc.returncode not in (0, 1):
            print(f"note: run --concurrency {concurrency} exited {proc.returncode}: {proc.stderr[-500:]}",
                  file=sys.stderr)
        walls.append(wall)
    return statistics.median(walls), results["timing"]["requests"], results


def recheck_wall(recording: Path) -> float | None:
    if not recording.is_file():
        return None
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "umami_conformance.cli", "recheck", str(recording), "--out", out, "-q"],
                       cwd=ROOT, capture_output=True, check=False)
        return time.perf_counter() - start


def docs_wall(results: dict[str, Any], runs: int = 3) -> float:
    from docgen.render import render_docs
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results.json"
        path.write_text(json.dumps(results))
        for n in range(runs):
            start = time.perf_counter()
            render_docs(path, Path(tmp) / f"docs{n}", Path(tmp) / "no-history")
            walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def row(name: str, wall: float, requests: int, limit: float | None = None) -> str:
    ratio = f"{wall / limit:>8.2f}x" if limit else f"{'':>9}"
    return f"{name:<38} {wall:>8.2f} {requests:>9} {requests / wall:>8.1f} {ratio}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1, help="whole runs per figure (the median is printed)")
    parser.add_argument("--recording", type=Path, default=DEFAULT_RECORDING)
    args = parser.parse_args()
    n = args.concurrency
    url, env = local_server()
    replay = bare_replay(url, env, n, args.latency_ms / 1000)
    seq_wall, seq_requests, _ = suite(url, env, 1, args.runs)
    conc_wall, conc_requests, results = suite(url, env, n, args.runs)
    with RecordingProxy(url, delay=args.latency_ms / 1000) as proxy:
        far_seq, far_requests, _ = suite(proxy.url, env, 1, args.runs)
        far_conc, _, _ = suite(proxy.url, env, n, args.runs)
    recheck = recheck_wall(args.recording)
    docs = docs_wall(results)

    print(f"local Umami {results['server']['version']} at {url}, concurrency {n}, median of {args.runs} run(s)")
    print(f"{'':<38} {'wall (s)':>8} {'requests':>9} {'req/s':>8} {'vs limit':>9}")
    print(row("suite, sequential", seq_wall, seq_requests, replay.wall))
    print(row(f"suite, concurrency {n}", conc_wall, conc_requests, replay.wall))
    print(row(f"bare replay, concurrency {n} (the limit)", replay.wall, replay.total, replay.wall))
    print(f"  = the run's {replay.requests} requests ({replay.reads} reads) again by a bare pool in "
          f"{replay.pool_wall:.2f} s ({replay.same_status} answered the recorded status) + the cleanup's "
          f"{replay.cleanup} requests as the run sent them, {replay.cleanup_wall:.2f} s")
    print(f"suite concurrent / bare replay: {conc_wall / replay.wall:.2f}x (target <= 1.2x); sequential / "
          f"concurrent: {seq_wall / conc_wall:.2f}x")
    print(row(f"{args.latency_ms:g} ms away, sequential", far_seq, far_requests))
    print(row(f"{args.latency_ms:g} ms away, concurrency {n}", far_conc, far_requests))
    print(f"{args.latency_ms:g} ms away: concurrent {far_seq / far_conc:.2f}x faster than sequential (target >= 3x)")
    print(f"  the limit there: the run's {replay.reads} reads again through the same proxy by a bare pool, "
          f"{replay.far_one:.2f} s one at a time, {replay.far_pool:.2f} s {n} at a time: "
          f"{replay.far_one / replay.far_pool:.2f}x")
    print(f"recheck {args.recording.name}: " + (f"{recheck:.2f} s (target <= 2 s)" if recheck is not None
                                               else "not measured (no such file)"))
    print(f"docs render ({len(results['items'])} items): {docs:.3f} s (target <= 0.3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

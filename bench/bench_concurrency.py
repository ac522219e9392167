"""Benchmark: a full run against the server's own limit, sequential and concurrent, near and far.

    .venv/bin/python bench/bench_concurrency.py [--concurrency 4] [--latency-ms 20] [--runs 1] [--recording FILE]

Against the local real Umami (started if needed), side by side:
- the suite's wall time (a whole `umami-conformance run`, process start to reports and docs written), with
  --concurrency 1 and N;
- the bare replay, measured in the same run: a run in this process records every request it sends (method,
  URL, headers, body, time), and before its cleanup (the sandbox and the tokens still there) a bare httpx pool of
  N threads sends its reads (GET) again. Its writes cannot be sent twice (they would create objects again), and
  the suite sends them one at a time anyway: they count with the time the server took for them, and so do the
  requests of the cleanup. That sum is the server's limit for this run on this machine; the suite's wall
  divided by it is what the harness costs;
- requests per second of each;
- the same two runs through a proxy that adds `--latency-ms` to every request (a server farther away);
- the wall time of `umami-conformance recheck` of a full recording (default: the shared 3.1.0 one), and of
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

DEFAULT_RECORDING = ROOT.parent / "shared" / "recordings" / "umami-3.1.0-run.har.gz"
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
    """The bare replay: the reads sent again by a pool, the writes and the cleanup at the server's own time."""

    reads: int = 0
    read_wall: float = 0.0
    same_status: int = 0
    writes: int = 0
    write_seconds: float = 0.0

    @property
    def wall(self) -> float:
        return self.read_wall + self.write_seconds

    @property
    def requests(self) -> int:
        return self.reads + self.writes


def bare_replay(url: str, env: dict[str, str], concurrency: int) -> Replay:
    """One run in this process that records its requests; before its cleanup, its reads are sent again by a bare
    httpx pool of `concurrency` threads."""
    from conformance import run as run_module
    from umami_conformance import cli
    replay = Replay()
    capture = Capture()
    made, finish = run_module.UmamiRun.__post_init__, run_module.UmamiRun.finish

    def post_init(self: Any) -> None:
        made(self)
        self.client.recorder = capture

    def before_cleanup(self: Any) -> None:
        reads = [(r, status) for r, status, _ in capture.sent if r.method == "GET"]
        writes = [seconds for r, _, seconds in capture.sent if r.method != "GET"]
        replay.reads, replay.writes, replay.write_seconds = len(reads), len(writes), sum(writes)
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as http:
            def send(read: tuple[httpx.Request, int]) -> bool:
                request, status = read
                headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_SENT_AGAIN}
                return http.get(request.url, headers=headers).status_code == status
            with ThreadPoolExecutor(concurrency) as pool:
                start = time.perf_counter()
                replay.same_status = sum(pool.map(send, reads))
                replay.read_wall = time.perf_counter() - start
        before = len(capture.sent)
        finish(self)
        cleanup = [seconds for _, _, seconds in capture.sent[before:]]
        replay.writes += len(cleanup)
        replay.write_seconds += sum(cleanup)

    old_env = dict(os.environ)
    os.environ.update(env)
    run_module.UmamiRun.__post_init__, run_module.UmamiRun.finish = post_init, before_cleanup
    try:
        with tempfile.TemporaryDirectory() as out, open(os.devnull, "w") as quiet, \
                contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            code = cli.main(["run", "--url", url, "--out", out, "-q", "--no-docs", "--concurrency", str(concurrency)])
    finally:
        run_module.UmamiRun.__post_init__, run_module.UmamiRun.finish = made, finish
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
    replay = bare_replay(url, env, n)
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
    print(row(f"bare replay, concurrency {n} (the limit)", replay.wall, replay.requests, replay.wall))
    print(f"  = {replay.reads} reads by a bare pool in {replay.read_wall:.2f} s ({replay.same_status} answered the "
          f"recorded status) + {replay.writes} writes and cleanup requests one by one, {replay.write_seconds:.2f} s "
          "at the server")
    print(f"suite concurrent / bare replay: {conc_wall / replay.wall:.2f}x (target <= 1.2x); sequential / "
          f"concurrent: {seq_wall / conc_wall:.2f}x")
    print(row(f"{args.latency_ms:g} ms away, sequential", far_seq, far_requests))
    print(row(f"{args.latency_ms:g} ms away, concurrency {n}", far_conc, far_requests))
    print(f"{args.latency_ms:g} ms away: concurrent {far_seq / far_conc:.2f}x faster than sequential (target >= 3x)")
    print(f"recheck {args.recording.name}: " + (f"{recheck:.2f} s (target <= 2 s)" if recheck is not None
                                               else "not measured (no such file)"))
    print(f"docs render ({len(results['items'])} items): {docs:.3f} s (target <= 0.3 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

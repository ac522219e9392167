"""Benchmark: full-run wall time and harness overhead against a real Umami.

    python bench/bench_run.py [--url URL] [--runs 3]

Without --url the local real Umami is used (started if needed). Overhead is the wall time of the
whole `umami-conformance run` minus the time spent waiting on the server's answers (results.json
`timing.server_seconds`), so the runs are sequential (--concurrency 1: concurrent waits overlap, and their sum
says nothing of the wall time; bench_concurrency.py measures concurrent runs). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

from runs import local_server, timed_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url, env = (args.url, dict(os.environ)) if args.url else local_server()
    rows = []
    for n in range(args.runs):
        proc, wall, results = timed_run(url, env, "--concurrency", "1")
        timing = results["timing"]
        rows.append((wall, timing["server_seconds"], timing["requests"], results["summary"]["items"]))
        print(f"run {n + 1}: exit {proc.returncode}, {results['summary']['items']} items, "
              f"{timing['requests']} requests, wall {wall:.2f}s, server {timing['server_seconds']:.2f}s, "
              f"overhead {wall - timing['server_seconds']:.2f}s")
    walls = [r[0] for r in rows]
    overheads = [r[0] - r[1] for r in rows]
    print(f"median of {len(rows)}: wall {statistics.median(walls):.2f}s, "
          f"server {statistics.median(r[1] for r in rows):.2f}s, overhead {statistics.median(overheads):.2f}s "
          f"({rows[0][3]} items, {rows[0][2]} requests)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

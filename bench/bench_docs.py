"""Benchmark: time to render the full docs from one results.json (with its history).

    python bench/bench_docs.py [reports/results.json] [--runs 5]

Prints each render's wall time and the median; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from docgen.render import render_docs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="?", default=Path("reports/results.json"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.results.exists():
        print(f"{args.results} not found: run `scripts/conformance` first", file=sys.stderr)
        return 2
    times = []
    for n in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            files = render_docs(args.results, Path(out), history_dir=args.results.parent / "history")
            times.append(time.perf_counter() - start)
        print(f"render {n + 1}: {len(files)} files in {times[-1] * 1000:.0f} ms")
    print(f"median of {len(times)}: {statistics.median(times) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the unit tier's wall and CPU time, as `scripts/test` runs it (`-m "not live and not build" -n auto
--dist loadfile`).

    python bench/bench_unit.py [--runs 3] [--cold]

Each run is a fresh pytest process; its CPU time is that of the process and its workers (user + system). The
machine's speed can vary by a third from run to run (shared CPUs), so the CPU time is printed beside the wall
time, and the median of both. `--cold` removes the tests' validation cache and bytecode before each run (a fresh
clone on a fresh machine). Prints only; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "pytest", "tests", "-q", "-m", "not live and not build", "-n", "auto", "--dist",
           "loadfile", "-p", "no:cacheprovider"]


def cold() -> None:
    """What a fresh clone on a fresh machine lacks: the tests' validation cache and every module's bytecode."""
    shutil.rmtree(Path(tempfile.gettempdir()) / f"umami-conformance-tests-{os.getuid()}", ignore_errors=True)
    for folder in ROOT.glob("*/**/__pycache__"):
        if ".venv" not in folder.parts:
            shutil.rmtree(folder, ignore_errors=True)


def one_run(args: list[str]) -> tuple[float, float, str]:
    """One unit tier: its wall time, its CPU time (this process's children), and pytest's last line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as scripts/test
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([*COMMAND, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    lines = proc.stdout.strip().splitlines()
    return wall, cpu, re.sub(r"=+", "", lines[-1]).strip() if lines else f"exit {proc.returncode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="no validation cache and no bytecode before each run")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    walls, cpus = [], []
    for n in range(args.runs):
        if args.cold:
            cold()
        wall, cpu, last = one_run(args.pytest_args)
        walls.append(wall)
        cpus.append(cpu)
        print(f"run {n + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU ({os.cpu_count()} cores): {last}", flush=True)
    print(f"median of {args.runs}: {statistics.median(walls):.1f} s wall, {statistics.median(cpus):.1f} s CPU"
          f"{' (cold)' if args.cold else ''}; target: under 30 s wall on an idle machine")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""umami-conformance and Schemathesis side by side, on the same GET operations of the local Umami 2.10.0.

Exports the OpenAPI document of the release (`umami-conformance openapi`), runs the suite on its GET endpoints
(`-k`), then Schemathesis (`st run`, the `bench` extra) on the document's GET operations with the admin's bearer
token, and prints for each tool its wall time, requests sent and failures, then per operation what each saw.
GET only, so Schemathesis leaves nothing behind; its examples per operation (`-n`) and a timeout bound it.
Wrap it in `flock /tmp/umami-live.lock` where other runs share the local server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from runs import ROOT, local_server, timed_run

ST_TIMEOUT = 1200  # seconds: Schemathesis is stopped after this, whatever -n says
AUTH_TOML = """# written by bench/bench_schemathesis.py: the token comes from the environment
[auth.openapi.bearer]
bearer = "${UMAMI_BENCH_TOKEN}"
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="Umami server (default: the local real Umami)")
    parser.add_argument("--umami-version", default="2.10.0", help="release of the exported document")
    parser.add_argument("--examples", type=int, default=5, help="Schemathesis test cases per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--negative", type=int, default=5,
                        help="also run the suite with --negative N (generated bad inputs; 0: not)")
    args = parser.parse_args()
    st = Path(sys.executable).parent / "st"
    if not st.exists():
        print("Schemathesis is not installed: .venv/bin/pip install -e '.[bench]'", file=sys.stderr)
        return 2
    url, env = local_server() if args.url is None else (args.url, dict(os.environ))
    # Schemathesis registers a pytest plugin; the suite's run must not pay for importing it.
    env = {**env, "PYTEST_ADDOPTS": "-p no:schemathesis"}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        doc_path = work / "openapi.json"
        subprocess.run([sys.executable, "-m", "umami_conformance.cli", "openapi", "--umami-version",
                        args.umami_version, "--out", str(doc_path)], cwd=ROOT, check=True, capture_output=True)
        doc = json.loads(doc_path.read_text())
        gets = {op["x-umami-endpoint"]: f"GET {path}" for path, item in doc["paths"].items()
                for method, op in item.items() if method == "get"}
        ours = _ours(url, env, gets)
        negative = _ours(url, env, gets, "--negative", str(args.negative)) if args.negative else None
        theirs = _schemathesis(st, url, env, doc_path, work, args)
    _print(gets, ours, negative, theirs, args)
    return 0


def _ours(url: str, env: dict[str, str], gets: dict[str, str], *extra: str) -> dict[str, Any]:
    proc, wall, results = timed_run(url, env, "--no-docs", "-k", " or ".join(sorted(gets)), *extra)
    items = [i for i in results["items"] if i["endpoint"] in gets]
    stray = sorted({i["endpoint"] for i in results["items"]} - set(gets))
    failed: dict[str, Counter] = defaultdict(Counter)
    known: dict[str, Counter] = defaultdict(Counter)
    for item in items:
        for f in item["findings"]:
            (known if f["known"] else failed)[gets[item["endpoint"]]][f["class"]] += 1
    return {"wall": wall, "exit": proc.returncode, "requests": results["timing"]["requests"],
            "items": len(items), "outcomes": Counter(i["outcome"] for i in items), "failed": failed,
            "known": known, "stray": stray, "ops": len({i["endpoint"] for i in items})}


def _schemathesis(st: Path, url: str, env: dict[str, str], doc_path: Path, work: Path,
                  args: argparse.Namespace) -> dict[str, Any]:
    login = httpx.post(f"{url.rstrip('/')}/api/auth/login", timeout=30,
                       json={"username": os.environ.get("UMAMI_USERNAME", "admin"),
                             "password": os.environ.get("UMAMI_PASSWORD", "umami")})
    login.raise_for_status()
    config = work / "schemathesis.toml"
    config.write_text(AUTH_TOML)
    reports = work / "st"
    command = [str(st), "--config-file", str(config), "run", str(doc_path), "--url", f"{url.rstrip('/')}/api",
               "--include-method", "GET", "--workers", "1", "--max-examples", str(args.examples),
               "--seed", str(args.seed), "--phases", "examples,coverage,fuzzing", "--checks", "all",
               "--report", "json,har", "--report-dir", str(reports), "--no-color"]
    start = time.perf_counter()
    proc = subprocess.run(command, env={**env, "UMAMI_BENCH_TOKEN": login.json()["token"]}, capture_output=True,
                          text=True, timeout=ST_TIMEOUT, cwd=work)  # its cache directory goes there too
    wall = time.perf_counter() - start
    report = json.loads(next(reports.glob("json-*.json")).read_text())
    har = json.loads(next(reports.glob("har-*.json")).read_text())
    failed: dict[str, Counter] = defaultdict(Counter)
    for failure in report["failures"]:
        for op in failure["operations"]:
            failed[op][f"{failure['code']} {failure['title']}"] += 1
    return {"wall": wall, "exit": proc.returncode, "requests": len(har["log"]["entries"]),
            "cases": report["test_cases"]["generated"], "unique": report["test_cases"]["unique_failures"],
            "codes": {f"{f['code']} {f['title']}": f["count"] for f in report["failures"]}, "failed": failed,
            "ops": report["operations"]["tested"], "errors": report["errors"],
            "version": report["schemathesis_version"]}


def _print(gets: dict[str, str], ours: dict[str, Any], negative: dict[str, Any] | None, theirs: dict[str, Any],
           args: argparse.Namespace) -> None:
    print(f"The same {len(gets)} GET operations of the exported Umami {args.umami_version} document")
    print(f"{'tool':<34} {'wall s':>8} {'requests':>9} {'failures':>9}  operations")
    for name, row in (("umami-conformance (the suite)", ours), (f"umami-conformance --negative {args.negative}",
                                                                 negative)):
        if row is not None:
            open_findings = sum(sum(c.values()) for c in row["failed"].values())
            known = sum(sum(c.values()) for c in row["known"].values())
            print(f"{name:<34} {row['wall']:>8.1f} {row['requests']:>9} {open_findings:>9}  {row['ops']} "
                  f"({row['items']} items; {known} more findings accepted as known; exit {row['exit']})")
    print(f"{'Schemathesis ' + theirs['version']:<34} {theirs['wall']:>8.1f} {theirs['requests']:>9} "
          f"{theirs['unique']:>9}  {theirs['ops']} ({theirs['cases']} test cases, -n {args.examples}, seed "
          f"{args.seed}; exit {theirs['exit']})")
    if ours["stray"]:
        print(f"note: -k also selected {', '.join(ours['stray'])} (left out above)")
    print("\numami-conformance findings by class (open / known):",
          dict(sum(ours["failed"].values(), Counter())), "/", dict(sum(ours["known"].values(), Counter())))
    if negative is not None:
        print(f"umami-conformance --negative {args.negative} findings by class (open / known):",
              dict(sum(negative["failed"].values(), Counter())), "/", dict(sum(negative["known"].values(), Counter())))
    print("Schemathesis failures by check:", theirs["codes"], "errors:", theirs["errors"])
    print("\nper operation: umami-conformance (open + known findings, --negative included) | Schemathesis failures")
    only_ours, only_theirs = [], []
    for op in sorted(set(gets.values())):
        mine = ours["failed"][op] + ours["known"][op]
        if negative is not None:
            mine |= negative["failed"][op] + negative["known"][op]
        other = theirs["failed"].get(op, Counter())
        if mine or other:
            print(f"  {op:<42} {_short(mine):<48} | {_short(other)}")
        if mine and not other:
            only_ours.append(op)
        if other and not mine:
            only_theirs.append(op)
    print(f"\nonly umami-conformance saw something on {len(only_ours)}: {', '.join(only_ours) or '-'}")
    print(f"only Schemathesis saw something on {len(only_theirs)}: {', '.join(only_theirs) or '-'}")


def _short(counts: Counter) -> str:
    return ", ".join(f"{k.split(' ')[0] if k.startswith('ST') else k} x{v}" for k, v in sorted(counts.items())) or "-"


if __name__ == "__main__":
    sys.exit(main())

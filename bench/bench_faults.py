"""Benchmark: a full run through a flaky gateway (502s and dropped connections) in front of the local Umami.

    .venv/bin/python bench/bench_faults.py [--shares 0 1 5] [--dropped-ratio 0.4] [--seed 18]

For each share (percent of requests that fail: 502 without reaching the server, or a dropped connection
after it answered), one full `umami-conformance run` through tests/proxy.py's fault-injecting proxy. Prints the
exit code, wall time, faults injected, retries, items unavailable and open drift findings. Asserts nothing.
"""

from __future__ import annotations

import argparse
import sys

from runs import ROOT, local_server, timed_run

sys.path.insert(0, str(ROOT / "tests"))

from proxy import Faults, RecordingProxy  # noqa: E402  (the test suite's proxy)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0, 1, 5], help="percent of requests failing")
    parser.add_argument("--dropped-ratio", type=float, default=0.4, help="part of the faults that drop the connection")
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    url, env = local_server()
    print("share  exit  wall(s)  requests  502s  dropped  retries  unavailable-items  open-findings  residue")
    for share in args.shares:
        rate = share / 100
        faults = Faults(bad_gateway=rate * (1 - args.dropped_ratio), dropped=rate * args.dropped_ratio, seed=args.seed)
        with RecordingProxy(url, faults=faults) as proxy:
            proc, wall, results = timed_run(proxy.url, env, "--no-docs")
        items = results["items"]
        unavailable = sum(1 for i in items if i["outcome"] == "unavailable")
        findings = sum(1 for i in items for f in i["findings"] if not f["known"])
        print(f"{share:>4g}%  {proc.returncode:>4}  {wall:>7.1f}  {results['timing']['requests']:>8}  "
              f"{faults.injected['502']:>4}  {faults.injected['dropped']:>7}  {results['timing']['retries']:>7}  "
              f"{unavailable:>17}  {findings:>13}  {len(results['residue']):>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

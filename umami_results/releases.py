"""The shipped results of recorded Umami releases: a recheck of each full recording in tests/recordings, made
compact (what the upgrade diff reads, no timings) and gzipped into `umami_results/data/`, so that `upgrade-check
--to V` diffs a run of today against release V without a server of V.

`python -m umami_results.releases RESULTS.json --recording NAME [--data DIR]` writes one (`scripts/ship-releases`
regenerates them all); tests/test_upgrade_check.py fails when they are stale against a fresh recheck."""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path
from typing import Any

from umami_results import ResultsError, load

DATA = Path(__file__).resolve().parent / "data"
SUFFIX = ".results.json.gz"
# An item's fields the upgrade diff reads; `example` only says whether there was a body.
ITEM_FIELDS = ("id", "endpoint", "area", "method", "path", "role", "case", "kind", "expected_status",
               "actual_status", "content_type", "outcome", "skip", "shape")


def compact(results: dict[str, Any], recording: str) -> dict[str, Any]:
    """What the diff needs of a recheck of `recording`: the server, the route evidence, and per item its answer,
    skip code and finding classes (JSON path, known or not), no timings, examples or prose of findings."""
    items = []
    for item in results["items"]:
        kept = {k: item[k] for k in ITEM_FIELDS if k in item}
        kept["example"] = item.get("example") not in (None, "")
        kept["findings"] = [{"class": f["class"], "json_path": f["json_path"], "known": bool(f.get("known"))}
                            for f in item.get("findings") or []]
        items.append(kept)
    return {"tool": results["tool"], "server": results["server"], "reference": {"recording": recording},
            "routes": results.get("routes") or [], "items": items}


def path_of(version: str, data: Path = DATA) -> Path:
    return data / f"umami-{version}{SUFFIX}"


def write(doc: dict[str, Any], data: Path = DATA) -> Path:
    """Write a compact doc as `umami-<version>.results.json.gz`; the same doc gives the same bytes."""
    version = doc["server"]["version"]
    if not version:
        raise ResultsError("the results have no server version: recheck with --umami-version")
    data.mkdir(parents=True, exist_ok=True)
    target = path_of(version, data)
    text = json.dumps(doc, indent=None, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    target.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    return target


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def available(data: Path = DATA) -> list[str]:
    """The releases with shipped results, oldest first."""
    return sorted((p.name[len("umami-"):-len(SUFFIX)] for p in data.glob(f"umami-*{SUFFIX}")), key=_key)


def load_release(version: str, data: Path = DATA) -> dict[str, Any]:
    """The shipped results of `version` (a leading `v` is allowed); ResultsError naming the releases there are."""
    version = version.removeprefix("v")
    path = path_of(version, data)
    if not path.is_file():
        raise ResultsError(f"no shipped results for Umami {version}; --to takes one of: "
                           f"{', '.join(available(data)) or 'none'}")
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return _frame(json.loads(text), path)


def _frame(doc: Any, path: Path) -> dict[str, Any]:
    if not (isinstance(doc, dict) and doc.get("tool") == "umami-conformance" and isinstance(doc.get("items"), list)
            and isinstance(doc.get("server"), dict)):
        raise ResultsError(f"{path}: not shipped results of umami-conformance")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m umami_results.releases",
                                     description="Ship the compact results of a recheck of a recorded release.")
    parser.add_argument("results", type=Path, help="results.json of `umami-conformance recheck` of the recording")
    parser.add_argument("--recording", required=True, help="the recording's file name, for the report")
    parser.add_argument("--data", type=Path, default=DATA, help=f"where to write (default {DATA})")
    args = parser.parse_args(argv)
    target = write(compact(load(args.results), args.recording), args.data)
    print(f"{target}: {target.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

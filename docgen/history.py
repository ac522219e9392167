"""Compact archive of the runs, and what the docs derive from it (first seen, passing or failing since, last
changed, a version x endpoint grid).

The archive stays bounded: a run whose items equal the newest archived run's (same version) adds no file, so a
daily run on an unchanged server adds nothing, and at most HISTORY_LIMIT files are kept (the oldest go)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from docgen.legend import Vocabulary
from umami_results.vocabulary import PASSING, Outcome
HISTORY_LIMIT = 100  # archived runs kept; each one differs from the run before it


def json_types(kind: str) -> set[str]:
    """The JSON types of a shape entry (`integer|null`), with integer and number as one (JSON has one number
    type: a percentage of 100 and one of 16.7 are the same field)."""
    return {"number" if t == "integer" else t for t in kind.split("|")}


def shape_hash(item: dict[str, Any]) -> str | None:
    """A hash of the item's body shape (`json_types` of each JSON path), None without one."""
    shape = item.get("shape")
    if not shape:
        return None
    types = {path: "|".join(sorted(json_types(kind))) for path, kind in shape.items()}
    return hashlib.sha256(json.dumps(types, sort_keys=True).encode()).hexdigest()[:12]


def archive(results: dict[str, Any], history_dir: Path) -> Path | None:
    """Write one gzip file for the run: per item its legend key (outcome, or the group of its worst open
    finding), status and a hash of the body shape. Nothing is written (None) when the newest archived run is of
    the same version with the same items; beyond HISTORY_LIMIT files the oldest are removed."""
    symbol_key = Vocabulary(results).item_key
    version = results["server"]["version"] or "unknown"
    stamp = re.sub(r"[^0-9T]", "", results["started"])[:15]
    compact = {"started": results["started"], "version": version,
               "items": {i["id"]: [i["endpoint"], symbol_key(i), i.get("actual_status"), shape_hash(i)]
                         for i in sorted(results["items"], key=lambda i: i["id"])}}
    runs = load_history(history_dir)
    if runs and runs[-1]["version"] == version and runs[-1]["items"] == compact["items"]:
        return None
    history_dir.mkdir(parents=True, exist_ok=True)
    path = history_dir / f"{stamp}_{version}.json.gz"
    path.write_bytes(gzip.compress(json.dumps(compact, sort_keys=True).encode(), mtime=0))
    for old in sorted(history_dir.glob("*.json.gz"))[:-HISTORY_LIMIT]:
        old.unlink()
    return path


@dataclass
class EndpointHistory:
    first_seen: str | None = None
    passing: bool | None = None  # in the latest run that ran it
    since: str | None = None  # the first run of the latest stretch of runs with that `passing`
    last_changed: str | None = None
    by_version: dict[str, list[str]] = field(default_factory=dict)  # version -> legend keys of latest run


def load_history(history_dir: Path | None) -> list[dict[str, Any]]:
    if not history_dir or not history_dir.is_dir():
        return []
    runs = [json.loads(gzip.decompress(p.read_bytes())) for p in sorted(history_dir.glob("*.json.gz"))]
    return sorted(runs, key=lambda r: r["started"])


def endpoint_histories(runs: list[dict[str, Any]]) -> dict[str, EndpointHistory]:
    """Per endpoint: first seen, passing or failing since, last changed (dates), latest keys per version. Each
    date stays as it is while the endpoint answers as before, so a page that shows them changes only when the
    endpoint does."""
    out: dict[str, EndpointHistory] = {}
    previous: dict[str, tuple] = {}
    for run in runs:
        date = run["started"][:10]
        per_ep: dict[str, list] = {}
        for item_id, (endpoint, key, status, shape) in sorted(run["items"].items()):
            per_ep.setdefault(endpoint, []).append((item_id, key, status, shape))
        for endpoint, rows in per_ep.items():
            h = out.setdefault(endpoint, EndpointHistory())
            ran = [r for r in rows if r[1] != Outcome.SKIPPED]
            if ran and h.first_seen is None and any(r[2] not in (404, 405) for r in ran):
                h.first_seen = date
            if ran and (passing := all(r[1] in PASSING for r in ran)) != h.passing:
                h.passing, h.since = passing, date
            signature = tuple(rows)
            if endpoint in previous and previous[endpoint] != signature:
                h.last_changed = date
            previous[endpoint] = signature
            h.by_version[run["version"]] = [r[1] for r in rows]
    return out

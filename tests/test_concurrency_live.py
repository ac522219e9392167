"""Against the real local Umami: a concurrent run (reads, and writes in their lanes, at a time) gives the same
results.json items as a sequential one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conformance import server

from conftest import run_cli, user_env

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
EPOCH_MS = re.compile(r"\b1\d{12}\b")  # startAt/endAt: "now" when the item ran
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")  # createdAt, updatedAt, mindate, ...


def _comparable(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The items, with only what differs between any two runs taken out:
    - `duration`: wall time of the item;
    - the run prefix (`ucf-<time>-<hex>-`), a throwaway object's random suffix (`-<6 hex>`), ids (UUIDs), times
      (epoch ms in the query, ISO times in bodies) and a new team's random access code: made anew by each run;
    - the numbers of `example` (bodies): 2.10.0 cannot delete websites, so every run reuses the kept set
      (`ucf-keep-*`), and its traffic grows with each run;
    - `example` and `shape` of the items that read the team website (`...-team-website]`): on 2.10.0 it is the
      kept `ucf-keep-team-site`, and its traffic holds the visits of every earlier run (realtime lists the
      sessions of the last 30 minutes: the sequential run's are in the concurrent run's answer);
    - which rows a list of `example` shows (objects with an `id`; only their number is compared): the server
      lists them in no fixed order (no ORDER BY, e.g. a website's reports), and an example keeps the first few.
    Everything else is compared: ids and order of the items, outcome, reason, status, findings, schema checked,
    shape, curl, url, content type, and the strings of every example."""
    text = json.dumps([{k: v for k, v in item.items() if k != "duration"} for item in results["items"]])
    text = re.sub(re.escape(results["prefix"]) + r"([a-z-]+?)-[0-9a-f]{6}\b", r"<prefix>\1-<hex>", text)
    text = text.replace(results["prefix"], "<prefix>")
    text = ISO_TIME.sub("<time>", UUID.sub("<id>", EPOCH_MS.sub("0", text)))
    text = re.sub(r'"accessCode": "[A-Za-z0-9]{16}"', '"accessCode": "<code>"', text)
    items = json.loads(text)
    for item in items:
        if item["id"].endswith("-team-website]"):
            item.pop("example", None)
            item.pop("shape", None)
        if "example" in item:
            item["example"] = _without_numbers(item["example"])
    return items


def _without_numbers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        if any(isinstance(v, dict) and "id" in v for v in value):
            return f"{len(value)} rows"
        return sorted((_without_numbers(v) for v in value), key=json.dumps)
    return 0 if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _run(umami: server.ServerInfo, out: Path, concurrency: int, *args: str) -> dict[str, Any]:
    proc = run_cli("run", "--url", umami.url, "--out", str(out), "--no-docs", "-q", "--concurrency",
                   str(concurrency), *args, env=user_env(umami))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return json.loads((out / "results.json").read_text())


def test_a_concurrent_run_gives_the_items_of_a_sequential_run(umami: server.ServerInfo, tmp_path: Path) -> None:
    _run(umami, tmp_path / "warm-up", 1, "-m", "websites")  # makes the kept set (ucf-keep-*) of a fresh database
    sequential = _run(umami, tmp_path / "sequential", 1)
    concurrent = _run(umami, tmp_path / "concurrent", 4)
    assert [i["id"] for i in concurrent["items"]] == [i["id"] for i in sequential["items"]]
    ran = [i for i in sequential["items"] if i["outcome"] != "skipped"]
    assert len(ran) > 500 and sum(i["method"] == "GET" for i in ran) > 400  # reads ran, in parallel
    assert sum(i["method"] != "GET" for i in ran) > 100  # and writes, in their lanes
    different = [(a["id"], k) for a, b in zip(_comparable(sequential), _comparable(concurrent), strict=True)
                 for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    assert different == []
    assert concurrent["summary"] == sequential["summary"]


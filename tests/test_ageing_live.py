"""The ageing tier (issue 25): a daily run against one long-lived server gives, on day 31, the verdict of day 1.

The local server is made to look old (`server.age`: every timestamp of its database moved back) by one day, then
by 30 more, with a run after each, as a daily CI would run with one docs and one history folder. It runs last in a
session (conftest orders it so): a fresh server to begin with, and an aged one afterwards, for no other test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance import server
from conformance.seed import SEED_IPS, seed_plan, seed_requests

from conftest import run_cli, user_env
from snapshot import sql

pytestmark = pytest.mark.ageing
OBJECTS = ("user", "team", "team_user", "website", "report")  # what a run may create; none may pile up


def _objects(info: server.ServerInfo) -> dict[str, int]:
    return {table: int(sql(info, f'SELECT count(*) FROM "{table}"')) for table in OBJECTS}


def _verdict(results: dict[str, Any]) -> dict[str, tuple]:
    """Per item: its outcome and findings (class, path, known or open)."""
    return {i["id"]: (i["outcome"], sorted((f["class"], f["json_path"], bool(f["known"])) for f in i["findings"]))
            for i in results["items"]}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_day_31_gives_the_verdict_of_day_1(umami: server.ServerInfo, tmp_path: Path) -> None:
    info = server.start(fresh=True)  # minutes old, as in the measurement; the last test of a session
    docs, history = tmp_path / "docs", tmp_path / "history"
    results, objects, pages, archived, events = [], [], [], [], []
    for n, days in enumerate((0, 1, 30)):
        if days:
            server.age(info, days)
        out = tmp_path / f"day{n}"
        proc = run_cli("run", "--url", info.url, "--out", str(out), "--docs", str(docs), "--history", str(history),
                       "-q", env=user_env(info))
        assert proc.returncode == 0, f"aged {days} day(s): exit {proc.returncode}\n{proc.stdout[-3000:]}"
        results.append(json.loads((out / "results.json").read_text()))
        objects.append(_objects(info))
        pages.append(_files(docs))
        archived.append(sorted(p.name for p in history.iterdir()))
        kept = [k["id"] for k in results[-1]["kept"] if k["kind"] == "website"]
        events.append(int(sql(info, "SELECT count(*) FROM website_event WHERE website_id IN ('"
                                     + "','".join(kept) + "')")))

    assert all(r["summary"]["outcomes"].get("failed", 0) == 0 for r in results), "no open finding on any day"
    verdicts = [_verdict(r) for r in results]
    assert verdicts[0] == verdicts[1] == verdicts[2], "the same items, outcomes and findings on every day"
    assert sum(o == "passed" for o, _ in verdicts[0].values()) > 300, "the runs tested something"
    realtime = [i for i in results[2]["items"] if i["endpoint"] == "realtime/get" and i["schema_checked"]]
    assert len(realtime) >= 8 and all(i["outcome"] == "passed" for i in realtime), "sessions of this run's seed"

    assert objects[2] == objects[0], f"objects piled up: {objects}"
    assert all(k["reused"] for k in results[2]["kept"]) and len(results[2]["kept"]) == len(results[0]["kept"])
    seed = len(seed_requests({"id": "x", "domain": "x"}, "x", seed_plan([info.version])))
    growth = [later - earlier for earlier, later in zip(events, events[1:], strict=False)]
    # Each day adds one seed per kept website with traffic and the send items' few events: the same every day.
    assert growth[0] == growth[1] and 0 < growth[1] <= 2 * seed + 10, (events, seed)
    assert results[2]["seeded"]["sessions"] == len(SEED_IPS) and "reused" not in results[2]["seeded"]

    changed = sorted(p for p in pages[1].keys() | pages[2].keys() if pages[1].get(p) != pages[2].get(p))
    assert changed == ["index.md"], "the docs of an unchanged API change on the index alone"
    assert archived[2] == archived[1], "an unchanged run adds nothing to the history"
    assert len(archived[2]) <= 2

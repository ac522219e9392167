"""`upgrade-check --to 3.1.0` against the local Umami 2.10.0: the suite runs as `run` does, then its results are diffed
against the shipped 3.1.0 results, with no server of 3.1.0. The issue's bar: >= 100 changes, the endpoints 3.1.0
adds among them, the removed hash leak of /admin/users not breaking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import server
from conftest import run_cli, user_env
from umami_results import releases


@pytest.fixture(scope="module")
def checked(umami: server.ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    base = tmp_path_factory.mktemp("upgrade-check")
    proc = run_cli("upgrade-check", "--to", "3.1.0", "--url", umami.url, "--discover", "-q",
                   "--reports", str(base / "reports"), "--out", str(base / "upgrade.md"),
                   "--json", str(base / "upgrade.json"), env=user_env(umami))
    return base, proc


def test_the_report_against_the_shipped_3_1_0(checked, umami: server.ServerInfo) -> None:
    base, proc = checked
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]  # breaking changes (and /version)
    assert "Traceback" not in proc.stderr
    doc = json.loads((base / "upgrade.json").read_text())
    assert doc["old"]["url"] == umami.url and doc["old"]["version"] == "2.10.0"
    assert doc["new"]["version"] == "3.1.0" and doc["new"]["reference_recording"] == "umami-3.1.0-full.har.gz"
    assert doc["summary"]["changes"] >= 100, doc["summary"]
    changes = {(c["endpoint"], c["kind"], c["where"]): c for c in doc["changes"]}
    added = {c["endpoint"] for c in doc["changes"] if c["kind"] == "endpoint-added"}
    assert {"boards/list", "admin/teams", "links/list", "pixels/list", "reports/journey"} <= added, sorted(added)
    assert len(added) >= 70
    leak = changes[("admin/users", "security-fixed", "$.data[*].password")]
    assert not leak["breaking"] and ("admin/users", "field-removed", "$.data[*].password") not in changes
    removed = [c for (_, kind, where), c in changes.items()
               if kind == "endpoint-removed" and where.endswith("/version")]
    assert len(removed) == 1 and removed[0]["breaking"], removed  # GET /version (2.7-2.17): no route on 3.1.0
    text = (base / "upgrade.md").read_text()
    head = proc.stdout.split("# Upgrade check:", 1)[1].splitlines()  # after the run's verdict line
    assert len(head) <= 40 and text.startswith("# Upgrade check:" + "\n".join(head[:-2])), proc.stdout[-3000:]
    assert head[-1].endswith(f"the whole report is in {base / 'upgrade.md'}")  # --out took the whole report
    assert "> **The new side is a reference recording, not a server of yours**" in \
        text[:text.index("| Change | Breaking | Count |")]


def test_it_ran_the_suite_as_run_does(checked, umami: server.ServerInfo) -> None:
    """The run's reports are in --reports, its sandbox is gone, and no entry of the diff comes from a skip."""
    base, _ = checked
    old = json.loads((base / "reports" / "results.json").read_text())
    assert old["server"]["url"] == umami.url and old["residue"] == []
    assert any(i["area"] == "discovery" for i in old["items"]) and old.get("routes")
    new = releases.load_release("3.1.0")
    answered = [{i["id"] for i in r["items"] if i["outcome"] not in ("skipped", "unavailable", "error")}
                for r in (old, new)]
    items = {i["id"] for r in (old, new) for i in r["items"]}
    for change in json.loads((base / "upgrade.json").read_text())["changes"]:
        if change["where"] in items:
            assert change["where"] in answered[0] and change["where"] in answered[1], change

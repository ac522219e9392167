"""`upgrade-check --to V` offline: the shipped results of the recorded releases are a fresh recheck of the vendored
recordings, and a recheck of the 2.10.0 recording (standing for the user's server) diffed against the shipped
3.1.0 is the report a user of 2.10.0 gets: the endpoints 3.1.0 adds among its changes, the fixed leak not breaking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli_in_process
from docgen.diff import diff_results
from docgen.upgrade_report import diff_json, render_diff
from umami_conformance import cli
from umami_results import releases

RELEASES = {"2.10.0": "umami-2.10.0-full.har.gz", "2.20.2": "umami-2.20.2-full.har.gz",
            "3.1.0": "umami-3.1.0-full.har.gz"}


@pytest.fixture(scope="module")
def fresh(full_recheck) -> dict[str, dict]:
    """A recheck of each vendored full recording with the current specs, by release (shared with test_recheck)."""
    found = {}
    for version, name in RELEASES.items():
        proc, results, _ = full_recheck(name)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        found[version] = results
    return found


def test_every_recorded_release_is_shipped() -> None:
    assert releases.available() == sorted(RELEASES, key=lambda v: tuple(map(int, v.split("."))))


@pytest.mark.parametrize("version", sorted(RELEASES))
def test_the_shipped_results_are_not_stale(fresh: dict[str, dict], version: str) -> None:
    """What the diff reads (answers, shapes, skip codes, finding classes, routes, the server) is what a recheck
    with the current specs and engine gives; timings are not kept. Stale: run scripts/ship-releases."""
    shipped = releases.load_release(version)
    current = releases.compact(fresh[version], RELEASES[version])
    hint = "the shipped results are stale: run scripts/ship-releases"
    assert shipped["server"] == current["server"] and shipped["routes"] == current["routes"], hint
    assert [i["id"] for i in shipped["items"]] == [i["id"] for i in current["items"]], hint
    differ = [new["id"] for old, new in zip(shipped["items"], current["items"], strict=True) if old != new]
    assert not differ, f"{hint} ({len(differ)} item(s) differ, e.g. {differ[:5]})"
    assert shipped == current, hint


def test_a_release_without_data_lists_those_with_data() -> None:
    """Exit 2 with one clear line, before any request (there is no server at this URL)."""
    proc = cli_in_process("upgrade-check", "--to", "2.15.0", "--url", "http://127.0.0.1:9")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip() == ("umami-conformance: error: no shipped results for Umami 2.15.0; --to takes one "
                                   "of: 2.10.0, 2.20.2, 3.1.0")


def test_a_report_that_cannot_be_written_stops_before_the_run(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_run", lambda args: pytest.fail("the run must not start"))
    (tmp_path / "file").write_text("")
    for flag, path in (("--json", tmp_path), ("--out", tmp_path / "file" / "upgrade.md")):
        proc = cli_in_process("upgrade-check", "--to", "3.1.0", "--url", "http://127.0.0.1:9", flag, str(path))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"umami-conformance: error: {path}: cannot write the upgrade report there")


def test_2_10_0_to_the_shipped_3_1_0(fresh: dict[str, dict]) -> None:
    """The issue's bar: >= 100 changes, the endpoints 3.1.0 adds among them, the removed hash leak not breaking."""
    old, new = fresh["2.10.0"], releases.load_release("3.1.0")
    diff = diff_results(old, new)
    doc = json.loads(diff_json(old, new, diff))
    assert doc["summary"]["changes"] >= 100 and doc["new"]["reference_recording"] == "umami-3.1.0-full.har.gz"
    added = {c["endpoint"]: (c["old"], c["new"]) for c in doc["changes"] if c["kind"] == "endpoint-added"}
    # by the specs' range alone (no probe of these in the recordings) and by the route probes of --discover
    assert added["boards/list"] == ("404 (probe: no route)", "200")
    assert added["reports/journey"] == ("not in 2.10.0 (specs)", "200")  # a POST: no probe
    assert {"admin/teams", "links/list", "pixels/list", "website-segments/get-segments",
            "sessions/get-sessions"} <= added.keys()
    assert len(added) >= 70
    # without --discover (no route evidence of the old server) the specs' range tells the same endpoints
    without = diff_results({**old, "routes": []}, new)
    assert {c.endpoint for c in without.changes if c.kind == "endpoint-added"} >= {
        e for e in added if not e.startswith("GET ")}
    changes = {(c["endpoint"], c["kind"], c["where"]): c for c in doc["changes"]}
    leak = changes[("admin/users", "security-fixed", "$.data[*].password")]
    assert not leak["breaking"] and ("admin/users", "field-removed", "$.data[*].password") not in changes
    assert not any(c["breaking"] and c["kind"].startswith("endpoint-added") for c in doc["changes"])
    # what 3.1.0 removed stays breaking, on the recording's own evidence
    assert changes[("server/version", "endpoint-removed", "GET /version")]["breaking"]
    assert ("reports/insights", "endpoint-removed", "POST /reports/insights") not in changes  # a range alone
    text = render_diff(old, new, diff)
    head = text[:text.index("| Change | Breaking | Count |")]
    assert "> **The new side is a reference recording, not a server of yours**" in head
    assert "security-fixed" not in text[text.index("## Act on these"):text.index("## Changes by area")]


def test_upgrade_check_composes_run_and_diff(fresh: dict[str, dict], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The command diffs what its run published against the shipped release and writes both reports; the run
    itself is `run`'s (here stood in for by the 2.10.0 recheck: the live test runs the real one)."""
    seen = {}

    def run(args):
        seen.update(out=args.out, no_docs=args.no_docs, url=args.url)
        return 0, fresh["2.10.0"]

    monkeypatch.setattr(cli, "_run", run)
    proc = cli_in_process("upgrade-check", "--to", "v3.1.0", "--url", "http://umami.example", "--reports",
                          str(tmp_path / "reports"), "--out", str(tmp_path / "up" / "upgrade.md"),
                          "--json", str(tmp_path / "up" / "upgrade.json"))
    assert proc.returncode == 1, proc.stderr  # something breaking changed
    assert seen == {"out": tmp_path / "reports", "no_docs": True, "url": "http://umami.example"}
    whole = (tmp_path / "up" / "upgrade.md").read_text()
    screen = proc.stdout.splitlines()  # --out takes the report; the terminal gets its first screen and where it is
    assert len(screen) <= 40 and whole.startswith("\n".join(screen[:-2])) and len(whole.splitlines()) > 100
    assert screen[-1].endswith(f"more line(s): the whole report is in {tmp_path / 'up' / 'upgrade.md'}")
    assert "## Act on these" in proc.stdout and "## Changes by area" not in proc.stdout
    doc = json.loads((tmp_path / "up" / "upgrade.json").read_text())
    assert doc["summary"]["changes"] >= 100 and doc["new"]["version"] == "3.1.0"
    assert "against the shipped recording of Umami 3.1.0" in proc.stderr


@pytest.mark.parametrize("code", [2, 3, 6, 130])
def test_a_run_that_did_not_finish_is_not_diffed(code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 fresh: dict[str, dict]) -> None:
    monkeypatch.setattr(cli, "_run", lambda args: (code, fresh["2.10.0"] if code == 6 else None))
    proc = cli_in_process("upgrade-check", "--to", "3.1.0", "--url", "http://umami.example",
                          "--json", str(tmp_path / "upgrade.json"))
    assert proc.returncode == code and proc.stdout == "" and not (tmp_path / "upgrade.json").exists()
    assert f"no upgrade check: the run against your server did not finish (exit {code})" in proc.stderr

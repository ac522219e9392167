"""The upgrade check on a real pair: a run against the local Umami 2.10.0 (with --discover) against a recheck of the
recording of a real 3.1.0 in tests/recordings. Every entry rests on evidence of both sides; none comes from a skip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import server
from conftest import cli_in_process, run_cli, shared_recording, user_env


@pytest.fixture(scope="module")
def pair(umami: server.ServerInfo, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, dict, str]:
    recording = shared_recording("umami-3.1.0-run.har.gz")
    base = tmp_path_factory.mktemp("upgrade")
    old = run_cli("run", "--url", umami.url, "--out", str(base / "old"), "--no-docs", "-q", "--discover",
                  env=user_env(umami))
    assert old.returncode in (0, 1), old.stdout[-2000:] + old.stderr[-2000:]  # 1: /version has no spec
    new = cli_in_process("recheck", str(recording), "--out", str(base / "new"), "--no-docs", "-q")
    assert new.returncode == 0, new.stdout[-2000:] + new.stderr[-2000:]
    proc = cli_in_process("diff", str(base / "old" / "results.json"), str(base / "new" / "results.json"),
                          "--json", str(base / "upgrade.json"))
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr  # something breaking changed
    load = json.loads
    return (load((base / "old" / "results.json").read_text()), load((base / "new" / "results.json").read_text()),
            load((base / "upgrade.json").read_text()), proc.stdout)


def test_no_entry_comes_from_a_skip(pair) -> None:
    old, new, upgrade, _ = pair
    answered = [{i["id"] for i in r["items"] if i["outcome"] not in ("skipped", "unavailable", "error")}
                for r in (old, new)]
    items = {i["id"] for r in (old, new) for i in r["items"]}
    for change in upgrade["changes"]:
        if change["where"] in items:  # an item's change: both runs answered the item
            assert change["where"] in answered[0] and change["where"] in answered[1], change
        if change["kind"] in ("endpoint-added", "endpoint-removed"):  # the status pair is the evidence
            assert change["old"] and change["new"] and change["old"] != change["new"], change
    assert upgrade["summary"]["not_compared"] and upgrade["summary"]["compared"] > 300


def test_the_differences_both_sides_show_with_their_kind(pair) -> None:
    _, _, upgrade, text = pair
    found = {(c["endpoint"], c["kind"], c["where"]): (c["old"], c["new"], c["breaking"]) for c in upgrade["changes"]}
    # GET /version (2.7-2.17, spec server/version): answered on 2.10.0, no route on 3.1.0
    [removed] = [(k, v) for k, v in found.items() if k[1] == "endpoint-removed" and k[2].endswith("/version")]
    assert removed[0][0] in ("server/version", "GET /version") and removed[1][0] == "200" and removed[1][2], removed
    assert found[("boards/list", "endpoint-added", "GET /boards")] == ("404 (probe: no route)", "200", False)
    assert found[("website-stats/list-events", "operation-replaced", "GET /websites/{websiteId}/events")][2]
    assert found[("send/event", "content-type-changed", "send/event[anonymous-pageview]")] == (
        "text/plain", "application/json", True)
    assert found[("teams/get", "server-error", "teams/get[admin-invalid-id]")] == ("400", "500 📝", True)
    assert found[("me/teams", "server-error-fixed", "me/teams[admin-default]")][:2] == ("500 📝", "200")
    assert found[("me/get", "error-format-changed", "errors")][:2] == (
        "text without a content type", "application/json {error:{code,message,status}}")
    assert found[("me/get", "field-removed", "$.username")][2]  # /me is {user, token, shareToken} on 3.x
    assert ("me/get", "field-added", "$.user") in found
    # The summary comes first, breaking kinds first; error formats are summarised once.
    assert text.index("| endpoint-removed | 💥 yes |") < text.index("| endpoint-added | no |") < \
        text.index("## Act on these") < text.index("## Error format") < text.index("## Changes by area") < \
        text.index("## Not compared")


def test_the_same_inputs_give_the_same_bytes(pair, tmp_path: Path) -> None:
    old, new, upgrade, text = pair
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    again = cli_in_process("diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"),
                           "--json", str(tmp_path / "again.json"))
    assert again.stdout == text and json.loads((tmp_path / "again.json").read_text()) == upgrade

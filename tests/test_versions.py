"""Version ranges and detection: every release of the route inventory, told from the paths it answers
(a simulated server per release; no real server), and the answer rules against a fake HTTP server."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import httpx
import pytest

from conformance.client import Target
from conformance.loader import DEFAULT_SPECS
from conformance.options import Options
from conformance.session import Session
from conformance.versions import PROBE_ROUND, Detected, Inventory, Versions, fingerprint, probe_path
from conftest import bundled_specs

INVENTORY = Inventory.load(DEFAULT_SPECS)


def _server(version: str):
    """A server of `version` as the detector sees it: which concrete paths reach a route."""
    return lambda path: version in INVENTORY.versions_reaching(path)


def _indistinguishable(version: str) -> list[str]:
    """The versions no request path tells apart from `version`. A route may hide another: 2.11 only adds
    POST /reports/utm, a path that 2.10's /reports/{reportId} reaches too."""
    paths = [INVENTORY.versions_reaching(probe_path(t)) for t in INVENTORY.templates]

    def reach(v: str) -> tuple[bool, ...]:
        return tuple(v in versions for versions in paths)
    return [v for v in INVENTORY.versions if reach(v) == reach(version)]


def test_versions_union_and_errors() -> None:
    teams = Versions(">=2.0,<2.16 || >=3")
    assert teams.contains("2.15.1") and not teams.contains("2.16") and not teams.contains("2.20.2")
    assert teams.contains("3.1.0") and str(teams) == ">=2.0,<2.16 || >=3"
    assert Versions("").contains("1.0") and not Versions("")
    with pytest.raises(ValueError, match="invalid version range"):
        Versions(">=2.0 || bogus")


@pytest.mark.parametrize("version", INVENTORY.versions)
def test_every_release_is_told_from_its_routes(version: str) -> None:
    """In rounds of PROBE_ROUND probes, each chosen to split what the others of its round leave: a concurrent run
    asks each round side by side; one at a time asks the same probes."""
    rounds: list[list[str]] = []

    def side_by_side(answer, paths: list[str]) -> list[bool | None]:
        rounds.append(paths)
        return [answer(p) for p in paths]

    found = fingerprint(INVENTORY, _server(version))
    assert found is not None
    assert found.candidates == _indistinguishable(version), found.probes
    assert Versions(found.range).contains(version)
    assert all(not Versions(found.range).contains(v) for v in INVENTORY.versions if v not in found.candidates)
    assert len(found.probes) <= 2 * PROBE_ROUND
    assert fingerprint(INVENTORY, _server(version), ask=side_by_side) == found
    assert sum(map(len, rounds)) == len(found.probes) and all(1 <= len(r) <= PROBE_ROUND for r in rounds)


def test_ranges_of_the_newest_releases() -> None:
    assert fingerprint(INVENTORY, _server("3.1.0")).range == ">=3.1.0,<3.2"
    assert fingerprint(INVENTORY, _server("2.20.2")).range == ">=2.19.0,<3.0.0"
    assert fingerprint(INVENTORY, _server("3.0.1")).candidates == ["3.0.0", "3.0.1", "3.0.2", "3.0.3"]


def test_unknown_answers_are_skipped_and_one_wrong_answer_is_outvoted() -> None:
    asked: list[str] = []

    def flaky(path: str) -> bool | None:
        asked.append(path)
        return None if len(asked) % 3 == 1 else _server("3.1.0")(path)

    assert "3.1.0" in fingerprint(INVENTORY, flaky).candidates
    assert fingerprint(INVENTORY, lambda path: None) is None


def test_detected_applies_when_a_candidate_is_in_range() -> None:
    d = Detected(["2.10.0", "2.10.1"], ">=2.10.0,<2.11", "test")
    assert d.version == "2.10.1"
    assert d.applies(Versions(">=2.10,<2.10.1")) and not d.applies(Versions(">=3"))


def _fake_run(version: str, *, extra_404_json: bool = False) -> Session:
    """A fake HTTP server of `version` for the detector: HTML 404 where no route is, 401 elsewhere."""
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api")
        if path == "/heartbeat":
            return httpx.Response(200, json={"ok": True})
        if version in INVENTORY.versions_reaching(path):
            return httpx.Response(401, json={"error": {"message": "Unauthorized", "code": "unauthorized",
                                                       "status": 401}})
        return httpx.Response(404, html="<!DOCTYPE html><html>not found</html>")

    session = Session(options=Options(target=Target(url="http://umami.test"), specs_dir=DEFAULT_SPECS,
                                      results_path=Path("/dev/null")), specs=bundled_specs(), known=[])
    session.client.http = httpx.Client(base_url=session.client.target.api_base, transport=httpx.MockTransport(handler))
    return session


def test_detect_against_a_fake_server_without_api_version() -> None:
    session = _fake_run("3.1.0")
    detected = session.detect(session.client.probe())
    assert detected.range == ">=3.1.0,<3.2" and detected.source.startswith("route fingerprint")
    assert all(method == "GET" for method, _ in session.client.requests)


def test_version_flag_overrides() -> None:
    session = _fake_run("3.1.0")
    session.options = dataclasses.replace(session.options, version="2.20.2")
    assert session.detect(None).candidates == ["2.20.2"] and session.detect(None).source == "--umami-version"


def test_probe_paths_fill_every_parameter() -> None:
    assert "{" not in probe_path("/teams/{teamId}/users/{userId}")


def test_recorded_paths_alone_tell_the_version() -> None:
    """A recording's exchanges (path reached a route or not) tell the version without any probe answered."""
    observed = [(probe_path(t), "2.20.2" in INVENTORY.versions_reaching(probe_path(t))) for t in INVENTORY.templates]
    found = fingerprint(INVENTORY, lambda path: None, observed=observed)
    assert found is not None and found.candidates == _indistinguishable("2.20.2")
    assert "recorded paths" in found.source


def test_a_release_told_by_range_is_named_by_its_range() -> None:
    """Issue 27: a 3.0.0 told by the route fingerprint (3.0.0-3.0.3) was shown as "Umami 3.0.3"."""
    told = Detected(["3.0.3", "3.0.0", "3.0.2", "3.0.1"], ">=3.0.0,<3.1.0", "route fingerprint")
    assert told.release == "3.0.0–3.0.3" and told.version == "3.0.3"  # the newest one's shapes still apply
    assert Detected.exact("2.10.0", "server /api/version").release == "2.10.0"

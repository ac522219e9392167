"""The cleanup's delete order per release (cleanup.LEFT_BEHIND): children that a release's deleteWebsite leaves
behind are deleted first, users after their websites. Unit tests against the in-memory model of each release
(tests/fake_umami.py, its flags read from that release's source) and the shared 2.20.2 recording."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.cleanup import deletion_notes, find_leftovers, remove, removal_order
from conformance.client import Credential
from conformance.execute import _execute
from conformance.items import Item, ItemResult
from conformance.options import Options
from conformance.objects import Created
from conformance.sandbox import Sandbox
from conformance.session import Session
from conformance.versions import Detected

from conftest import bundled_specs, shared_recording
from fake_umami import FakeUmami

ADMIN = Credential.bearer("admin-token-0123456789")
PREFIX = "ucf-20260101t000000-abcd-"
ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SEGMENTS_BLOCK = ["2.19.0", "2.20.0", "2.20.2", "3.0.0", "3.0.1"]  # deleteWebsite leaves segments
SEGMENTS_GO = ["3.0.2", "3.0.3", "3.1.0"]  # deleteWebsite removes them (deleteUser still does not)


def _deletes(fake: FakeUmami) -> list[str]:
    return [path.removeprefix("/api") for method, path, _ in fake.log if method == "DELETE"]


@pytest.mark.parametrize("versions, first", [
    (["2.10.0"], False), (["2.18.1"], False),  # no segment table yet (migration 11_add_segment is 2.19.0's)
    *[([v], True) for v in SEGMENTS_BLOCK],
    *[([v], False) for v in SEGMENTS_GO],
    (["2.20.2", "2.18.0"], True),  # a range: any release where they block decides
    (None, True),  # not known (`umami-conformance cleanup`): the careful order
])
def test_the_removal_order_per_release(versions: list[str] | None, first: bool) -> None:
    order = removal_order(versions)
    assert order[-4:] == ("report", "website", "team", "user"), "websites before their team, users last"
    assert order[:-4] == (("segment",) if first else ())
    notes = " ".join(deletion_notes(versions))
    assert ("segments before their website" in notes) is first
    since_2_19 = versions is None or any(not v.startswith(("2.10", "2.18")) for v in versions)
    assert ("users after their websites" in notes) is since_2_19


def _site_with_segment(fake: FakeUmami) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    user = fake.add_user(f"{PREFIX}user")
    site = fake.add_website(f"{PREFIX}website-1", user_id=user["id"])
    return user, site, fake.add_segment(site["id"], f"{PREFIX}segment")


@pytest.mark.parametrize("version", SEGMENTS_BLOCK + SEGMENTS_GO)
def test_a_website_with_a_segment_and_its_owner_are_removed_on_every_release(tmp_path: Path, version: str) -> None:
    """2.19.0-3.0.1: the segment first (its own DELETE), then the website, then the user. 3.0.2+: the website's
    delete removes the segment, and the user still goes after its website (deleteUser would leave the segment)."""
    fake = FakeUmami.release(version)
    user, site, segment = _site_with_segment(fake)
    sandbox = Sandbox(fake.client(), ADMIN, PREFIX, tmp_path / "ledger.json", versions=[version])
    sandbox.adopt("user", user)
    sandbox.adopt("website", site)
    sandbox.adopt("segment", segment)  # as the website-segments/create-segment item records it (creates: segment)
    assert sandbox.created[-1] == Created("segment", segment["id"], f"{PREFIX}segment", website=site["id"])
    assert sandbox.cleanup() == []
    assert fake.websites == {} and fake.users == {} and fake.segments == {}
    deletes = _deletes(fake)
    segment_delete = f"/websites/{site['id']}/segments/{segment['id']}"
    if version in SEGMENTS_BLOCK:
        assert deletes == [segment_delete, f"/websites/{site['id']}", f"/users/{user['id']}"]
    else:
        assert deletes == [f"/websites/{site['id']}", f"/users/{user['id']}"]


@pytest.mark.parametrize("version", ["2.20.2", "3.0.1", "3.1.0"])
def test_without_the_segment_in_the_ledger_the_model_keeps_what_the_release_refuses(tmp_path: Path,
                                                                                     version: str) -> None:
    """The control (the ledger before `creates: segment`): on 2.20.2 and 3.0.1 the website and its owner stay
    (DELETE 500, as the 2.20.2 recording shows); on 3.1.0 deleteWebsite removes the segment, so nothing stays."""
    fake = FakeUmami.release(version)
    user, site, _ = _site_with_segment(fake)
    objects = [Created("user", user["id"], user["username"]), Created("website", site["id"], site["name"], user["id"])]
    residue = {r["kind"]: r["reason"] for r in remove(fake.client(), ADMIN, objects, versions=[version])}
    if version == "3.1.0":
        assert residue == {}
    else:
        assert residue == {"website": f"DELETE /websites/{site['id']} answered HTTP 500; deleting its owner user: "
                                      f"DELETE /users/{user['id']} answered HTTP 500",
                           "user": f"DELETE /users/{user['id']} answered HTTP 500"}


def test_on_3_1_0_a_user_deleted_before_its_website_would_stay(tmp_path: Path) -> None:
    """Why users go last on 3.1.0 too: its deleteUser deletes the user's websites without their segments."""
    fake = FakeUmami.release("3.1.0")
    user, site, _ = _site_with_segment(fake)
    assert fake.client().request("DELETE", f"/users/{user['id']}", auth=ADMIN).response.status_code == 500
    assert remove(fake.client(), ADMIN, [Created("user", user["id"], user["username"]),
                                         Created("website", site["id"], site["name"], user["id"])],
                  versions=["3.1.0"]) == []


def test_on_2_10_0_nothing_is_deleted_first_and_no_segment_route_is_asked(tmp_path: Path) -> None:
    """2.10.x has no segments and cannot delete websites (the kept set): the cleanup sends no segment request."""
    fake = FakeUmami.release("2.10.0")
    user = fake.add_user(f"{PREFIX}user")
    site = fake.add_website(f"{PREFIX}website", user_id=user["id"])
    residue = remove(fake.client(), ADMIN, [Created("website", site["id"], site["name"], user["id"])],
                     versions=["2.10.0"])
    assert [r["kind"] for r in residue] == ["website"]
    assert not any("/segments" in path for _, path, _ in fake.log)


def test_a_segment_left_to_its_website_is_named_with_the_website_s_answer() -> None:
    """3.0.2+: a segment is not deleted on its own; when its website stays, so does it, and the reason says why."""
    fake = FakeUmami.release("3.1.0")
    fake.deletes_websites = False  # a website that stays for another reason
    _, site, segment = _site_with_segment(fake)
    residue = remove(fake.client(), ADMIN, [Created("website", site["id"], site["name"]),
                                            Created("segment", segment["id"], segment["name"], website=site["id"])],
                     versions=["3.1.0"])
    assert {r["kind"]: r["reason"] for r in residue} == {
        "website": f"DELETE /websites/{site['id']} answered HTTP 500",
        "segment": f"left to its website's delete, which removes it on this release: DELETE /websites/{site['id']} "
                   "answered HTTP 500"}


def test_cleanup_finds_a_killed_run_s_segments_and_removes_them_first() -> None:
    """`umami-conformance cleanup` (version not known): the segments of the runs' websites are found by their
    run prefix and deleted before their website, also on 2.20.2, where the website would refuse otherwise."""
    fake = FakeUmami.release("2.20.2")
    user, site, segment = _site_with_segment(fake)
    found = find_leftovers(fake.client(), ADMIN, None)
    assert {(o.kind, o.id) for o in found} == {("user", user["id"]), ("website", site["id"]),
                                              ("segment", segment["id"])}
    assert remove(fake.client(), ADMIN, found) == []
    assert fake.websites == {} and fake.users == {} and fake.segments == {}


def _run(tmp_path: Path, fake: FakeUmami, version: str) -> Session:
    specs = bundled_specs()
    session = Session(options=Options(target=fake.client().target, specs_dir=specs.root,
                                      results_path=tmp_path / "results.json"), specs=specs, known=[])
    session.client = fake.client()
    session.detected = Detected.exact(version, "--umami-version")
    session.sandbox = Sandbox(session.client, ADMIN, PREFIX, tmp_path / "ledger.json", versions=session.server_versions)
    session.sandbox.owner = ("owner", Credential.bearer("owner-token-0123456789"))
    session.credentials.update(admin=ADMIN, user=session.sandbox.owner[1])
    session.context = {"prefix": PREFIX}
    return session


@pytest.mark.parametrize("version", ["2.20.2", "3.1.0"])
def test_the_create_segment_item_s_segment_is_recorded_and_its_target_removed(tmp_path: Path, version: str) -> None:
    """The spec item (website-segments/create-segment, `target: website`, `creates: segment`) through the engine:
    the ledger records the segment under its target website, and the cleanup leaves nothing."""
    fake = FakeUmami.release(version)
    session = _run(tmp_path, fake, version)
    endpoint = next(e for e in session.specs.endpoints if e.id == "website-segments/create-segment")
    case = next(c for c in endpoint.cases if c.name == "create")
    item = Item("website-segments/create-segment[user-create]", endpoint, case, "user")
    _execute(item, session.execution(), ItemResult(item, session.server_version))
    (target,) = fake.websites.values()
    (segment,) = fake.segments.values()
    assert [(o.kind, o.id, o.website) for o in session.sandbox.created] == [
        ("website", target["id"], None), ("segment", segment["id"], target["id"])]
    assert json.loads(session.sandbox.ledger.read_text())["created"][-1]["website"] == target["id"]
    assert session.sandbox.cleanup() == [] and fake.websites == {} and fake.segments == {}


def _cleanup_of(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """From a recording: websites created (id -> owner), users created (id -> username), segments created (id ->
    website), and the answers to the cleanup's DELETEs (path -> status)."""
    seen: dict[str, dict[str, Any]] = {"websites": {}, "users": {}, "segments": {}, "cleanup": {}}
    for e in entries:
        method, status = e["request"]["method"], e["response"]["status"]
        path = e["request"]["url"].split("?")[0].partition("/api")[2]
        body = e["response"]["content"].get("text") or ""
        if (method, path, status) == ("POST", "/websites", 200):
            seen["websites"][json.loads(body)["id"]] = json.loads(body).get("userId")
        elif (method, path, status) == ("POST", "/users", 200):
            seen["users"][json.loads(body)["id"]] = json.loads(body)["username"]
        elif (method, status) == ("POST", 200) and re.fullmatch(f"/websites/{ID}/segments", path):
            seen["segments"][json.loads(body)["id"]] = json.loads(body)["websiteId"]
        elif method == "DELETE" and e.get("_item") == "cleanup":
            seen["cleanup"][path] = status
    return seen


def test_the_2_20_2_recording_shows_segments_block_and_the_new_order_clears_them() -> None:
    """umami-2.20.2-full.har.gz (main at fa3e78f, before this order): the cleanup's DELETE answered 500 for exactly
    the websites the create-segment items put a segment on, and for their owner, and 200 for everything else. The
    2.20.2 model, given the recording's objects, refuses the same with that ledger; with the segments recorded
    and deleted first, nothing remains."""
    seen = _cleanup_of(json.loads(gzip.decompress(
        shared_recording("umami-2.20.2-full.har.gz").read_bytes()))["log"]["entries"])
    refused = {path for path, status in seen["cleanup"].items() if status != 200}
    with_segments = set(seen["segments"].values())
    owners = {seen["websites"][w] for w in with_segments}
    assert with_segments and refused == {f"/websites/{w}" for w in with_segments} | {f"/users/{u}" for u in owners}
    assert all(status == 500 for path, status in seen["cleanup"].items() if path in refused)

    def model() -> tuple[FakeUmami, list[Created]]:
        fake = FakeUmami.release("2.20.2")
        for user_id, name in seen["users"].items():
            fake.users[user_id] = {"id": user_id, "username": name, "role": "user"}
        for site_id, owner in seen["websites"].items():
            fake.websites[site_id] = {"id": site_id, "name": site_id, "domain": "", "userId": owner, "teamId": None}
        for segment_id, site_id in seen["segments"].items():
            fake.segments[segment_id] = {"id": segment_id, "websiteId": site_id, "type": "segment", "name": ""}
        objects = [Created("user", u, n) for u, n in seen["users"].items()] + [
            Created("website", w, w, owner=o) for w, o in seen["websites"].items()]
        return fake, objects

    fake, objects = model()  # the ledger of that run: no segments in it
    residue = remove(fake.client(), ADMIN, objects, versions=["2.20.2"])
    assert {f"/{r['kind']}s/{r['id']}" for r in residue} == refused
    fake, objects = model()  # the ledger now: the create-segment items' segments recorded
    objects += [Created("segment", g, "", website=w) for g, w in seen["segments"].items()]
    assert remove(fake.client(), ADMIN, objects, versions=["2.20.2"]) == []
    assert fake.websites == {} and fake.users == {} and fake.segments == {}
    deletes = _deletes(fake)
    for segment_id, site_id in seen["segments"].items():
        assert deletes.index(f"/websites/{site_id}/segments/{segment_id}") < deletes.index(f"/websites/{site_id}")
    assert max(i for i, p in enumerate(deletes) if p.startswith("/websites/")) < min(
        i for i, p in enumerate(deletes) if p.startswith("/users/"))


@pytest.mark.parametrize("version, segments_first, users_last", [
    ("2.18.1", False, False), ("2.20.2", True, True), ("3.0.1", True, True), ("3.1.0", False, True)])
def test_the_cleanup_line_says_the_order_this_release_needs(tmp_path: Path, version: str, segments_first: bool,
                                                            users_last: bool) -> None:
    session = _run(tmp_path, FakeUmami.release(version), version)
    session.created, session.residue = 3, []
    line = session.cleanup_summary()
    assert line.startswith("cleanup: removed 3 of the 3 object(s) the run created") and line.endswith(
        "; nothing remains")
    assert ("[segments before their website: its delete leaves them and answers 500 on Umami >=2.19.0,<3.0.2"
            in line) is segments_first
    assert ("users after their websites: deleteUser leaves their websites' segment and revenue rows on Umami "
            ">=2.19.0]" in line) is users_last

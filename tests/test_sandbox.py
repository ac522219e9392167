"""The sandbox's seeding plan per version and its cleanup (unit tests against an in-memory model, no network)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from conformance.client import Credential
from conformance.model import Case
from conformance.execute import _execute
from conformance.items import Item, ItemResult
from conformance.options import Options
from conformance.cleanup import find_leftovers, presence, remove, remove_kept, write_ledger
from conformance.objects import KEEP_MARK, Created, is_kept, new_prefix
from conformance.sandbox import Sandbox
from conformance.seed import SEED_FRESH_SECONDS, SEED_IPS, seed_plan, seed_requests
from conformance.session import Session
from conformance.versions import Detected

from fake_umami import FakeUmami
from conftest import bundled_specs

ADMIN = Credential.bearer("admin-token-0123456789")


def _sandbox(fake: FakeUmami, tmp_path: Path, versions: list[str] | None) -> Sandbox:
    return Sandbox(fake.client(), ADMIN, "ucf-20260101t000000-abcd-", tmp_path / "ledger.json", versions=versions)


@pytest.mark.parametrize("versions, revenue", [
    (["2.10.0"], True),
    (["2.18.1", "2.18.0"], True),  # no revenue table yet (it arrives with 2.19.0's migration 13_add_revenue)
    (["2.19.0"], False),
    (["2.20.2"], False),
    (["3.0.0"], False),
    (["3.0.1"], False),
    (["3.0.2"], True),  # deleteWebsite removes revenue rows since 3.0.2
    (["3.1.0"], True),
    (["2.20.2", "2.20.1", "2.20.0", "2.19.0", "2.18.1", "2.18.0"], False),  # a range: any blocked release decides
    (None, False),  # version not known: the careful plan
])
def test_seed_plan_per_version(versions: list[str] | None, revenue: bool) -> None:
    plan = seed_plan(versions)
    assert plan.revenue is revenue
    assert (plan.reason is None) is revenue


@pytest.mark.parametrize("versions", [["2.10.0"], ["2.20.2"], ["3.1.0"]])
def test_seed_sends_revenue_only_where_the_plan_allows(tmp_path: Path, versions: list[str]) -> None:
    fake = FakeUmami(revenue_table=True)
    sandbox = _sandbox(fake, tmp_path, versions)
    site = fake.add_website("ucf-20260101t000000-abcd-site", user_id="u")
    sandbox.seed(site)
    revenue_events = [b for b in fake.sent if (b["payload"].get("data") or {}).get("currency")]
    allowed = seed_plan(versions).revenue
    assert bool(revenue_events) is allowed
    assert sandbox.seeded["revenue"] == len(revenue_events)
    assert sandbox.seeded["events"] == len([b for b in fake.sent if b["payload"].get("name")])
    if allowed:
        assert "skipped" not in sandbox.seeded and sandbox.not_seeded(["revenue"]) is None
    else:
        why = sandbox.seeded["skipped"]["revenue"]
        assert "2.20.2" in why and "undeletable" in why
        assert sandbox.not_seeded(["revenue"]).startswith("no revenue seeded (")
    assert sandbox.not_seeded([]) is None


@pytest.mark.parametrize("version", ["2.19.0", "2.20.2", "3.0.1", "3.0.2", "3.1.0", "2.18.0"])
def test_the_seeded_website_and_its_owner_stay_deletable(tmp_path: Path, version: str) -> None:
    """On the model of a server that can delete websites, where revenue rows block deletion on 2.19.0-3.0.1
    (and nowhere else): the planned seed leaves the website and its owner removable."""
    blocked = version.startswith(("2.19", "2.20", "3.0.0", "3.0.1"))
    fake = FakeUmami(revenue_table=not version.startswith("2.18"), revenue_blocks=blocked)
    sandbox = _sandbox(fake, tmp_path, [version])
    user = fake.add_user("ucf-20260101t000000-abcd-user")
    site = fake.add_website("ucf-20260101t000000-abcd-site", user_id=user["id"])
    sandbox.seed(site)
    objects = [Created("user", user["id"], user["username"]), Created("website", site["id"], site["name"], user["id"])]
    assert remove(sandbox.client, ADMIN, objects) == []
    assert fake.websites == {} and fake.users == {}


def test_the_old_seed_made_the_website_and_its_owner_undeletable_on_the_model(tmp_path: Path) -> None:
    """The control: revenue seeded on the 2.20.2 model (the seed of a 3.1.0 server) is what blocks both."""
    fake = FakeUmami(revenue_table=True, revenue_blocks=True)
    sandbox = _sandbox(fake, tmp_path, ["3.1.0"])
    user = fake.add_user("ucf-20260101t000000-abcd-user")
    site = fake.add_website("ucf-20260101t000000-abcd-site", user_id=user["id"])
    sandbox.seed(site)
    objects = [Created("user", user["id"], user["username"]), Created("website", site["id"], site["name"], user["id"])]
    residue = {r["kind"]: r["reason"] for r in remove(sandbox.client, ADMIN, objects)}
    assert residue["website"] == (f"DELETE /websites/{site['id']} answered HTTP 500; deleting its owner user: "
                                  f"DELETE /users/{user['id']} answered HTTP 500")
    assert residue["user"] == f"DELETE /users/{user['id']} answered HTTP 500"
    assert not any("still listed" in r for r in residue.values())


def test_a_failed_delete_is_reported_with_its_status_and_a_gone_object_is_not_residue(tmp_path: Path) -> None:
    fake = FakeUmami(deletes_websites=False)  # 2.10.0: DELETE /websites/{id} answers 500
    client = fake.client()
    kept = fake.add_website("ucf-20260101t000000-abcd-site", user_id="someone-else")
    gone = Created("website", "6f1d0c8e-0000-4000-8000-000000000001", "ucf-20260101t000000-abcd-gone")
    gone_report = Created("report", "6f1d0c8e-0000-4000-8000-000000000002", "ucf-20260101t000000-abcd-report")
    residue = remove(client, ADMIN, [Created("website", kept["id"], kept["name"]), gone, gone_report])
    # The unknown website answers DELETE 500 and GET 200 null: gone, not residue. The unknown report answers 500
    # to both: it cannot be told, so it is listed with both statuses rather than claimed removed.
    assert [(r["kind"], r["reason"]) for r in residue] == [
        ("website", f"DELETE /websites/{kept['id']} answered HTTP 500"),
        ("report", f"DELETE /reports/{gone_report.id} answered HTTP 500; GET /reports/{gone_report.id} answered "
                   "HTTP 500, so it may remain")]


def test_an_object_a_test_item_deleted_is_not_residue_unless_it_is_still_there(tmp_path: Path) -> None:
    fake = FakeUmami()
    sandbox = _sandbox(fake, tmp_path, ["2.10.0"])
    gone = Created("report", "6f1d0c8e-0000-4000-8000-000000000002", "ucf-20260101t000000-abcd-report-1")
    fake.reports["6f1d0c8e-0000-4000-8000-000000000003"] = {"id": "6f1d0c8e-0000-4000-8000-000000000003"}
    kept = Created("report", "6f1d0c8e-0000-4000-8000-000000000003", "ucf-20260101t000000-abcd-report-2")
    sandbox.created += [gone, kept, gone]  # recorded twice (a replay answers every create with one object)
    sandbox.deleted(gone.id)  # its item's DELETE succeeded: 2.10.0 answers 500 to DELETE and GET of it now
    sandbox.deleted(kept.id)  # a server that answered success but kept it
    assert sandbox.cleanup() == []
    assert [p for m, p, _ in fake.log if m == "GET" and p == f"/api/reports/{gone.id}"] == [f"/api/reports/{gone.id}"]
    assert ("DELETE", f"/api/reports/{gone.id}", 500) not in fake.log
    assert ("DELETE", f"/api/reports/{kept.id}", 200) in fake.log and not fake.reports


def test_websites_go_before_their_team_and_an_orphan_is_named(tmp_path: Path) -> None:
    fake = FakeUmami(deletes_websites=False)
    client = fake.client()
    team = fake.add_team("ucf-20260101t000000-abcd-team")
    site = fake.add_website("ucf-20260101t000000-abcd-team-site", team_id=team["id"])
    residue = remove(client, ADMIN, [Created("team", team["id"], team["name"]),
                                     Created("website", site["id"], site["name"])])
    deletes = [path for method, path, _ in fake.log if method == "DELETE"]
    assert deletes == [f"/api/websites/{site['id']}", f"/api/teams/{team['id']}"]
    assert len(residue) == 1 and residue[0]["name"] == "ucf-20260101t000000-abcd-team-site"
    assert residue[0]["reason"].startswith(f"DELETE /websites/{site['id']} answered HTTP 500; orphaned: it has no "
                                           "user and no team")


def test_cleanup_finds_orphans_through_the_ledger_where_websites_are_listed_per_user(tmp_path: Path) -> None:
    fake = FakeUmami(lists_websites_per_user=True)  # 2.16-2.20: /admin/websites needs userId
    client = fake.client()
    user = fake.add_user("ucf-20260101t000000-abcd-user")
    own = fake.add_website("ucf-20260101t000000-abcd-site", user_id=user["id"])
    orphan = fake.add_website("ucf-20260101t000000-abcd-team-site", team_id="a-team-that-is-gone")
    other = fake.add_website("production-site", user_id="another-user")
    ledger = [Created("website", orphan["id"], "ucf-20260101t000000-abcd-team-site"),
              Created("website", "6f1d0c8e-0000-4000-8000-000000000003", "ucf-20260101t000000-abcd-gone")]
    found = find_leftovers(client, ADMIN, "ucf-20260101t000000-abcd-", ledger)
    assert {(o.kind, o.id) for o in found} == {("user", user["id"]), ("website", own["id"]),
                                              ("website", orphan["id"])}
    assert other["id"] in fake.websites
    assert remove(client, ADMIN, found) == [] and set(fake.websites) == {other["id"]}


def test_the_ledger_keeps_only_what_remains(tmp_path: Path) -> None:
    fake = FakeUmami()
    sandbox = _sandbox(fake, tmp_path, ["3.1.0"])
    sandbox._record(Created("website", "a", "ucf-20260101t000000-abcd-a"))
    sandbox._record(Created("website", "b", "ucf-20260101t000000-abcd-b"))
    sandbox.keep_in_ledger({"b"})
    assert [o["id"] for o in json.loads(sandbox.ledger.read_text())["created"]] == ["b"]
    sandbox.keep_in_ledger(set())
    assert not sandbox.ledger.exists()


def _run_with(tmp_path: Path, fake: FakeUmami, version: str, revenue_seeded: bool) -> Session:
    specs = bundled_specs()
    session = Session(options=Options(target=fake.client().target, specs_dir=specs.root,
                                      results_path=tmp_path / "results.json"), specs=specs, known=[])
    session.client = fake.client()
    session.detected = Detected.exact(version, "--umami-version")
    session.sandbox = _sandbox(fake, tmp_path, session.server_versions)
    session.sandbox.seeded = {"revenue": 2} if revenue_seeded else {"revenue": 0, "skipped": {"revenue": "a reason"}}
    session.credentials["admin"] = ADMIN
    return session


@pytest.mark.parametrize("revenue_seeded", [True, False])
def test_a_case_schema_that_needs_revenue_is_not_applied_without_it(tmp_path: Path, revenue_seeded: bool) -> None:
    fake = FakeUmami()
    session = _run_with(tmp_path, fake, "3.1.0", revenue_seeded)
    endpoint = next(e for e in session.specs.endpoints if e.id == "admin/users")
    first_page = next(c for c in endpoint.cases if c.name == "first-page")  # case schema: a non-empty list
    case = replace(first_page, query={}, needs=["revenue"])
    item = Item("admin/users[admin-first-page]", endpoint, case, "admin")
    result = ItemResult(item, session.server_version)
    fake.users.clear()  # an empty list: the case schema (non-empty-list) fails when applied
    findings, checked, _ = _execute(item, session.execution(), result)
    if revenue_seeded:
        assert findings and findings[0].cls == "value-changed" and result.reason is None
    else:
        assert findings == [] and result.reason == "case schema not applied: no revenue seeded (a reason)"


def test_security_runs_on_a_body_no_shape_of_the_version_holds(tmp_path: Path) -> None:
    fake = FakeUmami()
    session = _run_with(tmp_path, fake, "2.20.2", False)
    fake.add_user("someone")["password"] = "$2b$10$" + "x" * 53
    endpoint = next(e for e in session.specs.endpoints if e.id == "admin/users")
    item = Item("admin/users[admin-plain]", endpoint, Case(name="plain", line=1), "admin")
    findings, _, _ = _execute(item, session.execution(), ItemResult(item, session.server_version))
    assert findings[0].cls == "security" and findings[0].json_path == "$.data[*].password"
    assert "$2b$" not in json.dumps([f.as_dict() for f in findings])


def _sandbox_run(fake: FakeUmami, tmp_path: Path, versions: list[str], n: int) -> Sandbox:
    """What one run does with websites and teams: sandbox website with a share link and seed, team with its
    website and seed, three target items; then its cleanup (which must leave no residue)."""
    sandbox = Sandbox(fake.client(), ADMIN, f"ucf-20260101t00000{n}-abcd-", tmp_path / f"ledger-{n}.json",
                      versions=versions)
    sandbox.owner = ("owner", Credential.bearer("owner-token-0123456789"))
    site = sandbox.create_website("site", *sandbox.owner, share_id="0123456789abcdef")
    sandbox.seed(site)
    sandbox.team(None)  # seeds the team website; the fake cannot create users: no view-only member
    for _ in range(3):
        sandbox.target("website")
    assert sandbox.cleanup() == []
    return sandbox


def test_where_websites_cannot_be_deleted_runs_reuse_one_kept_set(tmp_path: Path) -> None:
    """2.10.x: three runs leave the same three websites and one team as the first, seeded once."""
    fake = FakeUmami(deletes_websites=False)
    sets, sent = [], []
    for n in range(3):
        sandbox = _sandbox_run(fake, tmp_path, ["2.10.0"], n)
        sets.append({(w["id"], w["name"]) for w in fake.websites.values()} | set(fake.teams))
        sent.append(len(fake.sent))
        assert {k["name"] for k in sandbox.kept.values()} == {
            "ucf-keep-site", "ucf-keep-team", "ucf-keep-team-site", "ucf-keep-target"}
        assert all(k["reused"] is (n > 0) for k in sandbox.kept.values())
        traffic = {k["name"]: k.get("traffic") for k in sandbox.kept.values() if k["kind"] == "website"}
        assert traffic == {"ucf-keep-site": "reused" if n else "seeded", "ucf-keep-team-site": "reused" if n else
                           "seeded", "ucf-keep-target": None}
        assert sandbox.seeded["pageviews"] == 14 and sandbox.seeded.get("reused", 0) == (2 if n else 0)
        assert not sandbox.ledger.exists()
    assert len(sets[0]) == 4 and sets[0] == sets[1] == sets[2]
    assert sent == [42, 42, 42], "the kept websites were seeded once"
    # The one seed is the first run's: its visitors carry that run's prefix (issue 25: a seed makes new sessions).
    assert {b["payload"]["id"].split("visitor")[0] for b in fake.sent} == {"ucf-20260101t000000-abcd-"}


def test_the_seed_window_holds_this_seed_and_no_earlier_one(tmp_path: Path) -> None:
    """`${website.seededSince}`: a seed sent now begins a minute ago at most (a server clock behind ours); a reused
    seed is of the last SEED_FRESH_SECONDS, and the seed before it older still (seeds are that far apart)."""
    fake = FakeUmami(deletes_websites=False)
    for n in range(2):
        sandbox = Sandbox(fake.client(), ADMIN, f"ucf-20260101t00000{n}-abcd-", tmp_path / f"l{n}.json",
                          versions=["2.10.0"])
        sandbox.owner = ("owner", Credential.bearer("owner-token-0123456789"))
        site = sandbox.create_website("site", *sandbox.owner)
        sandbox.seed(site)
        since = time.time() * 1000 - site["seededSince"]
        fresh = SEED_FRESH_SECONDS * 1000
        assert (fresh <= since < fresh + 5000) if n else (60_000 <= since < 65_000), (n, since)


def test_every_seed_makes_sessions_of_its_own() -> None:
    """Issue 25: realtime lists the sessions created in its window, so a seed must not reuse an earlier seed's
    sessions. Before 2.14 a session is website + hostname + IP + user agent (the id is ignored): two seeds differ
    in the user agent as well as in the visitor ids, and within one seed every visitor has one agent."""
    site, plan = {"id": "w", "domain": "d.example"}, seed_plan(["2.10.0"])
    first, second = seed_requests(site, "ucf-20261207t000000-aaaa-", plan), seed_requests(
        site, "ucf-20261208t000000-bbbb-", plan)
    agents = [{h["User-Agent"] for _, h in seed} for seed in (first, second)]
    assert len(agents[0]) == len(agents[1]) == 1 and agents[0] != agents[1]
    assert all("Chrome/124.0." in agent and "bot" not in agent.lower() for agent in agents[0] | agents[1])
    ids = [{b["payload"]["id"] for b, _ in seed} for seed in (first, second)]
    assert len(ids[0]) == len(SEED_IPS) and not ids[0] & ids[1]


def test_where_websites_can_be_deleted_nothing_is_kept(tmp_path: Path) -> None:
    fake = FakeUmami()
    for n in range(2):
        sandbox = _sandbox_run(fake, tmp_path, ["3.1.0"], n)
        assert sandbox.kept == {} and fake.websites == {} and fake.teams == {}
    assert len(fake.sent) == 2 * 2 * len(seed_requests({"id": "x", "domain": "d"}, "", seed_plan(["3.1.0"])))


def test_kept_objects_are_known_by_their_domain_and_owner(tmp_path: Path) -> None:
    """A renamed kept target is still the kept target; another user's website of the same name is not this
    user's (an item of the user role needs its own), so one more is made for this owner."""
    fake = FakeUmami(deletes_websites=False)
    mine = fake.add_website("renamed-by-an-item", user_id="owner")
    mine["domain"] = "ucf-keep-target.example.com"
    theirs = fake.add_website("ucf-keep-site", user_id="someone-else")
    theirs["domain"] = "ucf-keep-site.example.com"
    sandbox = _sandbox(fake, tmp_path, ["2.10.0"])
    sandbox.owner = ("owner", Credential.bearer("owner-token-0123456789"))
    assert sandbox.target("website")["id"] == mine["id"]
    made = sandbox.create_website("site", *sandbox.owner)
    assert made["id"] not in (mine["id"], theirs["id"]) and made["userId"] == "owner"
    assert "note" not in sandbox.kept[made["id"]] and "note" not in sandbox.kept[mine["id"]]


def test_a_run_without_a_regular_user_reuses_another_owners_kept_set(tmp_path: Path) -> None:
    """Issue 27: a run without role users after one with them made a second kept set. Admin owns such a run's
    objects and may use any website: it finds the kept set server-wide (the admin list) and makes nothing."""
    fake = FakeUmami(deletes_websites=False)
    first = _sandbox(fake, tmp_path, ["2.10.0"])
    first.owner = ("owner", Credential.bearer("owner-token-0123456789"))
    site, target = first.create_website("site", *first.owner, share_id="0123456789abcdef"), first.target("website")
    before = dict(fake.websites)
    second = Sandbox(fake.client(), ADMIN, "ucf-20260101t000009-abcd-", tmp_path / "l9.json", versions=["2.10.0"])
    second.owner = ("admin-id", ADMIN)
    assert second.create_website("site", *second.owner)["id"] == site["id"]
    assert second.target("website")["id"] == target["id"] and fake.websites == before
    assert all(k["reused"] and k["note"].startswith("another owner's") for k in second.kept.values())
    assert ("GET", "/api/admin/websites", 200) in fake.log


def test_a_gone_report_is_not_residue_although_its_get_and_delete_answer_500(tmp_path: Path) -> None:
    """2.10.0 answers 500 to GET and DELETE of an unknown report: it is looked for among its website's reports."""
    fake = FakeUmami()
    client = fake.client()
    site = fake.add_website("ucf-20260101t000000-abcd-site", user_id="owner")
    there = {"id": "6f1d0c8e-0000-4000-8000-00000000000a", "websiteId": site["id"], "name": "r"}
    fake.reports[there["id"]] = there
    gone = Created("report", "6f1d0c8e-0000-4000-8000-00000000000b", "ucf-20260101t000000-abcd-report",
                   website=site["id"])
    gone_with_site = Created("report", "6f1d0c8e-0000-4000-8000-00000000000c", "r", website="no-such-site")
    assert presence(client, ADMIN, gone)[0] is False and presence(client, ADMIN, gone_with_site)[0] is False
    assert presence(client, ADMIN, Created("report", there["id"], "r", website=site["id"]))[0] is True
    assert remove(client, ADMIN, [gone, gone_with_site]) == []


def test_cleanup_keeps_the_kept_set_where_it_cannot_go_and_removes_it_where_it_can(tmp_path: Path) -> None:
    for deletes in (False, True):
        fake = FakeUmami(deletes_websites=deletes)
        _sandbox_run(fake, tmp_path, ["2.10.0"], 0)
        other = fake.add_website("production-site", user_id="owner")
        found = find_leftovers(fake.client(), ADMIN, None)
        assert {o.name for o in found} == {"ucf-keep-site", "ucf-keep-team", "ucf-keep-team-site", "ucf-keep-target"}
        assert all(o.kept for o in found)
        removed, kept = remove_kept(fake.client(), ADMIN, found)
        if deletes:  # e.g. after an upgrade: the whole set goes, the team after its website
            assert kept == [] and len(removed) == 4 and set(fake.websites) == {other["id"]} and fake.teams == {}
        else:  # nothing is deleted, and the team is not tried while its website remains
            assert removed == [] and len(kept) == 4 and len(fake.websites) == 4 and len(fake.teams) == 1
            assert not any(m == "DELETE" and "/teams/" in p for m, p, _ in fake.log)


def test_a_run_prefix_is_what_cleanup_and_the_docs_recognise() -> None:
    """`cleanup` finds a run's objects by the prefix, and the docs replace it in examples (results.json tells them
    its form, vocabulary.run_prefix): both rely on it."""
    import re

    from conformance.describe import vocabulary
    prefix = re.compile(vocabulary()["run_prefix"])
    prefixes = {new_prefix() for _ in range(20)}
    assert len(prefixes) > 1, "two runs in the same second get different prefixes"
    assert all(prefix.fullmatch(p) and not p.startswith(KEEP_MARK) for p in prefixes), prefixes


@pytest.mark.parametrize("row, kept", [
    ({"name": f"{KEEP_MARK}site", "domain": "x.example"}, True),
    ({"name": "renamed by a test", "domain": f"{KEEP_MARK}site.example"}, True),  # a website by its domain
    ({"name": "ucf-20260101t000000-abcd-site", "domain": "ucf-20260101t000000-abcd-site.example"}, False),
    ({"name": None, "domain": None}, False),
    ({"username": f"{KEEP_MARK}user"}, False),  # users are never kept
])
def test_kept_objects_are_named_with_the_keep_mark(row: dict, kept: bool) -> None:
    assert is_kept(row) is kept


def test_a_ledger_is_read_back_into_the_objects_it_lists(tmp_path: Path) -> None:
    objects = [Created("user", "u-1", "ucf-x-user"), Created("website", "w-1", "ucf-x-site", owner="u-1"),
               Created("report", "r-1", "ucf-x-report", website="w-1")]
    path = tmp_path / "deep" / "sandbox-ledger-ucf-x-.json"
    write_ledger(path, "ucf-x-", "http://umami.test", objects)
    data = json.loads(path.read_text())
    assert (data["prefix"], data["url"]) == ("ucf-x-", "http://umami.test")
    assert [Created(**o) for o in data["created"]] == objects  # as `cleanup` reads it


def test_a_write_cut_short_leaves_the_previous_ledger_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed (SIGKILL) while writing its ledger leaves the last whole ledger, never an empty file."""
    path = tmp_path / "sandbox-ledger-ucf-x-.json"
    first = [Created("user", "u-1", "ucf-x-user")]
    write_ledger(path, "ucf-x-", "http://umami.test", first)

    def cut_short(self: Path, text: str) -> int:
        with self.open("w") as fh:
            fh.write(text[:5])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", cut_short)
    with pytest.raises(KeyboardInterrupt):
        write_ledger(path, "ucf-x-", "http://umami.test", [*first, Created("team", "t-1", "ucf-x-team")])
    monkeypatch.undo()
    assert [Created(**o) for o in json.loads(path.read_text())["created"]] == first
    assert sorted(p.name for p in tmp_path.glob("sandbox-ledger-*.json")) == [path.name]


def test_concurrent_items_find_or_make_the_kept_target_once(tmp_path: Path) -> None:
    """Where websites cannot be deleted, target items of one batch run at a time (--concurrency): they share the
    one kept target, made once even when its making is slow, never one per item."""
    fake = FakeUmami(deletes_websites=False)
    sandbox = _sandbox(fake, tmp_path, ["2.10.0"])
    sandbox.owner = ("owner", ADMIN)
    post = sandbox._post_website

    def slow_post(*args: object) -> dict:
        time.sleep(0.05)  # the others ask meanwhile
        return post(*args)

    sandbox._post_website = slow_post
    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(lambda _: sandbox.target("website")["id"], range(6)))
    assert len(ids) == 1 and [w["name"] for w in fake.websites.values()] == ["ucf-keep-target"]

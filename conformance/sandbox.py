"""Sandbox: the objects a run creates (all named with a unique run prefix), seeded traffic, cleanup.

Everything created is recorded in a ledger file as soon as it exists, so `umami-conformance cleanup`
can remove it after a run that was killed. Objects that existed before the run are never touched.
On a server that cannot delete websites, the websites (and the team that owns one) are a fixed set named
`ucf-keep-<label>` instead, which every run finds again and reuses, so that nothing piles up.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from conformance.client import BROWSER_UA, Credential, Drift, Exchange, UmamiClient
from conformance.errors import ConnectionFailed, Unavailable
from conformance.versions import Versions

# Removal order: a team's websites go before the team (Umami's deleteTeam leaves them behind with no user and
# no team), a user's websites before the user. Children that a release's deleteWebsite leaves behind (LEFT_BEHIND)
# go before all of these, through their own DELETE (removal_order).
KINDS = ("report", "website", "team", "user")
CHILD_KINDS = ("segment",)  # objects of a website that the ledger records and that have a DELETE route of their own
SEGMENT_TYPES = ("segment", "cohort")  # GET /websites/{id}/segments requires one (src/lib/schema.ts segmentTypeParam)
VIEW_ONLY_TEAM_ROLES = ("team-view-only", "team-guest")  # v2.11+ name, 2.10.0 name
PREFIX_PATTERN = re.compile(r"^ucf-\d{8}t\d{6}-[0-9a-f]{4}-")
KEEP_MARK = "ucf-keep-"  # the fixed set a run reuses where the server cannot delete websites
# Releases whose DELETE /websites/{id} answers 500 and leaves the website (update and reset change nothing
# either; specs/known-differences.yaml): a run reuses its kept set there instead of creating websites.
WEBSITES_UNDELETABLE = Versions(">=2.10,<2.11")
# Kept traffic seeded this recently is reused instead of sent again: less than the 5 minutes in which Umami
# counts a visitor as active, which website-stats/get-active's case expects of the seed.
SEED_FRESH_SECONDS = 4 * 60
SEED_IPS = ["8.8.8.8", "81.2.69.142", "85.214.132.117", "195.154.122.113", "1.1.1.1"]
SEED_PAGES = [("/", "Home"), ("/pricing", "Pricing"), ("/docs/start", "Getting started"),
              ("/blog/hello", "Hello world")]
SEED_REFERRERS = ["https://www.google.com/", "https://news.ycombinator.com/", "", "https://github.com/"]
# Releases where a website with revenue rows cannot be deleted, nor its owner: the revenue table arrives in
# 2.19.0 (migration 13_add_revenue; /send saves a row for an event with `revenue` > 0 and a `currency`),
# deleteWebsite and deleteUser (src/queries/prisma/) remove sessions but not the revenue rows that point at
# them, and Prisma's emulated relations refuse (HTTP 500). deleteWebsite removes them since 3.0.2 (upstream
# 935517ce3); deleteUser still does not in 3.1.0, so users are removed after their websites.
REVENUE_BLOCKS_DELETION = Versions(">=2.19.0,<3.0.2")

# What the remedy of a LeftBehind row is.
DELETE_FIRST = "deleted first"  # the cleanup deletes them through their own route before their parent
NOT_SEEDED = "not seeded"  # no route deletes them: the run does not create them there
PARENT_LAST = "parent last"  # the parent goes after the objects whose delete removes them (a user after its websites)


@dataclass(frozen=True)
class LeftBehind:
    """Rows of `kind` that a release's delete of a `parent` leaves behind, which then make that delete fail: every
    Umami 2.x/3.x schema uses Prisma's emulated relations (relationMode = "prisma"), where a required relation
    restricts the delete of the row it points at, so the DELETE answers 500 and the parent stays."""

    kind: str  # the rows left: a ledger kind (CHILD_KINDS) or "revenue"
    parent: str  # "website" or "user": whose DELETE fails
    versions: Versions  # the releases whose delete query leaves them
    source: str  # where: the release's query and schema
    remedy: str  # DELETE_FIRST, NOT_SEEDED or PARENT_LAST


# The objects the sandbox and the spec items create on 2.10-3.1 that block a later delete (read from each release's
# prisma schema and src/queries/prisma/{website,user,team}.ts; umami-source-history.json tells where they changed).
# Nothing blocks a team's delete: deleteTeam removes its members (team_user) in every release, and its websites
# (and 3.x links, pixels, boards) have an optional team, which the delete sets to null. Reports go with their website
# and their user everywhere; team members with their team and their user; 3.1.0 website shares (no relation,
# entityId) with their website; session data is never created (no `identify` is sent).
LEFT_BEHIND = (
    LeftBehind("segment", "website", Versions(">=2.19.0,<3.0.2"),
               "deleteWebsite in src/queries/prisma/website.ts removes event data, session data, events, sessions "
               "and reports but not segments, whose table arrives in 2.19.0 (migration 11_add_segment); it removes "
               "them since 3.0.2", DELETE_FIRST),
    LeftBehind("revenue", "website", REVENUE_BLOCKS_DELETION,
               "the same deleteWebsite leaves revenue (table since 2.19.0, migration 13_add_revenue; removed since "
               "3.0.2), and no route deletes revenue rows", NOT_SEEDED),
    LeftBehind("segment", "user", Versions(">=2.19.0"),
               "deleteUser in src/queries/prisma/user.ts deletes the user's websites (deleteMany) without their "
               "segments, still in 3.1.0", PARENT_LAST),
    LeftBehind("revenue", "user", Versions(">=2.19.0"),
               "the same deleteUser leaves their revenue rows (and, 3.1.0, session replays), still in 3.1.0",
               PARENT_LAST),
)


def _may_be(versions: Versions, server: list[str] | None) -> bool:
    """Whether a server that may be any of `server` (None: not known) may be one of `versions`."""
    return server is None or any(versions.contains(v) for v in server)


def removal_order(versions: list[str] | None) -> tuple[str, ...]:
    """The kinds in the order the cleanup deletes them on a server that may be any of `versions` (None: not
    known, so the careful order): the children that a release's deleteWebsite leaves behind first, through their
    own DELETE, then KINDS. A child kind not in the order goes with its website's delete."""
    first = [b.kind for b in LEFT_BEHIND if b.remedy == DELETE_FIRST and _may_be(b.versions, versions)]
    return (*dict.fromkeys(first), *KINDS)


def deletion_notes(versions: list[str] | None) -> list[str]:
    """What the cleanup does on this server because of LEFT_BEHIND, one phrase per remedy it acts on (a server that
    may be none of the releases: none)."""
    rows = [b for b in LEFT_BEHIND if _may_be(b.versions, versions)]
    notes = [f"{b.kind}s before their {b.parent}: its delete leaves them and answers 500 on Umami {b.versions}"
             for b in rows if b.remedy == DELETE_FIRST]
    last = [b for b in rows if b.remedy == PARENT_LAST]
    if last:
        left = " and ".join(dict.fromkeys(b.kind for b in last))
        notes.append(f"users after their websites: deleteUser leaves their websites' {left} rows on Umami "
                     f"{last[0].versions}")
    return notes


@dataclass(frozen=True)
class SeedPlan:
    """What the sandbox seeds on a server: revenue events only where deleteWebsite removes revenue rows (no route
    deletes them; LEFT_BEHIND). Segments, the other rows that can block a delete, are the cleanup's to remove."""

    revenue: bool
    reason: str | None = None  # why revenue is left out


def seed_plan(versions: list[str] | None) -> SeedPlan:
    """The seed for a server that may be any of `versions` (None: not known, so the careful plan)."""
    if versions is None:
        return SeedPlan(False, "the server's version is not known, and on Umami 2.19.0-3.0.1 deleteWebsite leaves "
                               "revenue rows, which no route deletes, so they make a website and its owner "
                               "undeletable")
    blocked = [v for v in versions if REVENUE_BLOCKS_DELETION.contains(v)]
    if blocked:
        shown = ", ".join(blocked[:3]) + (", ..." if len(blocked) > 3 else "")
        return SeedPlan(False, f"the server may be Umami {shown}, where deleteWebsite leaves revenue rows, which "
                               f"no route deletes, so they make a website and its owner undeletable (DELETE "
                               f"answers 500; deleteWebsite removes them since 3.0.2): no revenue events were sent")
    return SeedPlan(True)


class SetupFailed(ConnectionFailed):
    """The server refused to create a sandbox object."""


def new_prefix() -> str:
    return f"ucf-{time.strftime('%Y%m%dt%H%M%S', time.gmtime())}-{secrets.token_hex(2)}-"


@dataclass
class Created:
    """One object the run created."""

    kind: str  # one of KINDS or CHILD_KINDS
    id: str
    name: str
    owner: str | None = None  # id of the sandbox user that owns it (websites)
    website: str | None = None  # id of the website it belongs to (reports, segments)
    kept: bool = False  # one of the kept set, reused by every run (found by `cleanup`, never in a ledger)

    @property
    def path(self) -> str:
        """Its own path (DELETE and GET by id): a segment's is under its website."""
        if self.kind == "segment":
            return f"/websites/{self.website}/segments/{self.id}"
        return f"/{self.kind}s/{self.id}"


@dataclass
class Sandbox:
    """Creates and removes the run's objects through the API, as admin unless stated."""

    client: UmamiClient
    admin: Credential
    prefix: str
    ledger: Path
    created: list[Created] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)  # label -> username of a borrowed user
    owner: tuple[str, Credential | None] = ("", None)  # (user id, credential) owning the websites
    versions: list[str] | None = None  # the Umami releases the server may be (Session.server_versions)
    seeded: dict[str, Any] = field(default_factory=dict)
    kept: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> the kept object, as results.json lists it
    gone: set[str] = field(default_factory=set)  # ids a test item deleted (DELETE of the object's own path)
    concurrency: int = 1  # requests at a time for the seed and the cleanup (--concurrency)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _target_lock: threading.Lock = field(default_factory=threading.Lock)  # the kept target: found or made once
    _kept_target: dict[str, Any] | None = None

    def _record(self, obj: Created) -> None:
        with self._lock:
            self.created.append(obj)
            self._write_ledger()

    def _write_ledger(self) -> None:
        write_ledger(self.ledger, self.prefix, self.client.target.url, self.created)

    def _ok(self, method: str, path: str, auth: Credential | None, body: Any = None,
            find: Callable[[], Any] | None = None) -> Any:
        """The answer of a set-up request, which must name the object (its `id`; 2.10.0's POST /teams answers
        [team, teamUser]). A success other than 200 that names it is a finding, and the run goes on. A create
        gives `find` (see _create)."""
        if find is not None:
            ex, found = self._create(path, auth, body, find)
            if found is not None:
                return found
        else:
            ex = self.client.request(method, path, auth=auth, json_body=body).settled()
        data = ex.json()
        status = ex.response.status_code
        first = data[0] if isinstance(data, list) and data else data
        if not ex.response.is_success:
            raise SetupFailed(f"{method} {path} answered HTTP {status}: "
                              f"{self.client.redactor.text(ex.response.text[:120])}")
        if not (isinstance(first, dict) and isinstance(first.get("id"), str)):
            raise SetupFailed(f"{method} {path} answered HTTP {status} without the object's id "
                              f"({self.client.redactor.text(ex.response.text[:120]) or 'an empty body'})")
        if status != 200:
            self.client.drift.append(Drift(ex, 200, "status-changed", "$", 200, status,
                                           f"set-up: {method} {path} answered HTTP {status} instead of 200; "
                                           "the run went on with the object it names"))
        return data

    def _create(self, path: str, auth: Credential | None, body: Any,
                find: Callable[[], Any]) -> tuple[Exchange | None, Any]:
        """POST a create so that it takes effect at most once: after an answer that leaves open whether it landed
        (a gateway error or a dropped connection, after the client's retries), `find` looks the object up by its
        unique name before it is sent again. Returns (the answer, None) or (None, the object found)."""
        tries = self.client.target.retries + 1
        for _ in range(tries):
            try:
                ex = self.client.request("POST", path, auth=auth, json_body=body)
                if not ex.transient:
                    return ex, None
                failure = f"answered HTTP {ex.response.status_code}"
            except Unavailable as exc:
                failure = str(exc).rsplit(" (tried", 1)[0]
            found = find()
            if found is not None:
                return None, found
        raise Unavailable(f"POST {path}: {failure} (tried {tries} times, looking for the object before each new "
                          "try)", tries)

    def _named(self, path: str, auth: Credential | None, name: str, key: str = "name") -> Callable[[], Any]:
        """Finds the object named `name` in the list at `path` (None when it is not there)."""
        return lambda: next((r for r in _rows(self.client, auth, path) or [] if r.get(key) == name), None)

    def create_user(self, label: str) -> tuple[dict[str, Any], Credential]:
        """A regular user named `<prefix><label>`; returns (user, credential)."""
        password = secrets.token_urlsafe(18)
        self.client.redactor.add(password)
        name = f"{self.prefix}{label}"
        user = self._ok("POST", "/users", self.admin, {"username": name, "password": password, "role": "user"},
                        find=self._named("/admin/users", self.admin, name, "username"))
        self._record(Created("user", user["id"], name))
        self.passwords[label] = password
        return user, self.client.login(name, password)

    def login_again(self, label: str) -> Credential:
        """A new session for the sandbox user `label` (for items that end their session)."""
        return self.client.login(self.logins.get(label, f"{self.prefix}{label}"), self.passwords[label])

    @property
    def keeps(self) -> bool:
        """Whether the server may be a release that cannot delete websites: then the run reuses its kept set."""
        return any(WEBSITES_UNDELETABLE.contains(v) for v in self.versions or [])

    def create_website(self, label: str, owner_id: str, owner: Credential | None,
                       share_id: str | None = None, team_id: str | None = None) -> dict[str, Any]:
        """A website `<prefix><label>` the run removes; on a server that cannot delete websites, the kept
        website `ucf-keep-<label>` of this owner (or team), found again or made once."""
        if self.keeps:
            return self._kept_website(label, owner_id, owner, share_id, team_id)
        site = self._post_website(f"{self.prefix}{label}", owner, share_id, team_id)
        self._record(Created("website", site["id"], site["name"], owner=owner_id))
        return site

    def _post_website(self, name: str, owner: Credential | None, share_id: str | None,
                      team_id: str | None) -> dict[str, Any]:
        body = {"name": name, "domain": f"{name}.example.com", **({"shareId": share_id} if share_id else {}),
                **({"teamId": team_id} if team_id else {})}
        listed = f"/teams/{team_id}/websites" if team_id else "/websites"
        return self._ok("POST", "/websites", owner, body, find=self._named(listed, owner, name))

    def create_team(self, label: str) -> dict[str, Any]:
        """A throwaway team `<prefix><label>`, owned by the websites' owner (2.10.0 answers [team, teamUser])."""
        name = f"{self.prefix}{label}"
        body = self._ok("POST", "/teams", self.owner[1], {"name": name},
                        find=self._named("/teams", self.owner[1], name))
        team = body[0] if isinstance(body, list) else body
        self._record(Created("team", team["id"], name))
        self.client.redactor.add(team.get("accessCode"), stand_in=True)
        return team

    def create_report(self, label: str) -> dict[str, Any]:
        """A saved funnel report `<prefix><label>` on the run's website, by its owner. The 2.x body (3.x
        reports take parameters {startDate, endDate, window, steps}), so report targets are for 2.x cases."""
        name = f"{self.prefix}{label}"
        website = self.context["website"]["id"]
        report = self._ok("POST", "/reports", self.owner[1], {
            "websiteId": website, "name": name, "type": "funnel", "description": "",
            "parameters": {"urls": ["/", "/pricing"], "window": 60}},
            find=self._named("/reports", self.owner[1], name))
        self._record(Created("report", report["id"], name, website=website))
        return report

    def _kept_website(self, label: str, owner_id: str, owner: Credential | None, share_id: str | None,
                      team_id: str | None) -> dict[str, Any]:
        """Kept websites are known by their domain `ucf-keep-<label>.example.com` (a rename changes the name
        only) among the owner's own websites, or the team's."""
        domain = f"{KEEP_MARK}{label}.example.com"
        listed = _rows(self.client, owner, f"/teams/{team_id}/websites" if team_id else "/websites")
        if listed is None:
            listed = _rows(self.client, self.admin, "/admin/websites")
        for row in listed or []:
            if row.get("domain") == domain and isinstance(row.get("id"), str) and (
                    team_id or not row.get("teamId")) and (team_id or row.get("userId") in (None, owner_id)):
                self.client.redactor.add(row.get("shareId"), stand_in=True)
                self._keep("website", row, reused=True)
                return row
        site = self._post_website(f"{KEEP_MARK}{label}", owner, share_id, team_id)
        self._keep("website", site, reused=False)
        return site

    def _keep(self, kind: str, body: dict[str, Any], reused: bool) -> None:
        """Note a kept object (as this run first met it: made, or found again)."""
        self.kept.setdefault(body["id"], {"kind": kind, "id": body["id"], "name": str(body.get("name") or ""),
                                          "reused": reused})

    def share(self, site: dict[str, Any]) -> None:
        """The share-token role: the token of the website's share link (GET /share/{shareId})."""
        share_id = site.get("shareId")
        if not share_id:
            self.unavailable["share"] = "the server did not keep the shareId given at website creation"
            return
        ex = self.client.request("GET", f"/share/{share_id}")
        body = ex.json()
        status = ex.response.status_code
        if not ex.response.is_success or not isinstance(body, dict) or not body.get("token"):
            self.unavailable["share"] = f"GET /share/{{shareId}} answered HTTP {status}" + (
                " without a token" if ex.response.is_success else "")
            return
        if status != 200:
            self.client.drift.append(Drift(ex, 200, "status-changed", "$", 200, status,
                                           f"set-up: GET /share/{{shareId}} answered HTTP {status} instead of 200; "
                                           "the run used its token"))
        self.client.redactor.add(body["token"], stand_in=True)
        self.credentials["share"] = Credential.share_token(body["token"])
        self.context["share"] = {"id": share_id}

    def adopt(self, kind: str, body: Any) -> None:
        """Record an object a test item created, so that cleanup removes it. A list answer (2.10.0's
        `POST /teams` gives `[team, teamUser]`) holds the object first."""
        if isinstance(body, list) and body:
            body = body[0]
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            name = str(body.get("name") or body.get("username") or "")
            self._record(Created(kind, body["id"], name, owner=body.get("userId"), website=body.get("websiteId")))

    def setup(self, credentials: dict[str, str], existing: dict[str, tuple[str, str]]) -> None:
        """Create the run's regular user (or borrow `existing["user"]` where the server cannot create
        users), its website with a share link, a team with a view-only member and a team website, and
        seed traffic. Without any regular user, admin owns the website and there is no team."""
        user, cred = self._regular_user("user", "user", existing.get("user"))
        if user and cred:
            self.credentials["user"] = cred
            self.owner = (user["id"], cred)
        else:
            self.owner = (self._ok("GET", "/me", self.admin).get("id", ""), self.admin)
        share_id = secrets.token_hex(8)
        self.client.redactor.add(share_id, stand_in=True)
        site = self.create_website("site", *self.owner, share_id=share_id)
        self.context.update(prefix=self.prefix, user=user, website=site, credentials=credentials)
        self.share(site)
        self.seed(site)
        if cred:
            self.team(existing.get("viewer"))
        else:
            self.unavailable["view-only"] = "no regular user to own the sandbox team"

    def _regular_user(self, label: str, role: str, existing: tuple[str, str] | None
                      ) -> tuple[dict[str, Any] | None, Credential | None]:
        """A regular user `<prefix><label>`, or the existing one given for servers that cannot create users."""
        try:
            return self.create_user(label)
        except SetupFailed as exc:
            if not existing:
                self.unavailable[role] = (f"the server cannot create users ({exc}); pass "
                                          f"--umami-{label}-username/--umami-{label}-password of a regular user")
                return None, None
        username, password = existing
        self.client.redactor.add(password)
        self.passwords[label] = password
        self.logins[label] = username
        cred, user = self.client.login_user(username, password)
        return user, cred

    def team(self, existing_viewer: tuple[str, str] | None) -> None:
        """A team owned by the user, a view-only member, and a team website with traffic."""
        owner_id, owner = self.owner
        team = self._kept_team(owner_id, owner) if self.keeps else None
        if team is None:
            name = f"{KEEP_MARK if self.keeps else self.prefix}team"
            body = self._ok("POST", "/teams", owner, {"name": name}, find=self._named("/teams", owner, name))
            team = body[0] if isinstance(body, list) else body  # 2.10.0 answers [team, teamUser]
            if self.keeps:  # its website cannot go, so neither does the team (deleteTeam would orphan it)
                self._keep("team", {**team, "name": name}, reused=False)
            else:
                self._record(Created("team", team["id"], name))
        self.client.redactor.add(team.get("accessCode"), stand_in=True)
        viewer, viewer_cred = self._regular_user("viewer", "view-only", existing_viewer)
        if viewer:
            self.context["viewer"] = viewer
        if viewer and viewer_cred and self._member(team["id"], viewer["id"]):
            self.credentials["view-only"] = viewer_cred
        elif viewer and viewer_cred:
            refused = []
            for role in VIEW_ONLY_TEAM_ROLES:
                members = f"/teams/{team['id']}/users"
                ex, found = self._create(members, self.admin, {"userId": viewer["id"], "role": role},
                                         self._named(members, self.admin, viewer["id"], "userId"))
                if found is not None or ex.response.is_success:
                    self.credentials["view-only"] = viewer_cred
                    break
                refused.append(f"{role}: HTTP {ex.response.status_code}")
            else:
                self.unavailable["view-only"] = f"the server refused a view-only member ({'; '.join(refused)})"
        site = self.create_website("team-site", "", owner, team_id=team["id"])
        self.context.update(team=team, team_website=site)
        self.seed(site)

    def _kept_team(self, owner_id: str, owner: Credential | None) -> dict[str, Any] | None:
        """The owner's kept team `ucf-keep-team`, from the teams it belongs to."""
        rows = None
        for path in ("/me/teams", f"/users/{owner_id}/teams", "/teams"):
            rows = _rows(self.client, owner, path)
            if rows is not None:
                break
        for row in rows or []:
            if row.get("name") == f"{KEEP_MARK}team" and isinstance(row.get("id"), str):
                self._keep("team", row, reused=True)
                return row
        return None

    def _member(self, team_id: str, user_id: str) -> bool:
        """Whether the user already belongs to the team (a kept team keeps its view-only member)."""
        if team_id not in self.kept:
            return False
        rows = _rows(self.client, self.owner[1], f"/teams/{team_id}/users") or []
        return any(user_id in (r.get("userId"), r.get("id"), (r.get("user") or {}).get("id")) for r in rows)

    def target(self, kind: str) -> dict[str, Any]:
        """A throwaway object for one test item (update/delete), owned by the sandbox user: a website, a team
        (the user its owner and only member), a report on the run's website, or a user."""
        label = f"{kind}-{secrets.token_hex(3)}"
        if kind == "website" and self.keeps:  # the one kept target (nothing changes it there), found or made once
            with self._target_lock:
                if self._kept_target is None:
                    self._kept_target = self.create_website("target", *self.owner)
                return self._kept_target
        if kind == "website":
            return self.create_website(label, *self.owner)
        if kind == "team":
            return self.create_team(label)
        if kind == "report":
            return self.create_report(label)
        user, _ = self.create_user(label)
        return user

    @property
    def plan(self) -> SeedPlan:
        return seed_plan(self.versions)

    def not_seeded(self, needs: list[str]) -> str | None:
        """Why a part of the seed a case schema expects was left out on this server, or None."""
        skipped = self.seeded.get("skipped", {})
        missing = [f"no {part} seeded ({skipped[part]})" for part in needs if part in skipped]
        return "; ".join(missing) or None

    def seed(self, site: dict[str, Any]) -> None:
        """Send the seed (seed_requests) through /api/send: each visitor's requests in order, `concurrency`
        visitors at a time; a refusal ends the seed. A kept website that already holds a seed of the
        last SEED_FRESH_SECONDS is not seeded again, so that its traffic grows by at most one seed per run.
        Every seed sent makes sessions of its own (the run's visitors): the realtime windows list the sessions
        created in them, so a kept website's sessions of an earlier day would leave them empty. The site gets
        `seededSince` (epoch ms), a window start that holds this seed and no earlier one."""
        plan = self.plan
        kept = self.kept.get(site["id"])
        requests = seed_requests(site, self.prefix, plan)
        started = int(time.time() * 1000)
        fresh = kept is not None and self._freshly_seeded(site["id"], requests)
        # `${website.seededSince}`: from where the one seed the website's cases read begins. A reused seed is of the
        # last SEED_FRESH_SECONDS, and the seed before it older still (seeds are that far apart); a seed sent now
        # begins now, less a minute for a server clock behind ours.
        site["seededSince"] = started - (SEED_FRESH_SECONDS if fresh else 60) * 1000
        if not fresh:
            refused = threading.Event()

            def visit(visitor: list[tuple[dict[str, Any], dict[str, str]]]) -> None:
                for body, headers in visitor:  # one visitor's requests in order: its session, then its events
                    if refused.is_set() or not self._send(body, headers):
                        refused.set()
                        return

            visitors: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = {}
            for body, headers in requests:
                visitors.setdefault(body["payload"]["id"], []).append((body, headers))
            each(visit, list(visitors.values()), self.concurrency)
        if kept is not None:
            kept["traffic"] = "reused" if fresh else "seeded"
        names = [body["payload"].get("name") for body, _ in requests]  # None: a pageview
        reused = self.seeded.get("reused", 0) + fresh
        self.seeded = {"pageviews": names.count(None), "events": len(names) - names.count(None),
                       "sessions": len(SEED_IPS), "revenue": names.count("purchase"),
                       **({"reused": reused} if reused else {})}
        if not plan.revenue:
            self.seeded["skipped"] = {"revenue": plan.reason}

    def _freshly_seeded(self, website_id: str, requests: list[tuple[dict[str, Any], dict[str, str]]]) -> bool:
        """Whether the website counts at least one seed's pageviews in the last SEED_FRESH_SECONDS."""
        now = int(time.time() * 1000)
        ex = self.client.request("GET", f"/websites/{website_id}/stats", auth=self.owner[1] or self.admin,
                                 params={"startAt": now - SEED_FRESH_SECONDS * 1000, "endAt": now})
        body = ex.json()
        views = body.get("pageviews") if ex.response.status_code == 200 and isinstance(body, dict) else None
        views = views.get("value") if isinstance(views, dict) else views
        try:
            return float(views) >= sum(1 for body, _ in requests if "name" not in body["payload"])
        except (TypeError, ValueError):
            return False

    def _send(self, body: dict[str, Any], headers: dict[str, str]) -> bool:
        """Send one seed request; an answer other than 200 is a finding (once per run), and a refusal ends
        the seed (the checks of seeded values then show what is missing)."""
        # Safe to repeat: a seeded event sent twice only raises counts that case schemas bound from below.
        ex = self.client.request("POST", "/send", json_body=body, headers=headers, repeatable=True).settled()
        status = ex.response.status_code
        with self._lock:
            if status != 200 and not any(d.exchange.request.url.path.endswith("/send") for d in self.client.drift):
                went_on = "the seed went on" if ex.response.is_success else "the seed stopped there"
                self.client.drift.append(Drift(ex, 200, "status-changed", "$", 200, status,
                                               f"set-up: seeding traffic, POST /send answered HTTP {status} "
                                               f"instead of 200; {went_on}"))
        return ex.response.is_success

    def deleted(self, obj_id: str) -> None:
        """A test item deleted this object (a success of DELETE on its own path)."""
        with self._lock:
            self.gone.add(obj_id)

    def cleanup(self) -> list[dict[str, str]]:
        """Remove everything created, newest first; return what could not be removed. An object a test item
        deleted is skipped unless it is still there (2.10.0 answers 500 to a DELETE or GET of a report that
        is gone, which would read as residue)."""
        gone = [o for o in self.created if o.id in self.gone]
        there = each(lambda o: still_there(self.client, self.admin, o), gone, self.concurrency)
        back = {o.id for o, still in zip(gone, there, strict=True) if still}
        objects = [o for o in self.created if o.id not in self.gone or o.id in back]
        return remove(self.client, self.admin, objects, self.concurrency, self.versions)

    def adopt_leftovers(self) -> None:
        """Adopt objects with this run's prefix that no answer told of: a create whose answer was lost may have
        landed (find_leftovers). Best effort: a server that cannot list them leaves them to `cleanup`."""
        try:
            found = find_leftovers(self.client, self.admin, self.prefix)
        except Unavailable:
            return
        known = {o.id for o in self.created}
        for obj in found:
            if obj.id not in known:
                self._record(obj)

    def keep_in_ledger(self, ids: set[str]) -> None:
        """After cleanup: the ledger lists only what remains (and is gone when nothing does)."""
        with self._lock:
            self.created = [o for o in self.created if o.id in ids]
            if self.created:
                self._write_ledger()
            else:
                self.ledger.unlink(missing_ok=True)


def seed_requests(site: dict[str, Any], visitor: str, plan: SeedPlan
                  ) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Realistic traffic for /api/send as (body, headers): sessions from several countries with distinct ids
    (`<visitor>visitor-<n>`), pageviews on several paths with UTM parameters and referrers, custom events with
    data, and revenue events (`revenue`/`currency` event data, as Umami's revenue reports read them) where the
    seed plan allows them (never where they would make the website undeletable). The sessions are new for
    every `visitor`: before 2.14 Umami ignores the id and derives a session from the website, hostname, IP and
    user agent (src/lib/session.ts), so the user agent carries a build number taken from `visitor` too."""
    requests = []
    build = int(hashlib.sha256(visitor.encode()).hexdigest()[:4], 16)
    agent = BROWSER_UA.replace("Chrome/124.0 ", f"Chrome/124.0.{build}.0 ")
    for i, ip in enumerate(SEED_IPS):
        headers = {"X-Forwarded-For": ip, "User-Agent": agent}
        base = {"website": site["id"], "hostname": site["domain"], "screen": "1920x1080", "language": "en-US",
                "id": f"{visitor}visitor-{i}"}  # distinct id (v2.14+; older servers ignore it)
        for j, (page, title) in enumerate(SEED_PAGES[: 2 + i % 3]):
            payload = {**base, "title": title,
                       "url": f"{page}?utm_source=newsletter&utm_medium=email" if j == 0 and i % 2 else page,
                       "referrer": SEED_REFERRERS[i % len(SEED_REFERRERS)] if j == 0 else ""}
            requests.append(({"type": "event", "payload": payload}, headers))
        requests.append(({"type": "event", "payload": {
            **base, "url": "/pricing", "title": "Pricing", "name": "signup-click",
            "data": {"plan": "pro" if i % 2 else "free", "seats": i + 1}}}, headers))
        if i % 2 and plan.revenue:
            requests.append(({"type": "event", "payload": {
                **base, "url": "/checkout", "title": "Checkout", "name": "purchase",
                "data": {"revenue": 19.5 * i, "currency": "USD"}}}, headers))
    return requests


def each(func: Callable[[Any], Any], values: list[Any], concurrency: int) -> list[Any]:
    """`func` of every value, `concurrency` at a time, the results in the values' order (the first exception
    raised is raised, once every call has ended)."""
    if concurrency <= 1 or len(values) <= 1:
        return [func(v) for v in values]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(values)), thread_name_prefix="ucf-sandbox") as pool:
        # each call in its own copy of this context: the item and tally context variables stay the caller's
        futures = [pool.submit(contextvars.copy_context().run, func, v) for v in values]
        return [f.result() for f in futures]


def write_ledger(path: Path, prefix: str, url: str, objects: list[Created]) -> None:
    """Write the ledger atomically: a run killed mid-write leaves the previous ledger whole, never an empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"prefix": prefix, "url": url, "created": [o.__dict__ for o in objects]}, indent=2))
    os.replace(tmp, path)


def remove(client: UmamiClient, admin: Credential, objects: list[Created], concurrency: int = 1,
           versions: list[str] | None = None) -> list[dict[str, str]]:
    """Delete the objects kind by kind in the removal order of a server that may be any of `versions` (None: not
    known): segments first where deleteWebsite leaves them, then reports, websites, teams and users (deleting a
    user also removes its websites); the objects of one kind `concurrency` at a time. A child kind not in the
    order is left to its website's delete. An object is residue only when it is still there afterwards (one
    already gone is not, whatever its DELETE answered: 2.10.0 answers 500 for an unknown id); its reason is the
    status its DELETE answered."""
    answered: dict[str, tuple[str, int]] = {}  # id -> (DELETE path, status)
    deleted_teams: set[str] = set()
    unique = list({o.id: o for o in objects}.values())
    order = removal_order(versions)

    def delete(obj: Created) -> None:
        ex = client.request("DELETE", obj.path, auth=admin, repeatable=True)  # presence is checked after
        if ex.not_recorded:
            return
        answered[obj.id] = (obj.path, ex.response.status_code)
        if ex.response.is_success and obj.kind == "team":
            deleted_teams.add(obj.id)

    for kind in order:
        each(delete, list(reversed([o for o in unique if o.kind == kind])), concurrency)

    def failed(obj_id: str | None) -> str | None:
        path, status = answered.get(obj_id or "", ("", 200))
        return None if status in (200, 204, 404) else f"DELETE {path} answered HTTP {status}"

    residue: list[dict[str, str]] = []
    checked = each(lambda o: presence(client, admin, o), unique, concurrency)
    for obj, (there, ex) in zip(unique, checked, strict=True):
        if there is False or (there is None and not failed(obj.id)):
            continue
        if failed(obj.id):
            reason = failed(obj.id)
        elif obj.kind not in order:
            reason = (f"left to its website's delete, which removes it on this release: "
                      f"{failed(obj.website) or 'the website is still there'}")
        else:
            path, status = answered.get(obj.id, (obj.path, 0))
            reason = f"still there although DELETE {path} answered HTTP {status}"
        if obj.kind == "website" and failed(obj.owner):
            reason += f"; deleting its owner user: {failed(obj.owner)}"
        if there is None:
            reason += f"; GET {obj.path} answered HTTP {ex.response.status_code}, so it may remain"
        elif obj.kind == "website" and orphaned(client, admin, ex.json(), deleted_teams):
            reason += "; orphaned: it has no user and no team (Umami's deleteTeam leaves a team's websites)"
        residue.append({"kind": obj.kind, "id": obj.id, "name": _name(ex.json(), obj), "reason": reason})
    return residue


def presence(client: UmamiClient, admin: Credential, obj: Created) -> tuple[bool | None, Exchange]:
    """Whether `obj` is on the server, asked by id as admin: True, False (404, or 200 without it: 2.10.0
    answers `null`, 2.20.2 for a segment too), or None when no answer can tell. A report or segment is gone with
    its website (every release's deleteWebsite removes them or refuses while they remain); 2.10.0's GET
    /reports/{unknown} answers 500, so a report is then looked for among its website's reports."""
    ex = client.request("GET", obj.path, auth=admin)
    status = ex.response.status_code
    body = ex.json()
    if ex.not_recorded:
        return None, ex
    if status == 200:
        return isinstance(body, dict) and body.get("id") == obj.id, ex
    if status == 404:
        return False, ex
    if obj.website:  # asked another way: is its website there, and its website's reports
        if presence(client, admin, Created("website", obj.website, ""))[0] is False:
            return False, ex  # a child goes with its website
        rows = _rows(client, admin, "/reports", {"websiteId": obj.website}) if obj.kind == "report" else None
        if rows is not None:
            return any(r.get("id") == obj.id for r in rows), ex
    return None, ex


def still_there(client: UmamiClient, admin: Credential, obj: Created) -> bool:
    return presence(client, admin, obj)[0] is True


def orphaned(client: UmamiClient, admin: Credential, website: Any, deleted_teams: set[str]) -> bool:
    """A website with no user and no team: no user id, and no team id or one of a team that is gone."""
    if not isinstance(website, dict) or website.get("userId"):
        return False
    team_id = website.get("teamId")
    if not team_id or team_id in deleted_teams:
        return True
    ex = client.request("GET", f"/teams/{team_id}", auth=admin)
    body = ex.json()
    return ex.response.status_code == 404 or (ex.response.status_code == 200 and not body)


def _name(body: Any, obj: Created) -> str:
    name = body.get("name") or body.get("username") if isinstance(body, dict) else None
    return str(name or obj.name)


def _rows(client: UmamiClient, admin: Credential, path: str, params: dict[str, Any] | None = None
          ) -> list[dict[str, Any]] | None:
    """Every row of a paged admin list, or None when the server refuses the list (e.g. 2.16-2.20's
    /admin/websites without userId answers 400)."""
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        ex = client.request("GET", path, auth=admin, params={**(params or {}), "page": page, "pageSize": 200})
        ex.settled()  # a list a gateway error hid is no empty list: nothing is made twice for want of it
        if ex.response.status_code != 200:
            return rows if page > 1 else None
        body = ex.json()
        batch = body.get("data", []) if isinstance(body, dict) else body if isinstance(body, list) else []
        rows += [r for r in batch if isinstance(r, dict)]
        if len(batch) < 200:
            return rows
        page += 1


def find_leftovers(client: UmamiClient, admin: Credential, prefix: str | None,
                   ledger_objects: list[Created] = ()) -> list[Created]:
    """Objects on the server whose name carries `prefix` (or, when None, any run prefix, and the kept set
    `ucf-keep-*`, known by name or website domain): from the admin lists (websites per user where the server
    lists them only so), the reports and segments of the runs' websites, a kept team website's team, and the ledgers'
    objects, asked by id, that are still there (the only way to find an orphaned website on 2.16-2.20, which
    list websites per user)."""
    def matches(row: dict[str, Any], name_key: str) -> bool:
        names = [n for n in (row.get(name_key), row.get("domain")) if isinstance(n, str)]
        if prefix:
            return any(n.startswith(prefix) for n in names[:1])
        return any(PREFIX_PATTERN.match(n) or n.startswith(KEEP_MARK) for n in names)

    found: dict[str, Created] = {}

    def add(kind: str, rows: list[dict[str, Any]] | None, name_key: str) -> None:
        for row in rows or []:
            if matches(row, name_key) and isinstance(row.get("id"), str):
                found.setdefault(row["id"], Created(kind, row["id"], str(row.get(name_key) or ""),
                                                    owner=row.get("userId"), kept=is_kept(row)))

    add("user", _rows(client, admin, "/admin/users"), "username")
    websites = _rows(client, admin, "/admin/websites")
    if websites is None:
        for user in [o for o in found.values() if o.kind == "user"]:
            add("website", _rows(client, admin, "/admin/websites", {"userId": user.id, "includeOwnedTeams": "true"}),
                "name")
    add("website", websites, "name")
    add("team", _rows(client, admin, "/admin/teams") or _rows(client, admin, "/teams"), "name")
    # Reports hang off websites: those of the runs' websites (named with a run prefix, or kept) are listed there.
    sites = {r["id"] for r in websites or [] if isinstance(r.get("id"), str) and (is_kept(r) or matches(r, "name"))}
    # Segments (2.19+; a release without the route answers 404) are listed per type, under their website.
    for site in sorted(sites | {o.id for o in found.values() if o.kind == "website"}):
        lists = [("report", "/reports", {"websiteId": site})] + [
            ("segment", f"/websites/{site}/segments", {"type": t}) for t in SEGMENT_TYPES]
        for kind, path, params in lists:
            for row in _rows(client, admin, path, params) or []:
                if matches(row, "name") and isinstance(row.get("id"), str):
                    found.setdefault(row["id"], Created(kind, row["id"], str(row["name"]), website=site))
    if not prefix:  # a kept team is found through its kept website where the server lists no teams (2.10.0)
        for team_id in {r.get("teamId") for r in websites or [] if is_kept(r) and r.get("teamId")} - set(found):
            ex = client.request("GET", f"/teams/{team_id}", auth=admin)
            team = ex.json()
            if ex.response.status_code == 200 and isinstance(team, dict) and is_kept(team):
                add("team", [team], "name")
    for obj in ledger_objects:
        if obj.id not in found:
            there, ex = presence(client, admin, obj)
            if there is not False:
                found[obj.id] = Created(obj.kind, obj.id, _name(ex.json(), obj), owner=obj.owner, website=obj.website)
    return list(found.values())


def is_kept(row: dict[str, Any]) -> bool:
    """One of the kept set (`ucf-keep-<label>`, a website also by its domain)."""
    return any(isinstance(n, str) and n.startswith(KEEP_MARK) for n in (row.get("name"), row.get("domain")))


def remove_kept(client: UmamiClient, admin: Credential, objects: list[Created]
                ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Remove the kept set where the server now can (e.g. after an upgrade): websites first, their teams only
    once no kept website is left (deleting the team would orphan one). Returns (removed, still kept)."""
    websites = [o for o in objects if o.kind in ("website", *CHILD_KINDS)]
    remaining = remove(client, admin, websites)
    others = [o for o in objects if o not in websites]
    if remaining:
        why = "kept: a kept website remains, which the team owns"
        remaining += [{"kind": o.kind, "id": o.id, "name": o.name, "reason": why} for o in others]
    else:
        remaining = remove(client, admin, others)
    left = {r["id"] for r in remaining}
    return [{"kind": o.kind, "id": o.id, "name": o.name} for o in objects if o.id not in left], remaining

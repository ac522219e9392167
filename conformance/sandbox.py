"""Set-up: the objects a run creates through the API, all named with a unique run prefix: a regular user, a website
with a share link, a team with a view-only member and a team website, the throwaway targets of items. It seeds the
websites (seed.py) and removes everything at the end (cleanup.py); everything created is recorded in a ledger file
as soon as it exists. Objects that existed before the run are never touched. On a server that cannot delete
websites, the websites (and the team that owns one) are a fixed set named `ucf-keep-<label>` instead, which every
run finds again and reuses, so that nothing piles up.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.cleanup import find_leftovers, remove, still_there, write_ledger
from conformance.client import Credential, Drift, Exchange, UmamiClient
from conformance.errors import ConnectionFailed, Unavailable
from conformance.objects import KEEP_MARK, Created, each, list_rows
from conformance.seed import seed_counts, seed_plan, seed_requests, send_seed
from conformance.versions import Versions

VIEW_ONLY_TEAM_ROLES = ("team-view-only", "team-guest")  # v2.11+ name, 2.10.0 name
# Releases whose DELETE /websites/{id} answers 500 and leaves the website (update and reset change nothing
# either; specs/known-differences.yaml): a run reuses its kept set there instead of creating websites.
WEBSITES_UNDELETABLE = Versions(">=2.10,<2.11")


class SetupFailed(ConnectionFailed):
    """The server refused to create a sandbox object."""


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
        return lambda: next((r for r in list_rows(self.client, auth, path) or [] if r.get(key) == name), None)

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
        only): the owner's own (or the team's) first; a run without a regular user (admin owns its objects, and
        may use any website) then takes another owner's, found server-wide in the admin list, whoever's run made
        it. Only an owner who cannot use any gets one made (the releases that keep a set cannot transfer a
        website either: their updateWebsite is the broken one), so there is one set per owner at most."""
        domain = f"{KEEP_MARK}{label}.example.com"

        def kept(rows: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
            return [r for r in rows or [] if r.get("domain") == domain and isinstance(r.get("id"), str)]

        listed = list_rows(self.client, owner, f"/teams/{team_id}/websites" if team_id else "/websites")
        if listed is None:
            listed = list_rows(self.client, self.admin, "/admin/websites")
        own = [r for r in kept(listed) if team_id or (not r.get("teamId") and r.get("userId") in (None, owner_id))]
        others = [] if own or team_id or owner is not self.admin else [
            r for r in kept(list_rows(self.client, self.admin, "/admin/websites")) if not r.get("teamId")]
        for row in own + others:
            self.client.redactor.add(row.get("shareId"), stand_in=True)
            self._keep("website", row, reused=True, note=None if row in own else
                       "another owner's: this run has no regular user, and admin may use any website")
            return row
        site = self._post_website(f"{KEEP_MARK}{label}", owner, share_id, team_id)
        self._keep("website", site, reused=False)
        return site

    def _keep(self, kind: str, body: dict[str, Any], reused: bool, note: str | None = None) -> None:
        """Note a kept object (as this run first met it: made, or found again), and why it is another owner's
        or one more owner's."""
        self.kept.setdefault(body["id"], {"kind": kind, "id": body["id"], "name": str(body.get("name") or ""),
                                          "reused": reused, **({"note": note} if note else {})})

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

        def website() -> None:
            self.share(site)
            self.seed(site)

        branches = [website]  # independent of the team: side by side when concurrent
        if cred:
            branches.append(lambda: self.team(existing.get("viewer")))
        else:
            self.unavailable["view-only"] = "no regular user to own the sandbox team"
        each(lambda branch: branch(), branches, self.concurrency)

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
            rows = list_rows(self.client, owner, path)
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
        rows = list_rows(self.client, self.owner[1], f"/teams/{team_id}/users") or []
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

    def not_seeded(self, needs: list[str]) -> str | None:
        """Why a part of the seed a case schema expects was left out on this server, or None."""
        skipped = self.seeded.get("skipped", {})
        missing = [f"no {part} seeded ({skipped[part]})" for part in needs if part in skipped]
        return "; ".join(missing) or None

    def seed(self, site: dict[str, Any]) -> None:
        """Seed the website (seed.send_seed: a kept website holding a fresh seed is not seeded again) and note what
        the seed holds (`seeded`) and, for a kept website, whether its traffic was reused or seeded."""
        plan = seed_plan(self.versions)
        kept = self.kept.get(site["id"])
        requests = seed_requests(site, self.prefix, plan)
        fresh = send_seed(self.client, site, requests, self.owner[1] or self.admin, self.concurrency,
                          kept=kept is not None)
        if kept is not None:
            kept["traffic"] = "reused" if fresh else "seeded"
        with self._lock:  # the team's website is seeded beside the run's
            self.seeded = seed_counts(requests, plan, self.seeded.get("reused", 0) + fresh)

    def deleted(self, obj_id: str) -> None:
        """A test item deleted this object (a success of DELETE on its own path)."""
        with self._lock:
            self.gone.add(obj_id)

    def cleanup(self) -> list[dict[str, str]]:
        """Remove everything created, newest first; return what could not be removed. An object a test item
        deleted is skipped unless it is still there (2.10.0 answers 500 to a DELETE or GET of a report that
        is gone, which would read as residue)."""
        gone = list({o.id: o for o in self.created if o.id in self.gone}.values())  # each object asked once
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

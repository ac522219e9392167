"""Cleanup: the run's objects removed in the delete order each release needs (LEFT_BEHIND), whether one is still
there, the objects a killed run left (by their names and from the ledgers), the kept set where the server can now
delete it, and the ledger: everything the set-up creates is recorded in a ledger file as soon as it exists, so that
`umami-conformance cleanup` can remove it after a run that was killed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.client import Credential, Exchange, UmamiClient
from conformance.objects import KEEP_MARK, PREFIX_PATTERN, Created, each, is_kept, list_rows
from conformance.versions import Versions

# Removal order: a team's websites go before the team (Umami's deleteTeam leaves them behind with no user and
# no team), a user's websites before the user. Children that a release's deleteWebsite leaves behind (LEFT_BEHIND)
# go before all of these, through their own DELETE (removal_order).
KINDS = ("report", "website", "team", "user")
CHILD_KINDS = ("segment",)  # objects of a website that the ledger records and that have a DELETE route of their own
SEGMENT_TYPES = ("segment", "cohort")  # GET /websites/{id}/segments requires one (src/lib/schema.ts segmentTypeParam)

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
        rows = list_rows(client, admin, "/reports", {"websiteId": obj.website}) if obj.kind == "report" else None
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

    add("user", list_rows(client, admin, "/admin/users"), "username")
    websites = list_rows(client, admin, "/admin/websites")
    if websites is None:
        for user in [o for o in found.values() if o.kind == "user"]:
            add("website", list_rows(client, admin, "/admin/websites",
                                     {"userId": user.id, "includeOwnedTeams": "true"}), "name")
    add("website", websites, "name")
    add("team", list_rows(client, admin, "/admin/teams") or list_rows(client, admin, "/teams"), "name")
    # Reports hang off websites: those of the runs' websites (named with a run prefix, or kept) are listed there.
    sites = {r["id"] for r in websites or [] if isinstance(r.get("id"), str) and (is_kept(r) or matches(r, "name"))}
    # Segments (2.19+; a release without the route answers 404) are listed per type, under their website.
    for site in sorted(sites | {o.id for o in found.values() if o.kind == "website"}):
        lists = [("report", "/reports", {"websiteId": site})] + [
            ("segment", f"/websites/{site}/segments", {"type": t}) for t in SEGMENT_TYPES]
        for kind, path, params in lists:
            for row in list_rows(client, admin, path, params) or []:
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

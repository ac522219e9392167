"""A small in-memory model of the Umami API the sandbox talks to (websites, users, teams, reports, /send), with
the deletion behaviour of a few releases, for unit tests of seeding and cleanup. It is a model written from the
releases' source and the recordings, not a server: what it shows holds only as far as the model is right."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from packaging.version import Version

from conformance.client import Target, UmamiClient


@dataclass
class FakeUmami:
    """`deletes_websites`: False like 2.10.0 (DELETE /websites/{id} answers 500). `revenue_table`: /send with
    `revenue` > 0 and a `currency` saves a revenue row (2.19+). `revenue_blocks`: a website with revenue rows
    cannot be deleted, nor its owner (2.19.0-3.0.1). `lists_websites_per_user`: /admin/websites needs userId
    (2.16-2.20). Unknown ids: GET /websites|/users answer 200 null, GET /teams 404, GET /reports 500, and every
    DELETE of an unknown id 500 (as 2.10.0 does). Lists as the caller sees them (the caller is not told apart:
    `/websites` are the websites of user "owner"), team creation and members, stats counting every pageview
    sent (all of them recent), a website's reports; `/heartbeat`, and a login for anyone, so that a command can
    reach it over HTTP (`proxy.RecordingProxy(..., transport=fake.transport())`).

    Segments (2.19+, `segment_routes`): POST/GET /websites/{id}/segments (GET needs `type`), GET/DELETE
    /websites/{id}/segments/{segmentId} (an unknown one: GET 200 null before 3.1.0, else 404; DELETE 404).
    `website_delete_leaves_segments`: DELETE /websites/{id} answers 500 while the website has segments (2.19.0-3.0.1;
    later deleteWebsite removes them). `user_delete_leaves_segments`: DELETE /users/{id} answers 500 while one of
    its websites has segments (2.19.0-3.1.0: deleteUser deletes its websites without them). `release()` sets every
    flag as a release's source has it."""

    deletes_websites: bool = True
    revenue_table: bool = False
    revenue_blocks: bool = False
    lists_websites_per_user: bool = False
    segment_routes: bool = False
    website_delete_leaves_segments: bool = False
    user_delete_leaves_segments: bool = False
    null_for_unknown_segment: bool = True
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    websites: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    teams: dict[str, dict[str, Any]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)  # team id -> user ids
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    revenue: list[str] = field(default_factory=list)  # website id per revenue row
    sent: list[dict[str, Any]] = field(default_factory=list)  # /send bodies
    log: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def release(cls, version: str) -> FakeUmami:
        """The model of one release, its flags read from that release's source (not from the sandbox's table):
        src/queries/prisma/website.ts and user.ts (src/queries/admin/ before 2.13), the prisma schema's segment
        (migration 11_add_segment, 2.19.0) and revenue (13_add_revenue, 2.19.0) tables, and the 2.16-2.20
        /admin/websites that needs userId."""
        v = Version(version)
        since = v >= Version("2.19.0")
        return cls(deletes_websites=not Version("2.10") <= v < Version("2.11"), revenue_table=since,
                   revenue_blocks=since and v < Version("3.0.2"),
                   lists_websites_per_user=Version("2.16") <= v < Version("3.0.0"), segment_routes=since,
                   website_delete_leaves_segments=since and v < Version("3.0.2"),
                   user_delete_leaves_segments=since, null_for_unknown_segment=v < Version("3.1.0"))

    def add_segment(self, website_id: str, name: str) -> dict[str, Any]:
        segment = {"id": str(uuid.uuid4()), "websiteId": website_id, "type": "segment", "name": name,
                   "parameters": {"filters": []}}
        self.segments[segment["id"]] = segment
        return segment

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> UmamiClient:
        return UmamiClient(Target(url="http://fake-umami", username="admin", password="umami"),
                           transport=self.transport())

    def add_website(self, name: str, user_id: str | None = None, team_id: str | None = None) -> dict[str, Any]:
        site = {"id": str(uuid.uuid4()), "name": name, "domain": f"{name}.example.com", "userId": user_id,
                "teamId": team_id, "shareId": None}
        self.websites[site["id"]] = site
        return site

    def add_user(self, name: str) -> dict[str, Any]:
        user = {"id": str(uuid.uuid4()), "username": name, "role": "user"}
        self.users[user["id"]] = user
        return user

    def add_team(self, name: str) -> dict[str, Any]:
        team = {"id": str(uuid.uuid4()), "name": name}
        self.teams[team["id"]] = team
        return team

    def handle(self, request: httpx.Request) -> httpx.Response:
        status, body = self._answer(request.method, request.url.path.removeprefix("/api"), request)
        self.log.append((request.method, request.url.path, status))
        return httpx.Response(status, json=body) if body is not ... else httpx.Response(status, text="error")

    def _answer(self, method: str, path: str, request: httpx.Request) -> tuple[int, Any]:
        query = dict(request.url.params)
        data = json.loads(request.content) if request.content else None
        if (method, path) == ("GET", "/heartbeat"):
            return 200, {"ok": True}
        if (method, path) == ("POST", "/auth/login"):
            return 200, {"token": "fake-token-0123456789", "user": {"id": "owner", "username": data["username"]}}
        if (method, path) == ("POST", "/send"):
            self.sent.append(data)
            payload = data["payload"]
            extra = payload.get("data") or {}
            if self.revenue_table and (extra.get("revenue") or 0) > 0 and extra.get("currency"):
                self.revenue.append(payload["website"])
            return 200, {"cache": "x"}
        if (method, path) == ("POST", "/websites"):
            site = self.add_website(data["name"], None if data.get("teamId") else "owner", data.get("teamId"))
            site["shareId"] = data.get("shareId")
            return 200, site
        if method == "GET" and path == "/admin/users":
            return 200, {"data": list(self.users.values()), "count": len(self.users)}
        if method == "GET" and path == "/admin/websites":
            if self.lists_websites_per_user and "userId" not in query:
                return 400, {"error": "userId: Required"}
            rows = [w for w in self.websites.values() if "userId" not in query or w["userId"] == query["userId"]]
            return 200, {"data": rows, "count": len(rows)}
        if (method, path) == ("GET", "/websites"):
            rows = [w for w in self.websites.values() if w["userId"] == "owner"]
            return 200, {"data": rows, "count": len(rows)}
        if (method, path) == ("POST", "/teams"):
            team = self.add_team(data["name"])
            return 200, [team, {"teamId": team["id"], "role": "team-owner"}]  # as 2.10.0 answers
        if (method, path) == ("GET", "/me/teams"):
            return 200, {"data": list(self.teams.values()), "count": len(self.teams)}
        if method == "GET" and path == "/reports" and "websiteId" in query:
            rows = [r for r in self.reports.values() if r["websiteId"] == query["websiteId"]]
            return 200, {"data": rows, "count": len(rows)}
        team_part = re.fullmatch(r"/teams/([^/]+)/(websites|users)", path)
        if team_part and team_part.group(1) in self.teams:
            team_id, part = team_part.groups()
            if part == "websites":
                return 200, {"data": [w for w in self.websites.values() if w["teamId"] == team_id]}
            if method == "POST":
                self.members.setdefault(team_id, []).append(data["userId"])
                return 200, {"teamId": team_id, "userId": data["userId"], "role": data["role"]}
            return 200, {"data": [{"userId": u} for u in self.members.get(team_id, [])]}
        segments = re.fullmatch(r"/websites/([^/]+)/segments(?:/([^/]+))?", path)
        if segments:
            return self._segments(method, *segments.groups(), query, data)
        stats = re.fullmatch(r"/websites/([^/]+)/stats", path)
        if stats and method == "GET":
            views = sum(1 for b in self.sent
                        if b["payload"]["website"] == stats.group(1) and "name" not in b["payload"])
            return 200, {"pageviews": {"value": views, "prev": 0}}
        if method == "GET" and path in ("/teams", "/admin/teams"):
            return (404, ...) if path == "/admin/teams" else (200, {"data": list(self.teams.values())})
        match = re.fullmatch(r"/(websites|users|teams|reports)/([^/]+)", path)
        if not match:
            return 404, ...
        kind, obj_id = match.groups()
        table = getattr(self, kind)
        if method == "GET":
            if obj_id in table:
                return 200, table[obj_id]
            return {"websites": (200, None), "users": (200, None), "teams": (404, ...), "reports": (500, ...)}[kind]
        if method == "DELETE":
            if obj_id not in table:
                return 500, ...
            return self._delete(kind, obj_id)
        return 405, ...

    def _segments(self, method: str, website_id: str, segment_id: str | None, query: dict[str, str],
                  data: Any) -> tuple[int, Any]:
        if not self.segment_routes:
            return 404, ...
        if segment_id is None and method == "POST":
            if website_id not in self.websites:
                return 500, ...
            segment = self.add_segment(website_id, data["name"])
            return 200, segment
        if segment_id is None and method == "GET":
            if query.get("type") not in ("segment", "cohort"):
                return 400, {"error": ["type: Required"]}
            return 200, [g for g in self.segments.values()
                         if g["websiteId"] == website_id and g["type"] == query["type"]]
        segment = self.segments.get(segment_id or "")
        if segment is None or segment["websiteId"] != website_id:
            return (200, None) if method == "GET" and self.null_for_unknown_segment else (404, {"error": "Not found"})
        if method == "GET":
            return 200, segment
        if method == "DELETE":
            del self.segments[segment["id"]]
            return 200, {"ok": True}
        return 405, ...

    def _delete(self, kind: str, obj_id: str) -> tuple[int, Any]:
        if kind == "websites":
            if not self.deletes_websites or (self.revenue_blocks and obj_id in self.revenue) or (
                    self.website_delete_leaves_segments and self._segments_of([obj_id])):
                return 500, ...
            for segment in self._segments_of([obj_id]):  # 3.0.2+: deleteWebsite removes them
                del self.segments[segment]
            del self.websites[obj_id]
        elif kind == "users":
            owned = [w for w in self.websites.values() if w["userId"] == obj_id]
            if self.revenue_blocks and any(w["id"] in self.revenue for w in owned):
                return 500, ...
            if self.user_delete_leaves_segments and self._segments_of([w["id"] for w in owned]):
                return 500, ...
            for site in owned:  # deleteUser removes the user's websites (not its teams' websites)
                del self.websites[site["id"]]
            del self.users[obj_id]
        elif kind == "teams":  # deleteTeam leaves the team's websites behind
            del self.teams[obj_id]
        else:
            del self.reports[obj_id]
        return 200, {"ok": True}

    def _segments_of(self, website_ids: list[str]) -> list[str]:
        return [g["id"] for g in self.segments.values() if g["websiteId"] in website_ids]

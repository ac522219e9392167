"""Replay (`recheck`): answer the run's requests from HAR recordings instead of a server.

The normal engine runs (plugin, sandbox, items); only the httpx transport differs. Each request is
answered by the first rule that finds recorded entries, from the first recording that has them:

1. item: the entries recorded for the same item (`_item`, our own recordings), then rules 2-3 within them;
2. exact: same method, path, query with its time values hidden (`query_key`) and identity;
3. template: the same with the path's route template (`Replay.shape`: ids in path segments replaced, each
   marked as an object the recordings show or an unknown one), so the random values of a run (UUIDs of
   probes, throwaway targets) and other recordings' objects still match, but an unknown-id case is not
   answered with another object's success. Such an answer is about other objects: the run's seeded
   data is not expected in it (the plugin skips case schemas, `Exchange.other_objects`);
4. no route: a path no known route template matches gets the recording's answer to a path that is no
   route (a 404 that is not JSON: Next.js's page), as any Umami would answer it;
otherwise a marker answer (status 599, header `x-ucf-not-recorded`): the item is skipped.

A request's body must have the same fields and deciding values as the entry's (`body_fields`). Within a
key, entries are used first in, first out; an entry whose normalized body equals the request's is
preferred; when a key's entries run out, its last one answers again. The identity is the role behind a
credential, read from the recording's own answers (`identities_of`): a login answer's user (admin role, a
name ending in `viewer`, the first other user; later users are told apart by name), a share answer's token;
plus the `x-umami-*` headers that change what a credential is granted (`x-umami-share-context`). Because
the replayed client sends the stand-ins the recorded answers gave it, identities match across the
recordings (`redacted-<12 hex>` stand-ins never collide).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import httpx

from conformance.client import NOT_RECORDED_HEADER, REPLAYED_HEADER
from conformance.discovery import NOT_EVIDENCE, Route, presence, shadows
from conformance.har import CURRENT_ITEM, load_har
from conformance.redact import REDACTED, SECRET_FIELDS
from conformance.versions import path_regex, template_key

NOT_RECORDED_STATUS = 599  # no server sends it
TIME_PARAMS = frozenset({"startAt", "endAt", "startDate", "endDate"})
EPOCH_MS = re.compile(r"\d{12,13}")
RUN_PREFIX = re.compile(r"ucf-\d{8}t\d{6}-[0-9a-f]{4}-")
CONTEXT_IGNORED = {"x-umami-api-key", "x-umami-share-token", "x-umami-cache"}  # credentials, session cache
DROPPED_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "connection"}

Query = tuple[tuple[str, str], ...]


def query_key(pairs: Iterable[tuple[str, str]]) -> Query:
    """The query with its time values (named time parameters, epoch-ms numbers) as `*`, sorted: a request
    with a time range matches another one, not a request without it."""
    return tuple(sorted((k, "*" if k in TIME_PARAMS or EPOCH_MS.fullmatch(v) else v) for k, v in pairs))


def body_key(raw: bytes | str | None) -> str:
    """A body to compare: JSON canonical with secret fields `***` (passwords differ between runs)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    try:
        data = json.loads(text)
    except ValueError:
        return text

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: REDACTED if k.lower() in SECRET_FIELDS and v not in (None, "") else clean(v)
                    for k, v in value.items()}
        return [clean(v) for v in value] if isinstance(value, list) else value

    return json.dumps(clean(data), sort_keys=True, separators=(",", ":"))


ANY_PARAM = re.compile(r"\{\}")  # a parameter of a template key (`template_key`)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
FREE_TEXT = frozenset({"name", "description", "domain", "username", "slug", "shareId", "title"})


def _value_key(key: str | int, value: Any) -> str:
    """A scalar as it must agree between two requests: ids, times and free text (names, domains) differ
    between runs and recordings; any other value (an enum, a number, a flag) decides the answer."""
    if isinstance(value, str) and (UUID.fullmatch(value) or ISO_TIME.match(value) or RUN_PREFIX.search(value)):
        return "*"
    if isinstance(value, int) and not isinstance(value, bool) and EPOCH_MS.fullmatch(str(value)):
        return "*"
    return "*" if key in FREE_TEXT else json.dumps(value)


def body_fields(body: str) -> tuple[str, ...]:
    """The JSON paths of a body's fields and array items (`body_key` form), with the scalar values that
    decide an answer (`_value_key`): a missing field, a one-step funnel or an unknown metric is another
    request than the recorded success."""
    try:
        data = json.loads(body)
    except ValueError:
        return ()
    found: list[str] = []

    def walk(value: Any, path: str, key: str | int) -> None:
        if not isinstance(value, (dict, list)):
            found.append(f"{path}={_value_key(key, value)}")
            return
        found.append(path)
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in children:
            walk(v, f"{path}[{k}]" if isinstance(k, int) else f"{path}.{k}", k)

    walk(data, "$", "")
    return tuple(sorted(found))


def credential(lower: Mapping[str, str]) -> str | None:
    """The credential a request carries (headers by lowercase name): a bearer token, a share token or an API key."""
    if "authorization" in lower:
        return lower["authorization"].partition(" ")[2] or lower["authorization"]
    return lower.get("x-umami-share-token") or lower.get("x-umami-api-key")


def identity(headers: Mapping[str, str], identities: Mapping[str, str]) -> str:
    """Who a request is: `anonymous`, the role behind its credential, or `other` (unknown credential);
    with the Umami headers that change what the server grants (`x-umami-share-context: 1`)."""
    items = [(k.lower(), v) for k, v in headers.items()]
    lower = dict(items)
    token = credential(lower)
    who = "admin" if "x-umami-api-key" in lower else "anonymous" if token is None else identities.get(token, "other")
    context = sorted(f"{k}={v}" for k, v in items if k.startswith("x-umami-") and k not in CONTEXT_IGNORED)
    return " ".join([who, *context])


class Templates:
    """Concrete path -> its route template key, from the spec paths and the route inventory."""

    def __init__(self, templates: Iterable[str]) -> None:
        unique: dict[str, str] = {}
        for t in templates:
            unique.setdefault(template_key(t), t)  # the first spelling names the template (`written`)
        self.written = unique
        # Literal segments win over parameters (`/teams/join` before `/teams/{teamId}`).
        self._patterns = sorted(((path_regex(t), key) for key, t in unique.items()),
                                key=lambda p: -p[1].count("/") + p[1].count("{}"))
        self._cache: dict[str, str | None] = {}

    def of(self, path: str) -> str | None:
        if path not in self._cache:
            self._cache[path] = next((key for rx, key in self._patterns if rx.fullmatch(path)), None)
        return self._cache[path]


@dataclass
class Entry:
    """One recorded exchange, reduced to what matching needs and what the answer replays."""

    method: str
    path: str  # relative to the API base
    query: Query
    identity: str
    body: str
    item: str | None
    status: int
    headers: list[tuple[str, str]]
    content: bytes
    template: str | None = None

    @cached_property
    def fields(self) -> tuple[str, ...]:
        return body_fields(self.body)

    @property
    def no_route(self) -> bool:
        """The answer to a path that is no route: a 404 page, not a JSON error."""
        ctype = next((v for k, v in self.headers if k.lower() == "content-type"), "")
        return self.method == "GET" and self.status == 404 and "json" not in ctype

    def response(self, request: httpx.Request) -> httpx.Response:
        headers = [(k, v) for k, v in self.headers if k.lower() not in DROPPED_HEADERS]
        return httpx.Response(self.status, headers=headers, content=self.content, request=request)


@dataclass
class Recording:
    """The entries of one HAR file and what it tells: identities of its credentials, run prefix, users."""

    name: str
    entries: list[Entry]
    identities: dict[str, str]
    prefix: str | None
    users: dict[str, str]  # sandbox label (user, viewer) -> username that logged in as it

    @classmethod
    def load(cls, path: Path) -> Recording:
        return cls.from_har(load_har(path), Path(path).name)

    @classmethod
    def from_har(cls, har: dict[str, Any], name: str = "recording") -> Recording:
        log = har["log"]
        base = log.get("_apiBase", "/api")
        raw = log["entries"]
        identities, users = identities_of(raw, base)
        entries = []
        for e in raw:
            rq, rs = e["request"], e["response"]
            url = _url(rq["url"])
            headers = {h["name"]: h["value"] for h in rq.get("headers", [])}
            content = rs.get("content", {})
            text = content.get("text", "")
            body = base64.b64decode(text) if content.get("encoding") == "base64" else text.encode()
            entries.append(Entry(rq["method"], _relative(url.path, base), query_key(url.params.multi_items()),
                                 identity(headers, identities), body_key((rq.get("postData") or {}).get("text")),
                                 e.get("_item"), rs["status"], [(h["name"], h["value"]) for h in rs["headers"]],
                                 body))
        sent = (e["request"]["url"] + (e["request"].get("postData") or {}).get("text", "") for e in raw)
        found = Counter(m for text in sent for m in RUN_PREFIX.findall(text))
        return cls(name, entries, identities, found.most_common(1)[0][0] if found else None, users)


def identities_of(entries: list[dict[str, Any]], base: str = "/api") -> tuple[dict[str, str], dict[str, str]]:
    """Credential -> role, from the recording's login answers (user role and name) and share answers;
    and the usernames that logged in as the sandbox's `user` and `viewer`."""
    identities: dict[str, str] = {}
    users: dict[str, str] = {}
    for e in entries:
        rq, rs = e["request"], e["response"]
        if rs["status"] != 200:
            continue
        path = _relative(_url(rq["url"]).path, base)
        if not (path == "/auth/login" or path.startswith("/share/")):
            continue
        try:
            body = json.loads(rs.get("content", {}).get("text") or "null")
        except ValueError:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("token"), str):
            continue
        if path.startswith("/share/"):
            identities.setdefault(body["token"], "share")
            continue
        user = body.get("user") or {}
        name = str(user.get("username", ""))
        if user.get("role") == "admin" or user.get("isAdmin"):
            role = "admin"
        elif name.endswith("viewer"):
            role = "view-only"
            users.setdefault("viewer", name)
        elif users.setdefault("user", name) == name:
            role = "user"
        else:
            role = f"user:{name}"
        identities.setdefault(body["token"], role)
    return identities, users


@lru_cache(maxsize=8192)
def _url(text: str) -> httpx.URL:
    """A recorded URL, parsed once: loading a recording asks for the successes' twice (`identities_of`)."""
    return httpx.URL(text)


def _relative(path: str, base: str) -> str:
    """A URL path relative to the API base (`/api/websites` -> `/websites`)."""
    return path[len(base):] or "/" if base and (path == base or path.startswith(base + "/")) else path


@dataclass
class Replay(httpx.BaseTransport):
    """An httpx transport answering from recordings (the first one is the primary: its prefix and users).

    Each answer says how it was found in a header `x-ucf-replayed` (item, exact, template, no-route).
    """

    recordings: list[Recording]
    templates: Templates
    api_base: str = "/api"
    _used: set[int] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.identities: dict[str, str] = {}
        self.known: set[str] = set()
        for rec in self.recordings:
            for token, role in rec.identities.items():
                self.identities.setdefault(token, role)
            for e in rec.entries:
                self.known.update(_strings(e.content))
        self._no_route = next((e for rec in self.recordings for e in rec.entries if e.no_route), None)
        self._ignored: tuple[str, ...] = ()
        self._index()

    def _index(self) -> None:
        self._items: dict[str, list[Entry]] = {}
        self._exact: list[dict[tuple[Any, ...], list[Entry]]] = []
        self._loose: list[dict[tuple[Any, ...], list[Entry]]] = []
        for rec in self.recordings:
            exact: dict[tuple[Any, ...], list[Entry]] = {}
            loose: dict[tuple[Any, ...], list[Entry]] = {}
            for e in rec.entries:
                e.template = self.shape(e.path, e.identity)
                exact.setdefault(_key(e.method, e.path, e.query, e.identity), []).append(e)
                loose.setdefault(_key(e.method, e.template, e.query, e.identity), []).append(e)
                if e.item:
                    self._items.setdefault(e.item, []).append(e)
            self._exact.append(exact)
            self._loose.append(loose)

    @classmethod
    def load(cls, paths: list[Path], templates: Iterable[str]) -> Replay:
        return cls([Recording.load(p) for p in paths], Templates(templates))

    def ignore(self, header: str) -> None:
        """A header the recorded server does not heed is no part of an identity: Umami 2.x ignores
        `x-umami-share-context`, which today's client sends and older recordings lack."""
        self._ignored += (header.lower() + "=",)
        for e in (e for rec in self.recordings for e in rec.entries):
            e.identity = self._strip(e.identity)
        self._index()

    def _strip(self, who: str) -> str:
        if not self._ignored:
            return who
        return " ".join(part for part in who.split(" ") if not part.startswith(self._ignored))

    @property
    def prefix(self) -> str | None:
        return self.recordings[0].prefix if self.recordings else None

    @property
    def users(self) -> dict[str, str]:
        return self.recordings[0].users if self.recordings else {}

    def describe(self) -> str:
        return "recording: " + " + ".join(r.name for r in self.recordings)

    def observations(self) -> list[tuple[str, bool]]:
        """What the recorded GETs tell of the server's routes: each distinct path, and whether it reached a
        route (any answer but the recording's no-route page; gateway errors tell nothing). For telling the
        version of a recorded server (`versions.fingerprint`)."""
        if self._no_route is None:
            return []
        found: dict[str, bool] = {}
        for e in (e for rec in self.recordings for e in rec.entries if e.method == "GET"):
            if e.status not in NOT_EVIDENCE:
                found.setdefault(e.path, not e.no_route)
        return sorted(found.items())

    def routes(self, templates: Templates) -> list[Route]:
        """What the recorded GETs tell of each route template (results.json `routes`, source `recording`):
        present with the first answer that reached a route, when any did; else error with the first 5xx;
        else absent (the recording's no-route page). Transient answers (429, 502-504) tell nothing. Nor does
        a 4xx or 5xx to a literal path that a parameterized template can answer (`/websites/charts` reaches
        `/websites/{websiteId}` where it is no route): only a success or the no-route page count there."""
        written = list(templates.written.values())
        shadowed: dict[str, bool] = {}  # per template: whether another one can answer its paths
        rank = {"present": 0, "error": 1, "absent": 2}
        found: dict[str, Route] = {}
        for e in (e for rec in self.recordings for e in rec.entries if e.method == "GET"):
            key = templates.of(e.path)
            if key is None or e.status in NOT_EVIDENCE or e.status == NOT_RECORDED_STATUS:
                continue
            template = templates.written[key]
            if not (e.no_route or 200 <= e.status < 300):
                if template not in shadowed:
                    shadowed[template] = bool(shadows(template, written))
                if shadowed[template]:
                    continue
            ctype = next((v for k, v in e.headers if k.lower() == "content-type"), "").split(";")[0].strip()
            route = Route(template, e.status, ctype or None, presence(e.status, e.no_route), "recording")
            if key not in found or rank[route.presence] < rank[found[key].presence]:
                found[key] = route
        return list(found.values())

    def shape(self, path: str, who: str) -> str | None:
        """The path's route template, each parameter `{}` for an object the recordings show (an id in their
        answers) and `{?}` for an unknown one, so that an unknown-id case is not answered with another
        object's success. Anonymous requests keep `{}`: they are refused before any lookup. None: no route."""
        template = self.templates.of(path)
        if template is None or who.split(" ")[0] == "anonymous":
            return template
        segments = zip(path.strip("/").split("/"), template.strip("/").split("/"), strict=False)
        values = iter(v for v, t in segments if t == "{}")
        return ANY_PARAM.sub(lambda _: "{}" if next(values, "") in self.known else "{?}", template)

    def match(self, method: str, path: str, query: Query, who: str, body: str,
              item: str | None) -> tuple[Entry, str] | None:
        """The recorded entry that answers this request (marked used) and the rule that found it, or None."""
        shape = self.shape(path, who)
        exact, loose = _key(method, path, query, who), _key(method, shape, query, who)
        fields = body_fields(body)
        with self._lock:
            scoped = self._items.get(item or "", [])
            for key, rule in ((exact, "exact"), (loose, "template")):
                found = [e for e in scoped if key and key == _key(e.method, e.path if rule == "exact" else e.template,
                                                                   e.query, e.identity) and e.fields == fields]
                if found:
                    return self._pick(found, body), rule
            for key, index, rule in ((exact, self._exact, "exact"), (loose, self._loose, "template")):
                for by_key in index:
                    found = [e for e in by_key.get(key, []) if e.fields == fields] if key else []
                    if found:
                        return self._pick(found, body), rule
        return (self._no_route, "no-route") if shape is None and self._no_route else None

    def _pick(self, candidates: list[Entry], body: str) -> Entry:
        """First in, first out among entries with the same body fields (a case that lacks a field is
        another request), preferring the same body (a used one again before another body: a throwaway
        target's random name differs, a login's user does not)."""
        fresh = [e for e in candidates if id(e) not in self._used]
        latest = candidates[::-1]
        chosen = (next((e for e in fresh if e.body == body), None) or next((e for e in latest if e.body == body), None)
                  or (fresh or latest)[0])
        self._used.add(id(chosen))
        return chosen

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        found = self.match(request.method, _relative(request.url.path, self.api_base),
                           query_key(request.url.params.multi_items()),
                           self._strip(identity(request.headers, self.identities)),
                           body_key(request.content), CURRENT_ITEM.get())
        if found is None:
            return httpx.Response(NOT_RECORDED_STATUS, request=request,
                                  text=f"not in the recording: {request.method} {request.url.path}",
                                  headers={NOT_RECORDED_HEADER: "1", "content-type": "text/plain"})
        response = found[0].response(request)
        response.headers[REPLAYED_HEADER] = found[1]
        return response


def _strings(content: bytes) -> set[str]:
    """Every string value of a JSON answer (the ids of the objects it shows)."""
    try:
        data = json.loads(content)
    except ValueError:
        return set()
    found: set[str] = set()
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found


def _key(method: str, path: str | None, query: Query, who: str) -> tuple[Any, ...] | None:
    return (method, path, query, who) if path else None

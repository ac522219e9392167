"""Discovery: endpoints the server has that no spec describes, and the route evidence of every probe.

Candidates come from specs/discovery.yaml and from an OpenAPI document the server publishes. A
candidate exists when its answer differs (status or media type) from the answer to a path that
surely does not exist; a 405 therefore counts as an existing route. Every probe's answer is kept
(`Prober.seen`) for results.json `routes`: present, absent (the no-route answer) or error (5xx).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conformance.client import Credential, Exchange, UmamiClient
from conformance.errors import Unavailable
from conformance.model import SpecSet
from conformance.versions import template_key

PUBLISHED = ("/openapi.json", "/../openapi.json")
NOT_EVIDENCE = frozenset({429, 502, 503, 504})  # transient answers tell nothing about a route


@dataclass(frozen=True)
class Route:
    """What one GET to a route template answered (results.json `routes`)."""

    path: str  # the template as the specs or the inventory write it
    status: int
    content_type: str | None  # media type without parameters
    presence: str  # present | absent | error
    source: str  # probe | recording

    def as_dict(self) -> dict[str, Any]:
        return {"method": "GET", "path": self.path, "status": self.status, "content_type": self.content_type,
                "presence": self.presence, "source": self.source}


def presence(status: int, no_route: bool) -> str:
    """absent: the server's no-route answer; error: a 5xx; present: any other (2xx, 4xx, 405)."""
    return "absent" if no_route else "error" if status >= 500 else "present"


def route_templates(specs: SpecSet) -> list[str]:
    """Every path template worth probing, one per template key, spelled as the specs write it (a named
    parameter before v1's `{id}`), else as the discovery candidates, else as the route inventory."""
    inventory = list(specs.inventory.templates) if specs.inventory else []
    spelled: dict[str, str] = {}
    for path in [*sorted({e.path for e in specs.endpoints}, key=lambda p: (p.count("{id}"), p)),
                 *specs.candidates, *inventory]:
        spelled.setdefault(template_key(path), path)
    return sorted(spelled.values())


def routes_list(routes: Iterable[Route]) -> list[dict[str, Any]]:
    return [r.as_dict() for r in sorted(routes, key=lambda r: r.path)]


def undescribed(paths: list[str], endpoints: list[Any]) -> list[str]:
    """The paths no spec endpoint describes (compared as path templates)."""
    covered = {template_key(e.path) for e in endpoints}
    return [p for p in paths if template_key(p) not in covered]


def fill(path: str, context: dict[str, Any]) -> str:
    """Path parameters: the sandbox website for {websiteId}, a random UUID for any other id."""
    website = (context.get("website") or {}).get("id")

    def value(match: re.Match[str]) -> str:
        return website if match.group(1) == "websiteId" and website else str(uuid.uuid4())

    return re.sub(r"\{([^}]+)\}", value, path)


def signature(ex: Exchange) -> tuple[int, str]:
    return ex.response.status_code, ex.response.headers.get("content-type", "").split(";")[0].strip()


def shadows(template: str, templates: Iterable[str]) -> dict[str, list[int]]:
    """The other known templates that can answer a GET to `template` on a server without its route: they
    have a parameter where `template` has a literal segment and match it elsewhere (`/reports/{reportId}`
    for `/reports/goal`); each with the positions of those segments."""
    mine = template.strip("/").split("/")
    key = template_key(template)
    found: dict[str, list[int]] = {}
    for other in templates:
        theirs = other.strip("/").split("/")
        if len(theirs) != len(mine) or template_key(other) == key:
            continue
        pairs = list(zip(mine, theirs, strict=True))
        if all(a == b or b.startswith("{") for a, b in pairs) and not any(
                a.startswith("{") and not b.startswith("{") for a, b in pairs):
            found[other] = [i for i, (a, b) in enumerate(pairs) if b.startswith("{") and not a.startswith("{")]
    return found


class Prober:
    """Knows what 'no such route' looks like on this server; remembers what each probed template answered
    (`seen`, by template key, the first answer that is evidence). `templates`: the known route templates,
    to tell a literal path from a parameterized route it falls into."""

    def __init__(self, client: UmamiClient, auth: Credential | None, templates: Iterable[str] = ()) -> None:
        self.client, self.auth = client, auth
        self.templates = list(templates)
        self.seen: dict[str, Route] = {}
        missing = f"/ucf-no-such-route-{secrets.token_hex(4)}"
        self.baseline = {signature(client.request("GET", missing, auth=auth).settled()),
                         signature(client.request("GET", f"/websites/{uuid.uuid4()}{missing}", auth=auth).settled())}

    def exists(self, template: str, context: dict[str, Any]) -> Exchange | None:
        """GET the template (parameters filled): the exchange when a route answered, None for no route.
        No route, too, when a parameterized route answered it: a path that a known template shadows is
        asked again with its literal segments replaced by a surely-missing word, and answers alike
        (status, media type, body) mean the literal route is not there. A transient answer (429, 502-504
        after the retries) raises Unavailable and is not remembered."""
        path = fill(template, context)
        ex = self._get(path)
        status, ctype = signature(ex)
        missing = (status, ctype) in self.baseline
        # The most specific shadowing route: the fewest literal segments replaced.
        shadowed = min(shadows(template, self.templates).values(), key=len, default=[]) if not missing else []
        if shadowed:
            word = f"ucf-no-such-route-{secrets.token_hex(4)}"
            segments = path.strip("/").split("/")
            literals = [segments[i] for i in shadowed]
            other = self._get("/" + "/".join(word if i in shadowed else s for i, s in enumerate(segments)))
            missing = signature(other) == (status, ctype) and _text(ex, literals) == _text(other, [word])
        self.seen.setdefault(template_key(template),
                             Route(template, status, ctype or None, presence(status, missing), "probe"))
        return None if missing else ex

    def _get(self, path: str) -> Exchange:
        ex = self.client.request("GET", path, auth=self.auth).settled()
        if ex.response.status_code == 429:
            raise Unavailable(f"GET {ex.request.url.path} answered HTTP 429 (tried {ex.attempts} "
                              f"time{'s' if ex.attempts > 1 else ''})", ex.attempts)
        return ex

    def routes(self) -> list[dict[str, Any]]:
        return routes_list(self.seen.values())

    def published_contract(self) -> dict[str, Any] | None:
        """The OpenAPI document the server serves, if any."""
        for path in PUBLISHED:
            ex = self.client.request("GET", path, auth=self.auth)
            body = ex.json()
            if ex.response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("paths"), dict):
                return body
        return None

    def published_paths(self) -> list[str]:
        doc = self.published_contract()
        return sorted(p.removeprefix("/api") for p in doc["paths"]) if doc else []


def _text(ex: Exchange, words: list[str]) -> str:
    """The body with the path's own words hidden: an answer that echoes the path compares equal."""
    text = ex.response.text
    for word in words:
        text = text.replace(word, "*")
    return text

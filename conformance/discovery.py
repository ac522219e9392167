"""Discovery: endpoints the server has that no spec describes.

Candidates come from specs/discovery.yaml and from an OpenAPI document the server publishes. A
candidate exists when its answer differs (status or media type) from the answer to a path that
surely does not exist; a 405 therefore counts as an existing route.
"""

from __future__ import annotations

import re
import secrets
import uuid
from typing import Any

from conformance.client import Credential, Exchange, UmamiClient
from conformance.versions import template_key

PUBLISHED = ("/openapi.json", "/../openapi.json")


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


class Prober:
    """Knows what 'no such route' looks like on this server."""

    def __init__(self, client: UmamiClient, auth: Credential | None) -> None:
        self.client, self.auth = client, auth
        missing = f"/ucf-no-such-route-{secrets.token_hex(4)}"
        self.baseline = {signature(client.request("GET", missing, auth=auth).settled()),
                         signature(client.request("GET", f"/websites/{uuid.uuid4()}{missing}", auth=auth).settled())}

    def exists(self, path: str) -> Exchange | None:
        ex = self.client.request("GET", path, auth=self.auth).settled()  # a gateway error is no route
        return None if signature(ex) in self.baseline else ex

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

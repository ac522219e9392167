"""The set-up's drift (answers the session's set-up worked around) as item results: a drift there is a finding like
any other, under the endpoint the request went to, case `setup`."""

from __future__ import annotations

import json
import re

import httpx

from conformance.checks import Finding
from conformance.client import Exchange
from conformance.execute import answer
from conformance.items import Item, ItemResult
from conformance.known import apply_known
from conformance.model import Case, Endpoint
from conformance.session import Session
from conformance.versions import Versions, path_regex
from umami_results.vocabulary import Kind, Outcome


def setup_results(session: Session) -> list[ItemResult]:
    """The set-up's drift (answers the run worked around) as results of the endpoints the requests went to,
    case `setup`, one per endpoint and role: a drift there is a finding like any other."""
    results: dict[str, ItemResult] = {}
    base = httpx.URL(session.options.target.api_base).path.rstrip("/")
    for drift in session.client.drift:
        ex = drift.exchange
        path = ex.request.url.path.removeprefix(base) or "/"
        ep = _endpoint_of(session, ex.request.method, path)
        role = _role_of(session, ex)
        endpoint = ep or Endpoint(id=f"setup/{ex.request.method.lower()}{re.sub(r'[^a-z0-9]+', '-', path)}",
                                  area="setup", method=ex.request.method, path=path, versions=Versions(""),
                                  source="the run's set-up", summary="", auth={}, cases=[], responses=[],
                                  file=session.specs.root, line=1)
        item_id = f"{endpoint.id}[{role}-setup]"
        result = results.get(item_id)
        if result is None:
            case = Case(name="setup", line=1, status=drift.expected_status)
            result = results[item_id] = ItemResult(Item(item_id, endpoint, case, role, Kind.SETUP),
                                                   session.server_version, duration=ex.seconds)
            result.answer = answer(ex, session.client.redactor)
            result.answer.pop("shape")
        finding = Finding(drift.cls, endpoint.id, drift.json_path, drift.expected, drift.actual, drift.message,
                          result.answer["curl"])
        apply_known([finding], session.known, role, "setup", session.server_versions)
        result.findings.append(finding)
        result.reason = "; ".join(f.message for f in result.findings)
        result.outcome = Outcome.FAILED if result.open_findings else Outcome.KNOWN
    return list(results.values())


def _endpoint_of(session: Session, method: str, path: str) -> Endpoint | None:
    """The spec endpoint a request goes to (on this server's versions), the one with fewest parameters."""
    found = [ep for ep in session.specs.endpoints if ep.method == method and path_regex(ep.path).fullmatch(path)
             and (session.detected is None or session.detected.applies(ep.versions))]
    return min(found, key=lambda ep: ep.path.count("{"), default=None)


def _role_of(session: Session, ex: Exchange) -> str:
    """Whose request it was: the role whose credential it carried (a login: whose username it sent)."""
    if ex.request.url.path.endswith("/auth/login"):
        try:
            username = json.loads(ex.request.content).get("username")
        except (ValueError, AttributeError):
            username = None
        sandbox = session.sandbox
        labels = {**{label: f"{sandbox.prefix}{label}" for label in sandbox.passwords}, **sandbox.logins} \
            if sandbox else {}
        label = next((label for label, name in labels.items() if name == username), None)
        return {"user": "user", "viewer": "view-only"}.get(label or "", "admin")
    for role, credential in session.credentials.items():
        if ex.request.headers.get(credential.header) == credential.value:
            return role
    return "admin" if {"authorization", "x-umami-api-key"} & set(ex.request.headers) else "anonymous"

"""Executing one item (`execute_item(context, item) -> ItemResult`): its request, the checks of the answer, the known
differences; a skip, a transient failure and a tool error are outcomes too."""

from __future__ import annotations

import time
import traceback
from collections import Counter
from typing import Any

import httpx

from conformance import discovery, negative
from conformance.checks import Finding, check_exchange, schema_findings, security_findings, with_security
from conformance.client import Credential, Exchange, Tally, tallied
from conformance.context import ExecutionContext
from conformance.errors import ConformanceError, ServerGone, Unavailable
from conformance.har import exchange_item
from conformance.items import Item, ItemResult, Skip
from conformance.known import apply_known
from conformance.model import Endpoint
from conformance.redact import Redactor
from conformance.results import example_body, shape
from conformance.values import MissingValue, render, word
from conformance.versions import template_key
from umami_results.vocabulary import Kind, Outcome, SkipCode

READ_ONLY_NO_WEBSITE = "read-only run without --umami-website-id"


def execute_item(ctx: ExecutionContext, item: Item) -> ItemResult:
    """Check one item against the server (or the recordings). Never raises for the item's own sake: a skip, a
    transient failure, a finding and a tool error are outcomes. Only `ServerGone` (the server stopped
    answering) escapes: the run cannot go on. Every exchange is recorded (and replayed) under the item's id."""
    with exchange_item(item.id), tallied() as tally:
        return _execute_item(ctx, item, tally)


def _execute_item(ctx: ExecutionContext, item: Item, tally: Tally) -> ItemResult:
    result = ItemResult(item, ctx.server_version)
    skip = skip_reason(item, ctx)
    if skip:
        return result.skipped(skip)
    start = time.perf_counter()
    exchange = None
    try:
        findings, checked, exchange = _execute(item, ctx, result)
    except MissingValue as exc:
        return result.skipped(_missing_reason(exc.args[0], ctx))
    except ServerGone:
        raise
    except Unavailable as exc:  # transient after the retries: not checked, and never drift
        result.outcome, result.reason = Outcome.UNAVAILABLE, ctx.redactor.text(str(exc))
        return result
    except ConformanceError as exc:
        if not tally.not_recorded:
            result.reason = ctx.redactor.text(str(exc))
            return result  # ERROR: a failure of the run's own requests (e.g. a login), reported, not raised
        findings, checked = [], False  # a target or login the replay lacks
    except Exception as exc:  # a bug of the tool must not end the run: it is reported per item
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        result.reason = ctx.redactor.text(f"{type(exc).__name__}: {exc} ({frame.filename.rsplit('/', 1)[-1]}"
                                                     f":{frame.lineno})")
        return result
    finally:
        result.duration = time.perf_counter() - start
        result.retries = tally.retries
    if tally.not_recorded:
        return result.skipped(Skip(SkipCode.NOT_RECORDED, "not in the recording"))
    apply_known(findings, ctx.known, item.role, item.case.name, ctx.server_versions)
    contract = ctx.contract() if findings and exchange is not None else None
    for finding in findings if contract else []:
        finding.contract = contract.verdict(finding, item.endpoint.method, item.endpoint.path, exchange)
    result.schema_checked, result.findings = checked, findings
    if exchange is not None:
        result.answer = answer(exchange, ctx.redactor)
    if result.open_findings:
        result.outcome = Outcome.FAILED
    else:
        result.outcome = Outcome.KNOWN if findings else (Outcome.PASSED if checked else Outcome.PASSED_NO_SCHEMA)
    return result


def answer(exchange: Exchange, redactor: Redactor) -> dict[str, Any]:
    """What results.json says of an answer: status, content type, URL, the request as curl, an example, the shape."""
    body = exchange.body
    return {"actual_status": exchange.response.status_code,
            "content_type": exchange.response.headers.get("content-type"),
            "url": redactor.text(_without_query(exchange.request.url)),
            "curl": redactor.curl(exchange.request),
            "example": example_body(exchange, redactor),
            "shape": shape(body) if body is not None else None}


def _without_query(url: httpx.URL) -> str:
    """The URL as text without its query, as `copy_with(query=None)` gives it (without parsing it again: the
    first `?` of a parsed URL starts its query)."""
    return str(url.copy_with(query=None)) if url.fragment else str(url).partition("?")[0]


def skip_reason(item: Item, ctx: ExecutionContext) -> Skip | None:
    """Why the item is not checked on this server and in this run, or None."""
    ep, case = item.endpoint, item.case
    detected = ctx.detected
    if detected is not None and not detected.applies(ep.versions):
        return Skip(SkipCode.OUT_OF_RANGE,
                    f"not on this server: applies to Umami {ep.versions}, server is {detected.range}")
    if detected is not None and not detected.applies(case.versions):
        return Skip(SkipCode.CASE_OUT_OF_RANGE,
                    f"not on this server: case applies to Umami {case.versions}, server is {detected.range}")
    if ctx.read_only and (ep.writes or case.target):
        return Skip(SkipCode.READ_ONLY, "read-only run: write endpoint not checked")
    if item.role in ctx.unavailable:
        return Skip(SkipCode.ROLE_UNAVAILABLE, f"role {item.role!r} not available: {ctx.unavailable[item.role]}")
    if item.role != "anonymous" and item.role not in ctx.credentials:
        return Skip(SkipCode.NO_CREDENTIAL, f"role {item.role!r} has no credentials in this run")
    if case.creates == "website" and ctx.sandbox is not None and ctx.sandbox.keeps \
            and 200 <= item.expected_status < 300:
        return Skip(SkipCode.UNDELETABLE,
                    "not checked on this server: it cannot delete websites (Umami 2.10.x: DELETE answers 500), so "
                    "every website created would stay for good; runs reuse a kept set (ucf-keep-*) instead")
    return None


def _missing_reason(name: str, ctx: ExecutionContext) -> Skip:
    """Why an item that needs `${name}` is skipped."""
    if ctx.read_only and name.split(".")[0] == "website" and not ctx.website_id:
        return Skip(SkipCode.NO_WEBSITE, f"{READ_ONLY_NO_WEBSITE}: there is no existing website to read")
    if ctx.read_only:
        return Skip(SkipCode.READ_ONLY,
                    f"read-only run: needs {word(name)}, which only the sandbox (not created in read-only runs) has")
    return Skip(SkipCode.MISSING_VALUE, f"needs {word(name)}, which this run does not have")


def _execute(item: Item, ctx: ExecutionContext, result: ItemResult) -> tuple[list[Finding], bool, Exchange | None]:
    if item.kind is Kind.NEGATIVE:
        return _negative(item, ctx, result)
    if item.kind is Kind.DISCOVERY:
        return _discover(item, ctx)
    if item.kind is Kind.ROUTES:
        return _routes(ctx, result)
    ep, case = item.endpoint, item.case
    context = dict(ctx.values)
    if case.target:
        assert ctx.sandbox is not None
        context["target"] = ctx.sandbox.target(case.target)
    path = ep.path.format(**{k: render(v, context) for k, v in case.path_params.items()})
    auth = ctx.credentials.get(item.role)
    if case.fresh_login and auth is not None:
        auth = _fresh_login(item.role, ctx) or auth
    exchange = ctx.client.request(ep.method, path, auth=auth, params=render(case.query, context) or None,
                                      json_body=render(case.body, context))
    if exchange.not_recorded:
        return [], False, exchange  # skipped: there is no answer to check
    exchange.settled()  # a gateway error that outlived the retries: the item is unavailable
    if case.creates and ctx.sandbox is not None and exchange.response.is_success:
        ctx.sandbox.adopt(case.creates, exchange.json())
    if case.target and ep.method == "DELETE" and exchange.response.is_success \
            and path == f"/{case.target}s/{context['target']['id']}":
        ctx.sandbox.deleted(context["target"]["id"])
    findings, checked = _check_versions(item, exchange, ctx, context)
    # Case schemas state what the sandbox's seeded traffic must give: without a sandbox (read-only)
    # there is no seed to expect, and only the endpoint's schema applies; nor in a replayed answer
    # about other objects (recheck).
    seeded = ctx.sandbox is not None and not exchange.other_objects
    if seeded and case.schema_uri and exchange.response.status_code == item.expected_status \
            and exchange.response.is_success:
        missing = ctx.sandbox.not_seeded(case.needs)
        if missing:  # the sandbox left this out on purpose (results.json seeded.skipped says why)
            result.reason = f"case schema not applied: {missing}"
        else:
            findings += schema_findings(ep, ctx.specs.validator_for(case.schema_uri), exchange.body,
                                        ctx.redactor.curl(exchange.request), ctx.redactor,
                                        exchange.replayed)
    return with_security(_security(ep, exchange, ctx), findings), checked, exchange


def _negative(item: Item, ctx: ExecutionContext, result: ItemResult) -> tuple[list[Finding], bool, Exchange | None]:
    """Generated bad inputs for one endpoint; a 5xx is a finding with the smallest request."""
    ep = item.endpoint
    parts = negative.render_parts(item.case, lambda v: render(v, ctx.values))
    failing, sent = negative.find_server_errors(ctx.client, ep, ctx.credentials.get(item.role), parts,
                                                ctx.negative)
    result.reason = f"{sent} generated requests" + ("" if failing else ", no 5xx")
    if failing is None:
        return [], False, None
    curl = ctx.redactor.curl(failing.request)
    return [Finding("status-changed", ep.id, "$", "4xx", failing.response.status_code,
                    "server error on a generated bad input (smallest request hypothesis found)", curl)], \
        False, failing


def _discover(item: Item, ctx: ExecutionContext) -> tuple[list[Finding], bool, Exchange | None]:
    """One candidate path: an existing route that no spec describes is a finding."""
    prober = ctx.prober()
    # Candidates were filtered at collection; the server's own document only now.
    paths = (discovery.undescribed(prober.published_paths(), ctx.specs.endpoints)
             if item.case.name == "published" else [item.endpoint.path])
    findings: list[Finding] = []
    last = None
    for path in paths:
        found = prober.exists(path, ctx.values)
        if found is not None:
            last = found
            curl = ctx.redactor.curl(found.request)
            findings += security_findings(item.endpoint, found, curl, own=_own_credentials(found))
            findings.append(Finding("undocumented-endpoint", item.endpoint.id, path, "no route or a spec",
                                    f"HTTP {found.response.status_code}",
                                    f"GET {path} exists on the server; no spec describes it", curl))
    return findings, False, last


def _routes(ctx: ExecutionContext, result: ItemResult) -> tuple[list[Finding], bool, Exchange | None]:
    """Route evidence, not a check: GET every template of the specs, the candidates and the route inventory
    (those an undocumented item probed already are not sent again); results.json `routes` lists the answers."""
    prober = ctx.prober()
    templates = discovery.route_templates(ctx.specs)
    failed = []
    for template in templates:
        if template_key(template) not in prober.seen:
            try:
                prober.exists(template, ctx.values)
            except Unavailable as exc:  # the other templates are still evidence
                failed.append(str(exc))
    counts = Counter(r.presence for r in prober.seen.values())
    result.reason = (f"{len(templates)} route templates, {len(prober.seen)} probed paths answered: " +
                     ", ".join(f"{counts[p]} {p}" for p in ("present", "absent", "error")))
    if failed:
        raise Unavailable(f"{len(failed)} of {len(templates)} probes transient after the retries "
                          f"(first: {failed[0]}); {result.reason}")
    return [], False, None


def _security(ep: Endpoint, exchange: Exchange, ctx: ExecutionContext) -> list[Finding]:
    """Secrets in a success answer, whatever its shape: credentials are allowed only where one of the
    endpoint's response schemas for this status names them, or as the caller's own."""
    status = exchange.response.status_code
    if not exchange.response.is_success:
        return []
    return security_findings(ep, exchange, ctx.redactor.curl(exchange.request), ctx.declared_credentials(ep, status),
                             _own_credentials(exchange))


def _own_credentials(exchange: Exchange) -> set[str]:
    """The credentials the request itself sent (a bearer token, a share token, an API key)."""
    headers = exchange.request.headers
    values = {headers.get("x-umami-share-token"), headers.get("x-umami-api-key")}
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    values.add(token if scheme.lower() == "bearer" else None)
    return {v for v in values if v}


# What each role owns or may view, as `ExecutionContext.values` names it: a success for a refused role whose body
# holds an object none of whose ids is one of these shows other principals' objects (`checks.foreign_objects`:
# security).
# The admin may see everything; it is never judged.
OWNS = {"anonymous": (), "share": ("website",), "view-only": ("viewer", "team", "team_website"),
        "user": ("user", "website", "team", "team_website", "target")}


def own_ids(role: str, context: dict[str, Any], exchange: Exchange) -> set[str] | None:
    """The ids of what `role` owns or may view (OWNS), or None when that cannot be told: the admin, and a
    replayed answer about other objects than the run's (a template match)."""
    if role not in OWNS or exchange.other_objects:
        return None
    return {str(context[name]["id"]) for name in OWNS[role]
            if isinstance(context.get(name), dict) and context[name].get("id")}


def _check_versions(item: Item, exchange: Exchange, ctx: ExecutionContext,
                    context: dict[str, Any]) -> tuple[list[Finding], bool]:
    """Check against the shapes of every version the server may be: the answer conforms when it holds for
    one of them; otherwise the findings are those of the newest. `context`: the item's values (its target)."""
    ep = item.endpoint
    own = own_ids(item.role, context, exchange)
    results = []
    seen: set[tuple[str, ...]] = set()
    for version in ctx.server_versions or [None]:
        responses = ep.responses_for(exchange.response.status_code, version)
        error_shape = ctx.specs.error_shape(version)
        key = (*(r.schema_uri for r in responses[:1]), error_shape.description if error_shape else "")
        if key in seen:
            continue
        seen.add(key)
        results.append(check_exchange(ep, item.expected_status, exchange, responses, ctx.specs.validator_for,
                                      ctx.redactor, error_shape,
                                      role_allowed=200 <= ep.auth[item.role] < 300,
                                      own=own))
        if not results[-1][0]:
            return results[-1]
    return results[0]


def _fresh_login(role: str, ctx: ExecutionContext) -> Credential | None:
    """A new session for `role` (None where the role does not log in, e.g. an API key)."""
    if role == "admin" and ctx.admin_login is not None:
        return ctx.client.login(*ctx.admin_login)
    label = {"user": "user", "view-only": "viewer"}.get(role)
    if label and ctx.sandbox is not None and label in ctx.sandbox.passwords:
        return ctx.sandbox.login_again(label)
    return None


def skip_group(skip: Skip) -> str:
    """A skip reason without its details (versions, why a role is not available), to count skips by kind."""
    detailed = (SkipCode.OUT_OF_RANGE, SkipCode.CASE_OUT_OF_RANGE, SkipCode.ROLE_UNAVAILABLE, SkipCode.NO_WEBSITE)
    return skip.reason.split(":")[0] if skip.code in detailed else skip.reason

"""results.json: one record per item, and what the docs need to read them (umami_results: the schema)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import umami_results
from conformance.checks import class_rank, json_type
from conformance.client import Exchange, send_cache
from conformance.describe import endpoint_views, vocabulary
from conformance.discovery import route_templates, routes_list
from conformance.known import stale as stale_entries
from conformance.redact import Redactor
from conformance.replay import Templates
from conformance.session import Session
from umami_results.vocabulary import NO_ANSWER, Kind, Outcome, Verdict, release_endpoints

EXAMPLE_ITEMS = 3
EXAMPLE_CHARS = 4000


def example_body(exchange: Exchange, redactor: Redactor) -> Any:
    """A short, redacted example of the response body (lists cut to a few items)."""
    redactor.add(send_cache(exchange), stand_in=True)  # a session credential, wherever it shows up later
    body = exchange.body
    if body is None:
        text = exchange.response.text
        return redactor.text(text)[:200] if text and "<html" not in text[:200].lower() else None
    body = _trim(redactor.data(body, answer=True))
    if len(json.dumps(body)) > EXAMPLE_CHARS:
        return {"truncated": True}
    return body


def shape(value: Any, path: str = "$", out: dict[str, set[str]] | None = None) -> dict[str, str]:
    """The structure of a JSON body as {json path: type}; array items merge under `[*]`."""
    top = out is None
    out = {} if out is None else out
    out.setdefault(path, set()).add(json_type(value))
    if isinstance(value, dict):
        for key, item in value.items():
            shape(item, f"{path}.{key}", out)
    elif isinstance(value, list):
        for item in value:
            shape(item, f"{path}[*]", out)
    return {k: "|".join(sorted(v)) for k, v in sorted(out.items())} if top else {}


def _trim(value: Any) -> Any:
    if isinstance(value, list):
        return [_trim(v) for v in value[:EXAMPLE_ITEMS]]
    if isinstance(value, dict):
        return {k: _trim(v) for k, v in value.items()}
    return value


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    findings = [f for r in records for f in r["findings"]]
    open_classes = Counter(f["class"] for f in findings if not f["known"])
    return {"items": len(records),
            "outcomes": dict(sorted(Counter(str(r["outcome"]) for r in records).items())),
            "findings": {cls: open_classes[cls] for cls in sorted(open_classes, key=class_rank)},
            "known": sum(1 for f in findings if f["known"]),
            "security": sum(1 for f in findings if f["class"] == "security")}


def verdict(records: list[dict[str, Any]], interrupted: bool = False, stopped: str | None = None,
            selected: int | None = None) -> dict[str, str]:
    """What the run comes to: a code of the vocabulary's `Verdict` and a line with its counts (the terminal's last
    line, the report's banner, the docs' first line). `records`: results.json items (the set-up's drift among
    them); `selected`: the items the run set out to check (default: those it has)."""
    items = [r for r in records if r.get("kind") != Kind.SETUP.value]
    total = selected if selected is not None else len(items)
    ran = [r for r in items if r["outcome"] not in NO_ANSWER]
    opened = [f for r in records for f in r["findings"] if not f["known"]]
    security = sum(f["class"] == "security" for f in opened)
    count = Counter(r["outcome"] for r in items)
    if interrupted or stopped:
        why = "interrupted" if interrupted else stopped.split(";")[0][:100]
        so_far = f"; {len(opened)} open finding(s) so far" if opened else ""
        return _verdict(Verdict.INCOMPLETE, f"{why} after {len(ran)} of {total} items{so_far}")
    if not ran and not opened:
        return _verdict(Verdict.NOTHING_TESTED, f"all {total} selected items were skipped")
    if opened:
        failed = sum(r["outcome"] == Outcome.FAILED for r in records)
        return _verdict(Verdict.DRIFT, f"{len(opened)} open finding(s) in {failed} item(s)"
                        + (f" ({security} security)" if security else "") + f" of {len(ran)} checked")
    if count[Outcome.ERROR.value]:
        return _verdict(Verdict.ERROR, f"the tool failed on {count[Outcome.ERROR.value]} item(s), a bug to report")
    if count[Outcome.UNAVAILABLE.value]:
        return _verdict(Verdict.UNAVAILABLE, f"{count[Outcome.UNAVAILABLE.value]} item(s) not checked after transient "
                                             f"failures, {len(ran)} checked without drift")
    return _verdict(Verdict.CONFORMS, f"{len(ran)} items checked ({count[Outcome.PASSED.value]} passed, "
                                      f"{count[Outcome.PASSED_NO_SCHEMA.value]} passed without a response schema, "
                                      f"{count[Outcome.KNOWN.value]} known differences); "
                                      f"{count[Outcome.SKIPPED.value]} not checked on this server")


def _verdict(code: Verdict, details: str) -> dict[str, str]:
    return {"code": code.value, "text": f"{code.value.replace('-', ' ')}: {details}"}


def write_results(session: Session, interrupted: bool = False, stopped: str | None = None,
                  selected: int | None = None) -> Path:
    """Write results.json (every string redacted once more, then schema-checked), atomically."""
    records = sorted((r.as_dict() for r in session.results),
                     key=lambda r: (r["area"], r["endpoint"], r["role"], r["case"]))
    stale = [{"endpoint": e.endpoint, "reason": e.reason, "line": e.line}
             for e in stale_entries(session.known, records, session.read_only, session.server_versions)]
    doc = {**session.header(), "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "interrupted": interrupted, "verdict": verdict(records, interrupted, stopped, selected),
           "summary": summarize(records), "residue": session.residue,
           "timing": {"requests": len(session.client.requests),
                      "server_seconds": round(session.client.server_seconds, 3),
                      "retries": session.client.retries, "unavailable": session.client.unavailable},
           "stale_known_differences": stale, "vocabulary": vocabulary(),
           "endpoints": endpoint_views(session.specs, release_endpoints(records), session.server_version),
           "items": records}
    routes = route_evidence(session)
    if routes is not None:
        doc["routes"] = routes
    # String by string: a pass over the serialised text would miss secrets that JSON escapes (non-ASCII, ", \).
    doc = session.client.redactor.data(doc)
    text = umami_results.dumps(doc)
    path = session.options.results_path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)
    return path


def route_evidence(session: Session) -> list[dict[str, Any]] | None:
    """results.json `routes`: in a recheck, what the recordings' GETs answered (always); in a run, what the
    discovery probes answered (None without --discover)."""
    if session.replay is not None:
        return routes_list(session.replay.routes(Templates(route_templates(session.specs))))
    prober = session.prober_if_made
    return prober.routes() if prober is not None and prober.seen else None

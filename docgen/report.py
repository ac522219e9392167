"""report.html from results.json: a summary first (server, version, counts by outcome and finding class), then
open findings, items unavailable (transient failures) and known differences (security first), with passed and
skipped items collapsed."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from docgen.legend import Vocabulary, other_release_endpoints
from umami_results.vocabulary import OUT_OF_RELEASE, Verdict, skip_code

# The banner's colour: red only when something is open (drift, a tool error), green when the server conforms.
VERDICT_STYLE = {Verdict.DRIFT.value: "open", Verdict.ERROR.value: "open", Verdict.CONFORMS.value: "calm"}


def report_model(results: dict[str, Any]) -> dict[str, Any]:
    """What report.html shows, every list sorted (the same results give the same page)."""
    words = Vocabulary(results)
    class_rank = words.rank
    descriptions = {c["name"]: c["description"] for c in results["vocabulary"]["finding_classes"]}
    order = [o["name"] for o in results["vocabulary"]["outcomes"]]
    items = results["items"]
    outcomes = Counter(str(i["outcome"]) for i in items)
    findings = [(i, f) for i in items for f in i["findings"]]
    classes = [{"name": cls, "description": descriptions.get(cls, ""),
                "open": sum(1 for _, f in findings if f["class"] == cls and not f["known"]),
                "known": sum(1 for _, f in findings if f["class"] == cls and f["known"])}
               for cls in sorted({f["class"] for _, f in findings}, key=lambda c: (class_rank(c), c))]
    failed = sorted((i for i in items if i["outcome"] == "failed"),
                    key=lambda i: (min(class_rank(f["class"]) for f in i["findings"] if not f["known"]), i["id"]))
    known: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for item, f in findings:
        if f["known"]:
            known[(f["class"], item["endpoint"], f["known"])].append(f"{item['id']} {f['json_path']}")
    skipped: dict[str, list[str]] = defaultdict(list)
    absent = 0  # items of another release: only this server's release, as one count
    for item in items:
        if skip_code(item) in OUT_OF_RELEASE:
            absent += 1
        elif item["outcome"] == "skipped":
            skipped[item["reason"] or ""].append(item["id"])
    verdict = results.get("verdict")  # results.json of an earlier version has none
    return {
        "results": results,
        "verdict": verdict,
        "verdict_style": VERDICT_STYLE.get(verdict["code"], "note") if verdict else "",
        "outcomes": [(name, outcomes[name]) for name in order if outcomes[name]]
        + sorted((k, v) for k, v in outcomes.items() if k not in order),
        "classes": classes,
        "failed": [{"item": i, "findings": sorted((f for f in i["findings"] if not f["known"]),
                                                  key=lambda f: (class_rank(f["class"]), f["json_path"]))}
                   for i in failed],
        "known": [{"class": cls, "endpoint": ep, "reason": reason, "where": sorted(where)}
                  for (cls, ep, reason), where in sorted(known.items(),
                                                         key=lambda kv: (class_rank(kv[0][0]), kv[0]))],
        "unavailable": sorted((i for i in items if i["outcome"] == "unavailable"), key=lambda i: i["id"]),
        "passed": sorted((i for i in items if i["outcome"] in ("passed", "passed-no-schema")),
                         key=lambda i: i["id"]),
        "skipped": sorted((reason, sorted(ids)) for reason, ids in skipped.items()),
        "absent": {"items": absent, "endpoints": len(other_release_endpoints(items))},
    }


@cache
def _environment() -> Environment:
    """report.html's Jinja2 environment, one per process: its template compiles once."""
    return Environment(loader=PackageLoader("docgen"), undefined=StrictUndefined, autoescape=True,
                       keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def render_report(results: dict[str, Any], path: Path) -> Path:
    """Write report.html for `results` (a loaded results.json)."""
    path.write_text(_environment().get_template("report.html.j2").render(**report_model(results)), encoding="utf-8")
    return path

"""The cross-release API reference: Markdown from a reference.json (the specs of every release) and the
results.json of the observed releases (rechecks of recordings of real servers).

One page per endpoint (releases, auth per role, parameters, body, field tables per release, known defects, a real
example per observed release, what changed from release to release), one per release (what it added, removed and
changed), and an index with the endpoint x release grid per area. The same inputs always give the same bytes.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment
from packaging.version import Version

import umami_results
from docgen.diff import diff_results
from docgen.render import new_markdown_environment, normalise, write_pages

# Grid cells: absent, present, changed (present, and the specs say otherwise than in the release before), a known
# server defect, and a spec that expects only errors (the route lacks the method).
ABSENT, PRESENT, CHANGED, DEFECT, ERRORS_ONLY = "–", "●", "Δ", "⚠", "⊘"
GRID_LEGEND = [(PRESENT, "present: the release has the route"),
               (CHANGED, "changed: present, and auth, parameters, body, responses or error format differ from "
                         "the release before"),
               (DEFECT, "known server defect in that release (specs/known-differences.yaml), see the page"),
               (ABSENT, "absent: the release has no such route"),
               (ERRORS_ONLY, "the route exists, but not with this method: the spec checks that it is refused")]
OBSERVED = "🔍"
CLOUD_ROLE = "API key (Umami Cloud)"
EXAMPLE_ITEMS, EXAMPLE_CHARS = 2, 300
RUN_SUFFIX = re.compile(r"(ucf-<run>-[a-z-]+-)[0-9a-f]{6}\b")  # the random part of a run object's name
EXAMPLE_NOTE = ("Ids, times (2000-01-01, epoch 946684800000), traffic counts (1) and the run's names (ucf-<run>-...) "
                f"are normalised, lists are cut to {EXAMPLE_ITEMS} items and long strings to {EXAMPLE_CHARS} "
                "characters; secrets are redacted.")


def render_reference(reference: dict[str, Any], observed: list[dict[str, Any]], out: Path) -> list[Path]:
    """Write the reference into `out` (index.md, endpoints/<area>/<name>.md, releases/<version>.md), removing
    the endpoint and release pages of an earlier rendering that are gone. `observed`: results.json contents, one
    per observed release. Returns the files written."""
    umami_results.validate_reference(reference)
    model = build_model(reference, observed)
    env = _environment()
    pages: dict[Path, str] = {Path("index.md"): env.get_template("reference_index.md.j2").render(**model)}
    for ep in model["endpoints"]:
        pages[Path(ep["page"])] = env.get_template("reference_endpoint.md.j2").render(ep=ep, **model)
    for release in model["releases"]:
        pages[Path(release["page"])] = env.get_template("reference_release.md.j2").render(release=release, **model)
    for old in sorted(p for folder in ("endpoints", "releases") for p in (out / folder).rglob("*.md")):
        if old.relative_to(out) not in pages:  # an endpoint or release that is gone; nothing else is touched
            old.unlink()
    return write_pages(out, pages)


def build_model(reference: dict[str, Any], observed: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the templates show, sorted."""
    releases = [r["version"] for r in reference["releases"]]
    contract = {r["version"] for r in reference["releases"] if r["source"] == "contract"}
    runs = {r["server"]["version"]: r for r in sorted(observed, key=lambda r: Version(r["server"]["version"]))}
    items: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for version, run in runs.items():
        for item in run["items"]:
            if item.get("kind", "spec") == "spec":
                items[(version, item["endpoint"])].append(item)
    diffs = _observed_changes(list(runs.values()))
    titles = {a["name"]: a for a in reference["areas"]}
    endpoints = [_endpoint(ep, reference, releases, contract, runs, items, diffs) for ep in reference["endpoints"]]
    by_id = {ep["id"]: ep for ep in endpoints}
    areas = []
    for name in sorted({ep["area"] for ep in endpoints}):
        members = [ep for ep in endpoints if ep["area"] == name]
        columns = _columns(members, releases, set(runs))
        areas.append({"name": name, "title": titles[name]["title"] if name in titles else name,
                      "columns": [{"label": _span_label(c), "observed": c[0] in runs, "first": c[0]}
                                  for c in columns],
                      "rows": [{"ep": ep, "cells": [ep["cells"][c[0]] for c in columns]} for ep in members]})
    release_pages = [_release(v, i, releases, contract, endpoints, runs, diffs) for i, v in enumerate(releases)]
    return {"endpoints": endpoints, "by_id": by_id, "areas": areas,
            "releases": release_pages, "observed": list(runs), "contract": sorted(contract),
            "grid_legend": GRID_LEGEND, "observed_mark": OBSERVED, "example_note": EXAMPLE_NOTE,
            "newest": [v for v in releases if v not in contract][-1], "roles": reference["roles"],
            "cloud_role": CLOUD_ROLE}


def _observed_changes(runs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The upgrade check (docgen.diff) between each observed release and the next: (old, new) -> diff."""
    out = {}
    for old, new in zip(runs, runs[1:], strict=False):
        out[(old["server"]["version"], new["server"]["version"])] = diff_results(old, new)
    return out


def spans(versions: list[str], releases: list[str]) -> list[tuple[str, str]]:
    """Runs of consecutive releases (in the order of `releases`) as (first, last)."""
    index = {v: i for i, v in enumerate(releases)}
    out: list[list[str]] = []
    for v in sorted(versions, key=index.__getitem__):
        if out and index[out[-1][1]] == index[v] - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return [(a, b) for a, b in out]


def spans_text(versions: list[str], releases: list[str]) -> str:
    return ", ".join(a if a == b else f"{a}–{b}" for a, b in spans(versions, releases)) or "none"


def _span_label(column: list[str]) -> str:
    return column[0] if len(column) == 1 else f"{column[0]}–{column[-1]}"


def _signature(variant: dict[str, Any]) -> str:
    """What makes a release's variant 'changed' for a client: everything but the known defects."""
    return json.dumps({k: v for k, v in variant.items() if k not in ("releases", "known")}, sort_keys=True)


def _endpoint(ep: dict[str, Any], reference: dict[str, Any], releases: list[str], contract: set[str],
              runs: dict[str, dict[str, Any]], items: dict[tuple[str, str], list[dict[str, Any]]],
              diffs: dict[tuple[str, str], Any]) -> dict[str, Any]:
    area, name = ep["id"].split("/", 1)
    newest = [v for v in releases if v not in contract][-1]
    variant_of = {v: variant for variant in ep["variants"] for v in variant["releases"]}
    cells = {}
    for i, version in enumerate(releases):
        variant = variant_of.get(version)
        if variant is None:
            cells[version] = ABSENT
            continue
        before = variant_of.get(releases[i - 1]) if i else None
        cell = ERRORS_ONLY if ep["errors_only"] else (
            CHANGED if before is not None and _signature(before) != _signature(variant) else PRESENT)
        cells[version] = cell + (DEFECT if variant["known"] else "")
    released = [v for v in ep["releases"] if v not in contract]
    observed = []
    for version in runs:
        mine = items.get((version, ep["id"]), [])
        observed.append(_observation(version, mine, runs[version], version in variant_of))
    return {
        **ep, "name": name, "page": f"endpoints/{area}/{name}.md", "cells": cells,
        "released": spans_text(released, releases),
        "first": released[0] if released else None, "last": released[-1] if released else None,
        "in_contract": any(v in contract for v in ep["releases"]),
        "not_observed": [v for v in released if v not in runs],
        "observed": [o for o in observed if o["present"] or o["answers"]],
        "auth": _auth_table(ep, releases, reference["roles"], newest),
        "parameters": _sections(ep, "parameters", releases),
        "body": _sections(ep, "body", releases),
        "responses": _sections(ep, "responses", releases),
        "error_format": _sections(ep, "error_format", releases),
        "known": _known(ep, releases, runs, items),
        "changes": _spec_changes(ep, releases),
        "observed_changes": [{"old": old, "new": new, "changes": [c for c in diff.changes if c.endpoint == ep["id"]]}
                             for (old, new), diff in diffs.items()
                             if any(c.endpoint == ep["id"] for c in diff.changes)],
    }


def _sections(ep: dict[str, Any], key: str, releases: list[str]) -> list[dict[str, Any]]:
    """One section per distinct value of `key` over the variants, with the releases it holds for."""
    groups: dict[str, dict[str, Any]] = {}
    for variant in ep["variants"]:
        text = json.dumps(variant[key], sort_keys=True)
        group = groups.setdefault(text, {"value": variant[key], "releases": []})
        group["releases"] += variant["releases"]
    out = [{"value": g["value"], "releases": spans_text(g["releases"], releases)} for g in groups.values()]
    return [] if all(not g["value"] for g in out) else out


def _auth_table(ep: dict[str, Any], releases: list[str], roles: list[str], newest: str) -> list[dict[str, Any]]:
    """Release runs x roles: the status each role gets, with the known defects that change it; `cloud`: the run
    holds the newest release, which Umami Cloud runs (its API key takes the admin role's place)."""
    groups: dict[str, dict[str, Any]] = {}
    for variant in ep["variants"]:
        cells = {}
        for role in roles:
            if role not in variant["auth"]:
                cells[role] = "not specified"
                continue
            text = str(variant["auth"][role])
            defects = sorted({(k["status"], ", ".join(k["cases"] or [])) for k in variant["known"]
                              if k["status"] is not None and (not k["roles"] or role in k["roles"])})
            for status, cases in defects:
                text += f"; {DEFECT} {status}" + (f" ({cases})" if cases else "")
            cells[role] = text
        key = json.dumps(cells, sort_keys=True)
        group = groups.setdefault(key, {"cells": cells, "releases": []})
        group["releases"] += variant["releases"]
    return [{"releases": spans_text(g["releases"], releases), "cells": g["cells"], "cloud": newest in g["releases"]}
            for g in groups.values()]


def _known(ep: dict[str, Any], releases: list[str], runs: dict[str, dict[str, Any]],
           items: dict[tuple[str, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each known defect once, with the releases of the endpoint it applies to and where a recheck met it."""
    found: dict[str, dict[str, Any]] = {}
    for variant in ep["variants"]:
        for k in variant["known"]:
            entry = found.setdefault(json.dumps(k, sort_keys=True), {**k, "releases": []})
            entry["releases"] += variant["releases"]
    out = []
    for entry in found.values():
        seen = sorted((v for v in runs if v in entry["releases"] and any(
            " ".join((f.get("known") or "").split()) == entry["reason"]
            for item in items.get((v, ep["id"]), []) for f in item["findings"])), key=Version)
        out.append({**entry, "where": spans_text(entry["releases"], releases), "seen": seen})
    return sorted(out, key=lambda e: (releases.index(e["releases"][0]), e["reason"]))


def _spec_changes(ep: dict[str, Any], releases: list[str]) -> list[dict[str, Any]]:
    """What the specs say changed between one variant and the next (the first release of the next)."""
    out = []
    for before, after in zip(ep["variants"], ep["variants"][1:], strict=False):
        notes = []
        for role in sorted(set(before["auth"]) | set(after["auth"])):
            if before["auth"].get(role) != after["auth"].get(role):
                notes.append(f"{role}: {before['auth'].get(role, '–')} → {after['auth'].get(role, '–')}")
        for key, word in (("parameters", "parameter"), ("body", "body field")):
            old = {p["name"]: p for p in before[key]}
            new = {p["name"]: p for p in after[key]}
            notes += [f"{word} `{n}` added" for n in sorted(set(new) - set(old))]
            notes += [f"{word} `{n}` removed" for n in sorted(set(old) - set(new))]
            notes += [f"{word} `{n}`: {old[n]['type']} → {new[n]['type']}" for n in sorted(set(old) & set(new))
                      if old[n]["type"] != new[n]["type"]]
            notes += [f"{word} `{n}` now {'required' if new[n]['required'] else 'optional'}"
                      for n in sorted(set(old) & set(new)) if old[n]["required"] != new[n]["required"]]
        notes += _response_changes(before["responses"], after["responses"])
        if before["error_format"] != after["error_format"]:
            notes.append("error format: " + (after["error_format"] or "not described"))
        old_known = {k["reason"] for k in before["known"]}
        new_known = {k["reason"] for k in after["known"]}
        if new_known - old_known:
            notes.append(f"{len(new_known - old_known)} known defect(s) begin")
        if old_known - new_known:
            notes.append(f"{len(old_known - new_known)} known defect(s) end")
        gap = releases.index(after["releases"][0]) != releases.index(before["releases"][-1]) + 1
        out.append({"from": before["releases"][-1], "to": after["releases"][0], "gap": gap,
                    "notes": notes or ["the known defects differ"]})
    return out


def _response_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[str]:
    old = {r["status"]: r for r in before}
    new = {r["status"]: r for r in after}
    notes = [f"status {s} added" for s in sorted(set(new) - set(old))]
    notes += [f"status {s} removed" for s in sorted(set(old) - set(new))]
    for status in sorted(set(old) & set(new)):
        a, b = old[status], new[status]
        if a["content_type"] != b["content_type"]:
            notes.append(f"{status}: content type {a['content_type'] or 'none'} → {b['content_type'] or 'none'}")
        fa = {f["path"]: f for shape in a["shapes"] for f in shape}
        fb = {f["path"]: f for shape in b["shapes"] for f in shape}
        if not fa or not fb:
            if bool(fa) != bool(fb):
                notes.append(f"{status}: body {'now described' if fb else 'no longer described'}")
            continue
        added = sorted(set(fb) - set(fa))
        removed = sorted(set(fa) - set(fb))
        retyped = sorted(p for p in set(fa) & set(fb) if (fa[p]["type"], fa[p]["nullable"]) !=
                         (fb[p]["type"], fb[p]["nullable"]))
        for word, paths in (("added", added), ("removed", removed), ("retyped", retyped)):
            if paths:
                shown = ", ".join(f"`{p}`" for p in paths[:6]) + (f" and {len(paths) - 6} more" if len(paths) > 6
                                                                  else "")
                notes.append(f"{status}: field(s) {word}: {shown}")
        if a["shapes"] != b["shapes"] and not (added or removed or retyped):
            notes.append(f"{status}: field descriptions or requirements changed")
    return notes


def _observation(version: str, items: list[dict[str, Any]], run: dict[str, Any], present: bool) -> dict[str, Any]:
    """What the recheck of one observed release answered for the endpoint: statuses per role, one example."""
    roles = run["vocabulary"]["roles"]
    answered = [i for i in items if i["actual_status"] is not None]
    answers = {role: sorted({i["actual_status"] for i in answered if i["role"] == role}) for role in roles}
    ordered = sorted(answered, key=lambda i: (not 200 <= i["actual_status"] < 300, roles.index(i["role"])
                                              if i["role"] in roles else len(roles), i["case"]))
    chosen = next((i for i in ordered if i.get("example") is not None
                   and i["outcome"] in ("passed", "passed-no-schema", "known")), None)
    prefix = re.compile(run["vocabulary"]["run_prefix"])
    return {"version": version, "present": present, "recorded": bool(answered),
            "answers": [{"role": r, "statuses": ", ".join(map(str, s)) or "not recorded"}
                        for r, s in answers.items()] if answered else [],
            "example": None if chosen is None else {
                "role": chosen["role"], "case": chosen["case"], "status": chosen["actual_status"],
                "outcome": chosen["outcome"],
                "body": RUN_SUFFIX.sub(r"\1xxxxxx", json.dumps(_cut(normalise(chosen["example"], prefix)), indent=2,
                                                              sort_keys=True, ensure_ascii=False))}}


def _cut(value: Any) -> Any:
    """A shorter example: lists of at most EXAMPLE_ITEMS items, strings of at most EXAMPLE_CHARS characters."""
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value[:EXAMPLE_ITEMS]]
    if isinstance(value, str) and len(value) > EXAMPLE_CHARS:
        return value[:EXAMPLE_CHARS] + "…"
    return value


def _columns(members: list[dict[str, Any]], releases: list[str], observed: set[str]) -> list[list[str]]:
    """The grid's columns for an area: runs of releases over which no endpoint's cell changes, an observed
    release always a column of its own."""
    columns: list[list[str]] = []
    for i, version in enumerate(releases):
        same = (columns and version not in observed and columns[-1][-1] not in observed
                and all(ep["cells"][version] == ep["cells"][releases[i - 1]].replace(CHANGED, PRESENT)
                        and CHANGED not in ep["cells"][version] for ep in members))
        if same:
            columns[-1].append(version)
        else:
            columns.append([version])
    return columns


def _release(version: str, index: int, releases: list[str], contract: set[str], endpoints: list[dict[str, Any]],
             runs: dict[str, dict[str, Any]], diffs: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """One release: what it added, removed and changed against the release before, its known defects."""
    before = releases[index - 1] if index else None
    added, removed, changed, defects = [], [], [], []
    for ep in endpoints:
        now, was = ep["cells"][version], ep["cells"][before] if before else ABSENT
        if now.startswith(ABSENT) and not was.startswith(ABSENT):
            removed.append(ep)
        elif not now.startswith(ABSENT) and was.startswith(ABSENT):
            added.append(ep)
        elif now.startswith(CHANGED):
            notes = next((c["notes"] for c in ep["changes"] if c["to"] == version), [])
            changed.append({"ep": ep, "notes": notes})
        if DEFECT in now:
            defects.append(ep)
    previous_observed = [v for v in runs if Version(v) < Version(version)]
    diff = diffs.get((previous_observed[-1], version)) if previous_observed and version in runs else None
    breaking = sorted(c for c in diff.changes if c.breaking) if diff else []
    return {"version": version, "page": f"releases/{version}.md", "before": before,
            "after": releases[index + 1] if index + 1 < len(releases) else None,
            "contract": version in contract, "observed": version in runs,
            "present": sum(not ep["cells"][version].startswith(ABSENT) for ep in endpoints),
            "added": added, "removed": removed, "changed": changed, "defects": defects,
            "observed_before": previous_observed[-1] if diff else None,
            "observed_changes": len(diff.changes) if diff else 0, "breaking": breaking}


@cache
def _environment() -> Environment:
    """The reference's Jinja2 environment, one per process: each template compiles once."""
    env = new_markdown_environment()
    env.filters["code"] = lambda v: f"`{v}`" if v not in ("", None) else ""
    env.filters["rel"] = lambda target, page: _relative(target, page)
    return env


def _relative(target: str, page: str) -> str:
    """A relative link from the page `page` to `target` (both relative to the reference's root)."""
    depth = page.count("/")
    return "../" * depth + target

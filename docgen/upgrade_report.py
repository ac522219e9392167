"""The report of an upgrade diff (diff.py): Markdown for a pull request or a step summary, and JSON for machines.

Where each side's answers come from is on the first screen, and so is a side that is a shipped reference
recording (`upgrade-check --to`), not a server of the user's; then the summary, what breaks, the error format once,
the changes per area and what was not compared. The same diff gives the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict
from typing import Any

from docgen.diff import KNOWN, ORDER, RULE, RULES, Change, Diff


def _server(results: dict[str, Any]) -> str:
    server = results.get("server") or {}
    return f"Umami {server.get('release') or server.get('version') or 'unknown'}"


def _side(results: dict[str, Any]) -> str:
    """Where a run's answers come from: the server's URL (or its recording) and the releases it may be."""
    server = results.get("server") or {}
    where = f"`{server.get('url') or 'unknown'}`"
    if server.get("version_range"):
        where += f", {server['version_range']}"
    return where


def _reference_note(results: dict[str, Any], side: str) -> list[str]:
    """The first-screen warning for a side that is a shipped reference recording, not the user's server."""
    reference = results.get("reference")
    if not reference:
        return []
    return [f"> **The {side} side is a reference recording, not a server of yours**: the answers of a default install "
            f"of {_server(results)} (`{reference['recording']}`, checked with the current specs). What may differ on "
            "your server: its data (lists, counts, empty answers), its configuration "
            "(environment variables, SSO, cloud mode, the roles set up) and its database (PostgreSQL, MySQL, "
            "ClickHouse). A change on an endpoint whose answer depends on those is worth a check on a staging "
            "server.", ""]


def diff_json(old: dict[str, Any], new: dict[str, Any], diff: Diff) -> str:
    """The diff for machines: sorted keys, the same bytes for the same inputs."""
    def side(r: dict[str, Any]) -> dict[str, Any]:
        server = r.get("server") or {}
        return {"version": server.get("version"), "release": server.get("release") or server.get("version"),
                "version_range": server.get("version_range"), "url": server.get("url"), "started": r.get("started"),
                "reference_recording": (r.get("reference") or {}).get("recording")}

    doc = {"old": side(old), "new": side(new),
           "summary": {"changes": len(diff.changes), "breaking": len(diff.breaking),
                       "endpoints": len({c.endpoint for c in diff.changes}),
                       "by_kind": {k: n for k, n in _by_kind(diff.changes)},
                       "compared": diff.compared, "not_compared": dict(sorted(diff.not_compared.items()))},
           "changes": [{**asdict(c), "breaking": c.breaking} for c in diff.changes],
           "not_compared_endpoints": {k: sorted(v) for k, v in sorted(diff.uncompared_endpoints.items())},
           "rules": [asdict(r) for r in RULES]}
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _by_kind(changes: list[Change]) -> list[tuple[str, int]]:
    counts = Counter(c.kind for c in changes)
    return [(r.kind, counts[r.kind]) for r in RULES if counts[r.kind]]


def first_screen(text: str, path: object, limit: int = 40) -> str:
    """The top of a report whose whole text went to `path`, for the terminal: at most `limit` lines, and no further
    than the changes by area; its last line says how much more there is and where."""
    lines = text.splitlines()
    end = lines.index("## Changes by area") if "## Changes by area" in lines else len(lines)
    head = lines[:min(end, limit - 2)]
    while head and not head[-1]:
        head.pop()
    if len(head) == len(lines):
        return text
    return "\n".join([*head, "", f"… {len(lines) - len(head)} more line(s): the whole report is in {path}"]) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_diff(old: dict[str, Any], new: dict[str, Any], diff: Diff) -> str:
    """Markdown for a pull request or a step summary: the summary first, then what breaks, the error format
    once, the changes per area, and what was not compared."""
    changes, breaking = diff.changes, diff.breaking
    lines = [f"# Upgrade check: {_server(old)} → {_server(new)}", "",
             f"Old: {_side(old)}. New: {_side(new)}.", "", *_reference_note(old, "old"), *_reference_note(new, "new"),
             f"**{len(changes)} change(s) on {len({c.endpoint for c in changes})} endpoint(s), "
             f"{len(breaking)} breaking.** {diff.compared} item(s) compared, "
             f"{sum(diff.not_compared.values())} not compared (see the end).", ""]
    if changes:
        lines += ["| Change | Breaking | Count |", "| :----- | :------: | ----: |"]
        lines += [f"| {kind} | {'💥 yes' if RULE[kind].breaking else 'no'} | {n} |" for kind, n in _by_kind(changes)]
        lines.append("")
    if breaking:
        lines += ["## Act on these", ""]
        per_endpoint: dict[str, list[Change]] = defaultdict(list)
        for c in breaking:
            per_endpoint[c.endpoint].append(c)
        for ep, items in sorted(per_endpoint.items(), key=lambda kv: (ORDER[kv[1][0].kind], kv[0])):
            shown = "; ".join(f"{c.kind} `{_cell(c.where)}` {_cell(c.old)} → {_cell(c.new)}" for c in items[:4])
            more = f"; and {len(items) - 4} more" if len(items) > 4 else ""
            lines.append(f"- **{ep}**: {shown}{more}")
        lines.append("")
    formats = [c for c in changes if c.kind == "error-format-changed"]
    if formats:
        common = Counter((c.old, c.new) for c in formats).most_common(1)[0]
        lines += ["## Error format", "",
                  f"Error bodies changed on {len(formats)} endpoint(s); on {common[1]} of them "
                  f"`{_cell(common[0][0])}` → `{_cell(common[0][1])}`. Each endpoint is listed in its area.", ""]
    if any(KNOWN in c.old or KNOWN in c.new for c in changes):
        lines += [f"{KNOWN} marks the answer of a known difference of that server (a documented defect, "
                  "specs/known-differences.yaml).", ""]
    if changes:
        lines += ["## Changes by area", ""]
        per_area: dict[str, list[Change]] = defaultdict(list)
        for c in changes:
            per_area[c.area].append(c)
        for area in sorted(per_area):
            lines += [f"### {area}", "", "| Breaking | Endpoint | Change | Where | Old | New |",
                      "| :------: | :------- | :----- | :---- | :-- | :-- |"]
            for c in per_area[area]:
                lines.append(f"| {'💥 yes' if c.breaking else 'no'} | {c.endpoint} | {c.kind} | `{_cell(c.where)}` "
                             f"| {_cell(c.old)} | {_cell(c.new)} |")
            lines.append("")
    if diff.not_compared:
        lines += ["## Not compared", "", "Items without an answer in one of the runs; never counted as a change.", "",
                  "| Why | Items |", "| :-- | ----: |"]
        lines += [f"| {_cell(reason)} | {n} |" for reason, n in sorted(diff.not_compared.items())]
        lines.append("")
        for reason, endpoints in sorted(diff.uncompared_endpoints.items()):
            lines += [f"<details><summary>{len(endpoints)} endpoint(s) with no item compared: {reason}</summary>", "",
                      ", ".join(sorted(endpoints)), "", "</details>", ""]
    lines.append("Classification rules: README.md, section \"Upgrade check\".")
    return "\n".join(lines) + "\n"

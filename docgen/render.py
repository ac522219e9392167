"""Render results.json into Markdown with Jinja2; the same results always give the same bytes."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from conformance.results import load_results

# Worst first: an endpoint/role cell shows the worst outcome of its cases.
LEGEND = [
    ("🛑", "removed", "endpoint missing: 404/405 where the spec expects success"),
    ("🚨", "structure", "structure mismatch: a field added, removed or retyped, or auth looser than the spec"),
    ("⚠️", "status", "status mismatch: another status code than the spec says"),
    ("📝", "known", "known difference: a reviewed deviation listed in specs/known-differences.yaml"),
    ("✅", "passed", "passed with schema check"),
    ("✔️", "passed-no-schema", "passed, no schema for this status (e.g. a plain-text error)"),
    ("⏳", "skipped", "not checked on this server (version, read-only or role not available; reason given)"),
]
SYMBOL = {key: sym for sym, key, _ in LEGEND}
RANK = {key: i for i, (_, key, _) in enumerate(LEGEND)}
STATUS_CLASSES = {"status-changed", "auth-stricter"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
PREFIX = re.compile(r"ucf-\d{8}t\d{6}-[0-9a-f]{4}-")


def redact_example(value: Any) -> Any:
    """Ids, timestamps and run prefixes replaced, so examples stay stable from run to run."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = UUID.sub("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", text)
    text = TIMESTAMP.sub("2000-01-01T00:00:00.000Z", text)
    return json.loads(PREFIX.sub("ucf-<run>-", text))


def item_symbol_key(item: dict[str, Any]) -> str:
    """The legend key of one item."""
    outcome = item["outcome"]
    if outcome in ("passed", "passed-no-schema", "known"):
        return outcome
    if outcome == "failed":
        classes = {f["class"] for f in item["findings"] if not f["known"]}
        if "endpoint-missing" in classes:
            return "removed"
        return "status" if classes <= STATUS_CLASSES else "structure"
    return "skipped"


def _worst(keys: list[str]) -> str:
    return min(keys, key=lambda k: RANK[k]) if keys else "skipped"


def endpoint_slug(endpoint_id: str) -> str:
    return endpoint_id.split("/", 1)[1]


def build_model(results: dict[str, Any]) -> dict[str, Any]:
    """Group items by area and endpoint, with one status cell per role."""
    areas: dict[str, dict[str, Any]] = defaultdict(lambda: {"endpoints": {}})
    roles: set[str] = set()
    for item in results["items"]:
        area = areas[item["area"]]
        ep = area["endpoints"].setdefault(item["endpoint"], {
            "id": item["endpoint"], "slug": endpoint_slug(item["endpoint"]), "method": item["method"],
            "path": item["path"], "source": item.get("source", ""), "operation_id": item.get("operation_id"),
            "items": [], "roles": {}})
        ep["items"].append(item)
        roles.add(item["role"])
    for area in areas.values():
        for ep in area["endpoints"].values():
            by_role: dict[str, list[str]] = defaultdict(list)
            for item in ep["items"]:
                by_role[item["role"]].append(item_symbol_key(item))
            ep["roles"] = {role: SYMBOL[_worst(keys)] for role, keys in by_role.items()}
            ep["status"] = SYMBOL[_worst([k for keys in by_role.values() for k in keys])]
            ep["items"].sort(key=lambda i: (i["role"], i["case"]))
            ep["findings"] = [(i, f) for i in ep["items"] for f in i["findings"]]
        area["endpoints"] = dict(sorted(area["endpoints"].items()))
    role_order = [r for r in ("admin", "user", "view-only", "share", "anonymous") if r in roles]
    return {"results": results, "areas": dict(sorted(areas.items())), "roles": role_order,
            "legend": LEGEND, "symbol": SYMBOL, "item_symbol_key": item_symbol_key}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("docgen"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["redact_example"] = redact_example
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


def render_docs(results_path: Path, out: Path) -> list[Path]:
    """Write index.md, one page per area and one per endpoint; return the files written."""
    model = build_model(load_results(results_path))
    env = _environment()
    pages: dict[Path, str] = {Path("index.md"): env.get_template("index.md.j2").render(**model)}
    for name, area in model["areas"].items():
        pages[Path("areas") / f"{name}.md"] = env.get_template("area.md.j2").render(
            name=name, area=area, **model)
        for ep in area["endpoints"].values():
            pages[Path("endpoints") / name / f"{ep['slug']}.md"] = env.get_template(
                "endpoint.md.j2").render(ep=ep, area_name=name, **model)
    written = []
    for rel, text in sorted(pages.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written

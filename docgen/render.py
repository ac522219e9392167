"""Render results.json (+ history) into Markdown with Jinja2; results.json alone says what the docs show.

The same inputs always give the same bytes: everything is sorted, and examples have ids,
timestamps and run prefixes replaced.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

import umami_results
from docgen.history import endpoint_histories, load_history
from docgen.legend import LEGEND, SYMBOL, Vocabulary, worst

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
MARKER = re.compile(r"(<!--status:(?P<id>[a-z0-9-]+/[a-z0-9-]+)-->)(?P<body>.*?)(<!--status-end-->)", re.S)
TABLE_MARKER = re.compile(r"(<!--table:(?P<area>[a-z0-9-]+)-->\n)(?P<body>.*?)(<!--table-end-->)", re.S)


def redact_example(value: Any, prefix: re.Pattern[str]) -> Any:
    """Ids, timestamps and run prefixes replaced, so examples stay stable from run to run."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = UUID.sub("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", text)
    text = TIMESTAMP.sub("2000-01-01T00:00:00.000Z", text)
    return json.loads(prefix.sub("ucf-<run>-", text))


def build_model(results: dict[str, Any], history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Group items by area and endpoint, with one status cell per role."""
    words = Vocabulary(results)
    areas: dict[str, dict[str, Any]] = defaultdict(lambda: {"endpoints": {}})
    views = results["endpoints"]
    histories = endpoint_histories(history or [])
    roles: set[str] = set()
    for item in results["items"]:
        ep = areas[item["area"]]["endpoints"].setdefault(item["endpoint"], {
            "id": item["endpoint"], "slug": item["endpoint"].split("/", 1)[1], "method": item["method"],
            "path": item["path"], "source": item.get("source", ""), "operation_id": item.get("operation_id"),
            "items": [], "spec": views.get(item["endpoint"]), "history": histories.get(item["endpoint"])})
        ep["items"].append(item)
        roles.add(item["role"])
    for area in areas.values():
        for ep in area["endpoints"].values():
            by_role: dict[str, list[str]] = defaultdict(list)
            for item in ep["items"]:
                by_role[item["role"]].append(words.item_key(item))
            ep["roles"] = {role: SYMBOL[worst(keys)] for role, keys in by_role.items()}
            ep["status"] = SYMBOL[worst([k for keys in by_role.values() for k in keys])]
            ep["items"].sort(key=lambda i: (words.role_rank(i["role"]), i["case"]))
            ep["findings"] = sorted(((i, f) for i in ep["items"] for f in i["findings"]),
                                    key=lambda pair: words.rank(pair[1]["class"]))
        area["endpoints"] = dict(sorted(area["endpoints"].items()))
    versions = sorted({r["version"] for r in history or []})
    grid = {ep_id: {v: SYMBOL[worst(h.by_version[v])] for v in versions if v in h.by_version}
            for ep_id, h in sorted(histories.items())}
    security = sorted(((item, f) for item in results["items"] for f in item["findings"] if f["class"] == "security"),
                      key=lambda pair: (pair[0]["endpoint"], pair[0]["role"], pair[0]["case"], pair[1]["json_path"]))
    return {"results": results, "areas": dict(sorted(areas.items())), "security": security,
            "roles": sorted(roles, key=words.role_rank), "legend": LEGEND, "symbol": SYMBOL,
            "item_symbol_key": words.item_key, "versions": versions, "grid": grid,
            "date": results["started"][:10], "prefix": words.prefix}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("docgen"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


def render_docs(results: Path | dict[str, Any], out: Path, history_dir: Path | None = None) -> list[Path]:
    """Write index.md, one page per area and one per endpoint, from a results.json (or its content, loaded by
    umami_results.load); return the files written."""
    doc = umami_results.load(results) if isinstance(results, Path) else results
    model = build_model(doc, load_history(history_dir))
    env = _environment()
    env.filters["redact_example"] = lambda value: redact_example(value, model["prefix"])
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
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def update_markers(markdown: Path, results_path: Path, docs_link: str = "") -> int:
    """Replace `<!--status:area/name-->...<!--status-end-->` and `<!--table:area-->...<!--table-end-->`
    blocks in `markdown` in place; text outside them is untouched. Returns the number replaced."""
    model = build_model(umami_results.load(results_path))
    endpoints = {ep_id: ep for area in model["areas"].values() for ep_id, ep in area["endpoints"].items()}
    table = _environment().get_template("_area_table.md.j2")
    count = 0

    def status(m: re.Match[str]) -> str:
        nonlocal count
        ep = endpoints.get(m.group("id"))
        if ep is None:
            return m.group(0)
        count += 1
        return f"{m.group(1)}{ep['status']}{m.group(4)}"

    def area_table(m: re.Match[str]) -> str:
        nonlocal count
        area = model["areas"].get(m.group("area"))
        if area is None:
            return m.group(0)
        count += 1
        body = table.render(area=area, name=m.group("area"), link_base=docs_link, **model)
        return f"{m.group(1)}{body}{m.group(4)}"

    text = markdown.read_text(encoding="utf-8")
    new = TABLE_MARKER.sub(area_table, MARKER.sub(status, text))
    if new != text:
        markdown.write_text(new, encoding="utf-8")
    return count

"""Render results.json (+ specs + history) into Markdown with Jinja2.

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


from conformance.checks import class_rank
from conformance.loader import Endpoint, SpecSet, load_specs
from conformance.results import load_results
from docgen.history import endpoint_histories, load_history

# Worst first: an endpoint/role cell shows the worst outcome of its cases.
LEGEND = [
    ("🔓", "security", "security: a success answer exposes a password, a password hash or another principal's secret"),
    ("🛑", "removed", "endpoint missing: 404/405 where the spec expects success"),
    ("🚨", "structure", "structure mismatch: a field added, removed or retyped, or auth looser than the spec"),
    ("⚠️", "status", "status mismatch: another status code than the spec says"),
    ("🔌", "unavailable", "unavailable: a transient failure (502/503/504, a dropped connection) after every retry; "
                          "not checked, not drift"),
    ("📝", "known", "known difference: a reviewed deviation listed in specs/known-differences.yaml"),
    ("✅", "passed", "passed with schema check"),
    ("✔️", "passed-no-schema", "passed, no schema for this status (e.g. a plain-text error)"),
    ("⏳", "skipped", "not checked on this server (version, read-only or role not available; reason given)"),
]
SYMBOL = {key: sym for sym, key, _ in LEGEND}
RANK = {key: i for i, (_, key, _) in enumerate(LEGEND)}
STATUS_CLASSES = {"status-changed", "auth-stricter"}
ROLE_ORDER = ("admin", "user", "view-only", "share", "anonymous")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
PREFIX = re.compile(r"ucf-\d{8}t\d{6}-[0-9a-f]{4}-")
MARKER = re.compile(r"(<!--status:(?P<id>[a-z0-9-]+/[a-z0-9-]+)-->)(?P<body>.*?)(<!--status-end-->)", re.S)
TABLE_MARKER = re.compile(r"(<!--table:(?P<area>[a-z0-9-]+)-->\n)(?P<body>.*?)(<!--table-end-->)", re.S)


def item_symbol_key(item: dict[str, Any]) -> str:
    """The legend key of one item."""
    outcome = item["outcome"]
    if outcome in ("passed", "passed-no-schema", "known", "unavailable"):
        return outcome
    if outcome == "failed":
        classes = {f["class"] for f in item["findings"] if not f["known"]}
        if "security" in classes:
            return "security"
        if "endpoint-missing" in classes:
            return "removed"
        return "status" if classes <= STATUS_CLASSES else "structure"
    return "skipped"


def worst(keys: list[str]) -> str:
    return min(keys, key=lambda k: RANK[k]) if keys else "skipped"


def redact_example(value: Any) -> Any:
    """Ids, timestamps and run prefixes replaced, so examples stay stable from run to run."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = UUID.sub("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", text)
    text = TIMESTAMP.sub("2000-01-01T00:00:00.000Z", text)
    return json.loads(PREFIX.sub("ucf-<run>-", text))


def field_rows(schema: Any, resolver: Any, path: str = "$", required: bool = True,
               depth: int = 0) -> list[dict[str, str]]:
    """The response schema as a flat field table: JSON path, type, required, description."""
    hops = 0
    while isinstance(schema, dict) and "$ref" in schema and hops < 10:
        resolved = resolver.lookup(schema["$ref"])
        schema, resolver, hops = resolved.contents, resolved.resolver, hops + 1
    if not isinstance(schema, dict) or depth > 8:
        return []
    variants = schema.get("oneOf") or schema.get("anyOf")
    if variants:
        types = []
        for v in variants:
            rows = field_rows(v, resolver, path, required, depth + 1)
            types.append(rows[0]["type"] if rows else "any")
        return [{"path": path, "type": " or ".join(types), "required": "yes" if required else "no",
                 "description": schema.get("description", "")}]
    kind = schema.get("type", "enum" if "enum" in schema else "any")
    kind = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if "enum" in schema:
        kind += " (" + ", ".join(json.dumps(e) for e in schema["enum"]) + ")"
    rows = [{"path": path, "type": kind, "required": "yes" if required else "no",
             "description": schema.get("description", "")}]
    for name, sub in sorted(schema.get("properties", {}).items()):
        rows += field_rows(sub, resolver, f"{path}.{name}", name in schema.get("required", []), depth + 1)
    if isinstance(schema.get("items"), dict):
        rows += field_rows(schema["items"], resolver, f"{path}[*]", True, depth + 1)
    return rows


def _spec_view(ep: Endpoint, specs: SpecSet, version: str | None) -> dict[str, Any]:
    """Parameters, auth and the success schema's field table, from the spec."""
    uses: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for case in ep.cases:
        for where, values in (("path", case.path_params), ("query", case.query),
                              ("body", case.body if isinstance(case.body, dict) else {})):
            for name, value in values.items():
                uses[(where, name)][json.dumps(value, ensure_ascii=False)].append(case.name)
    params = {key: [f"`{value}`" + ("" if len(cases) == len(ep.cases) else f" ({', '.join(cases)})")
                    for value, cases in sorted(by_value.items())]
              for key, by_value in uses.items()}
    success = [r for r in ep.responses if 200 <= r.status < 300 and r.schema is not None
               and (version is None or r.versions.contains(version, prereleases=True))]
    fields = (field_rows(success[0].schema, specs.registry.resolver(base_uri=success[0].schema_uri))
              if success else [])
    return {"params": sorted(params.items()), "auth": sorted(ep.auth.items(), key=lambda kv: ROLE_ORDER.index(kv[0])),
            "fields": fields, "summary": ep.summary, "versions": str(ep.versions) or "all",
            "schema_status": success[0].status if success else None}


def build_model(results: dict[str, Any], specs: SpecSet | None = None,
                history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Group items by area and endpoint, with one status cell per role."""
    areas: dict[str, dict[str, Any]] = defaultdict(lambda: {"endpoints": {}})
    spec_eps = {e.id: e for e in specs.endpoints} if specs else {}
    version = results["server"]["version"]
    histories = endpoint_histories(history or [])
    roles: set[str] = set()
    for item in results["items"]:
        ep = areas[item["area"]]["endpoints"].setdefault(item["endpoint"], {
            "id": item["endpoint"], "slug": item["endpoint"].split("/", 1)[1], "method": item["method"],
            "path": item["path"], "source": item.get("source", ""), "operation_id": item.get("operation_id"),
            "items": [], "spec": _spec_view(spec_eps[item["endpoint"]], specs, version)
            if item["endpoint"] in spec_eps and specs else None,
            "history": histories.get(item["endpoint"])})
        ep["items"].append(item)
        roles.add(item["role"])
    for area in areas.values():
        for ep in area["endpoints"].values():
            by_role: dict[str, list[str]] = defaultdict(list)
            for item in ep["items"]:
                by_role[item["role"]].append(item_symbol_key(item))
            ep["roles"] = {role: SYMBOL[worst(keys)] for role, keys in by_role.items()}
            ep["status"] = SYMBOL[worst([k for keys in by_role.values() for k in keys])]
            ep["items"].sort(key=lambda i: (ROLE_ORDER.index(i["role"]), i["case"]))
            ep["findings"] = sorted(((i, f) for i in ep["items"] for f in i["findings"]),
                                    key=lambda pair: class_rank(pair[1]["class"]))
        area["endpoints"] = dict(sorted(area["endpoints"].items()))
    versions = sorted({r["version"] for r in history or []})
    grid = {ep_id: {v: SYMBOL[worst(h.by_version[v])] for v in versions if v in h.by_version}
            for ep_id, h in sorted(histories.items())}
    security = sorted(((item, f) for item in results["items"] for f in item["findings"] if f["class"] == "security"),
                      key=lambda pair: (pair[0]["endpoint"], pair[0]["role"], pair[0]["case"], pair[1]["json_path"]))
    return {"results": results, "areas": dict(sorted(areas.items())), "security": security,
            "roles": [r for r in ROLE_ORDER if r in roles], "legend": LEGEND, "symbol": SYMBOL,
            "item_symbol_key": item_symbol_key, "versions": versions, "grid": grid,
            "date": results["started"][:10]}


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("docgen"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["redact_example"] = redact_example
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


def render_docs(results_path: Path, out: Path, specs_dir: Path | None = None,
                history_dir: Path | None = None) -> list[Path]:
    """Write index.md, one page per area and one per endpoint; return the files written."""
    specs = load_specs(specs_dir) if specs_dir else load_specs()
    model = build_model(load_results(results_path), specs, load_history(history_dir))
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
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def update_markers(markdown: Path, results_path: Path, docs_link: str = "") -> int:
    """Replace `<!--status:area/name-->...<!--status-end-->` and `<!--table:area-->...<!--table-end-->`
    blocks in `markdown` in place; text outside them is untouched. Returns the number replaced."""
    model = build_model(load_results(results_path))
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

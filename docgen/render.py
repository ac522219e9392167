"""Render results.json (+ history, + the examples of the last docs) into Markdown with Jinja2; results.json alone
says what the docs show.

The same inputs always give the same bytes: everything is sorted, and examples have ids, times, run prefixes and
traffic counts normalised. A page changes only when the API does: the run's time and counts are on the index
alone, and an endpoint's example stays as it was (`examples.json` beside the pages keeps it) while new answers
have the same shape.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

import umami_results
from docgen.history import endpoint_histories, load_history, shape_hash
from docgen.legend import LEGEND, SYMBOL, Vocabulary, other_release_endpoints, worst

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# A date with an optional time and zone: "2026-12-07", "2026-12-07 13:00:00", "2026-12-07T13:00:00.123Z".
DATETIME = re.compile(r"(?<!\d)\d{4}-\d{2}-\d{2}(?P<time>[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
# Epoch times in milliseconds (2001-2286) and seconds (2017-2033), also inside messages ("endAt must be ...").
EPOCH_MS, EPOCH_S = re.compile(r"(?<!\d)1\d{12}(?!\d)"), re.compile(r"(?<!\d)1[5-9]\d{8}(?!\d)")
# Fields that count traffic: they grow with every seed and every visit, so examples show them as 1.
COUNTS = {"pageviews", "visitors", "visits", "bounces", "totaltime", "views", "y", "events", "sessions",
          "count", "total", "sum", "value", "records", "fields", "average", "returnVisitors"}
EXAMPLES = "examples.json"
MARKER = re.compile(r"(<!--status:(?P<id>[a-z0-9-]+/[a-z0-9-]+)-->)(?P<body>.*?)(<!--status-end-->)", re.S)
TABLE_MARKER = re.compile(r"(<!--table:(?P<area>[a-z0-9-]+)-->\n)(?P<body>.*?)(<!--table-end-->)", re.S)
OPENING = re.compile(r"<!--(?:status:[a-z0-9-]+/[a-z0-9-]+|table:[a-z0-9-]+)-->")  # of either block
EXAMPLE_NOTE = ("Ids, times (as 2000-01-01, epoch 946684800000) and traffic counts (as 1) are normalised: they "
                "change from run to run.")


def _time_free(text: str) -> str:
    text = DATETIME.sub(lambda m: "2000-01-01" + re.sub(r"\d", "0", m.group("time") or ""), text)
    return EPOCH_S.sub("946684800", EPOCH_MS.sub("946684800000", text))


def normalise(value: Any, prefix: re.Pattern[str], key: str | None = None) -> Any:
    """`value` with ids, times, run prefixes and traffic counts (a number, or a numeric string, under a key of
    COUNTS) replaced by fixed stand-ins, so that it stays the same from run to run."""
    if isinstance(value, dict):
        return {k: normalise(v, prefix, k) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v, prefix, key) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if key in COUNTS and (isinstance(value, (int, float)) or re.fullmatch(r"-?\d+(\.\d+)?", str(value))):
        return 1 if isinstance(value, (int, float)) else "1"
    if isinstance(value, (int, float)):
        return json.loads(_time_free(json.dumps(value)))
    return prefix.sub("ucf-<run>-", _time_free(UUID.sub("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", value)))


def example(ep: dict[str, Any], previous: dict[str, Any] | None, date: str,
            prefix: re.Pattern[str]) -> dict[str, Any] | None:
    """The endpoint's example: its first passing item with a body, normalised; the previous docs' example while
    it is of the same item, status and body shape (`shape_hash`, as the history compares runs; with the date it
    was taken), else this run's."""
    item = next((i for i in ep["items"] if i.get("example") is not None
                 and i["outcome"] in ("passed", "passed-no-schema", "known")), None)
    if item is None:
        return None
    body = normalise(item["example"], prefix)
    new = {"role": item["role"], "case": item["case"], "status": item["actual_status"], "taken": date,
           "shape": shape_hash(item), "body": body}
    same = ("role", "case", "status", "shape")
    if previous and all(previous.get(k) == new[k] for k in same):
        return previous
    return new


def build_model(results: dict[str, Any], history: list[dict[str, Any]] | None = None,
                examples: dict[str, Any] | None = None) -> dict[str, Any]:
    """Group items by area and endpoint, with one status cell per role and the example (`examples`: those of
    the last docs, by endpoint)."""
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
    absent = other_release_endpoints(results["items"])
    for area in areas.values():  # only this server's release: the endpoints it lacks are one list on the index
        area["endpoints"] = {ep_id: ep for ep_id, ep in area["endpoints"].items() if ep_id not in absent}
    areas = {name: area for name, area in areas.items() if area["endpoints"]}
    for area in areas.values():
        for ep in area["endpoints"].values():
            by_role: dict[str, list[str]] = defaultdict(list)
            for item in ep["items"]:
                by_role[item["role"]].append(words.item_key(item))
            ep["roles"] = {role: SYMBOL[worst(keys)] for role, keys in by_role.items()}
            ep["status"] = SYMBOL[worst([k for keys in by_role.values() for k in keys])]
            ep["items"].sort(key=lambda i: (words.role_rank(i["role"]), i["case"]))
            ep["findings"] = sorted(((i, _time_free_finding(f, words.prefix)) for i in ep["items"]
                                     for f in i["findings"]), key=lambda pair: words.rank(pair[1]["class"]))
            ep["example"] = example(ep, (examples or {}).get(ep["id"]), results["started"][:10], words.prefix)
        area["endpoints"] = dict(sorted(area["endpoints"].items()))
    versions = sorted({r["version"] for r in history or []})
    grid = {ep_id: {v: SYMBOL[worst(h.by_version[v])] for v in versions if v in h.by_version}
            for ep_id, h in sorted(histories.items())}
    security = sorted(((item, f) for item in results["items"] for f in item["findings"] if f["class"] == "security"),
                      key=lambda pair: (pair[0]["endpoint"], pair[0]["role"], pair[0]["case"], pair[1]["json_path"]))
    return {"results": results, "areas": dict(sorted(areas.items())), "security": security,
            "roles": sorted(roles, key=words.role_rank), "legend": LEGEND, "symbol": SYMBOL,
            "item_symbol_key": words.item_key, "versions": versions, "grid": grid,
            "date": results["started"][:10], "prefix": words.prefix, "example_note": EXAMPLE_NOTE,
            "absent": sorted(absent)}


def _time_free_finding(finding: dict[str, Any], prefix: re.Pattern[str]) -> dict[str, Any]:
    """A finding as a page shows it: its expected and actual values normalised as examples are."""
    key = re.sub(r"\[.*?\]", "", finding["json_path"]).rsplit(".", 1)[-1]
    return {**finding, "expected": normalise(finding["expected"], prefix, key),
            "actual": normalise(finding["actual"], prefix, key)}


@cache
def markdown_environment() -> Environment:
    """The Jinja2 environment of the docs' Markdown pages, one per process: each template compiles once."""
    return new_markdown_environment()


def new_markdown_environment() -> Environment:
    """A Jinja2 environment of Markdown pages (the docs and the reference): templates of docgen, `cell`."""
    env = Environment(loader=PackageLoader("docgen"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
    env.filters["cell"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


def render_docs(results: Path | dict[str, Any], out: Path, history_dir: Path | None = None,
                examples: Path | None = None) -> list[Path]:
    """Write index.md, one page per area and one per endpoint, and `examples.json` (the examples shown, which the
    next rendering keeps while answers keep their shape), from a results.json (or its content, loaded by
    umami_results.load); `examples`: the last docs' examples.json (default: the one in `out`). Returns the files
    written."""
    doc = umami_results.load(results) if isinstance(results, Path) else results
    examples = examples or out / EXAMPLES
    previous = json.loads(examples.read_text(encoding="utf-8")) if examples.is_file() else {}
    model = build_model(doc, load_history(history_dir), previous)
    env = markdown_environment()
    shown = {ep_id: ep["example"] for area in model["areas"].values() for ep_id, ep in area["endpoints"].items()
             if ep["example"]}
    pages: dict[Path, str] = {Path("index.md"): env.get_template("index.md.j2").render(**model),
                              Path(EXAMPLES): json.dumps({**previous, **shown}, indent=1, sort_keys=True,
                                                         ensure_ascii=False) + "\n"}
    for name, area in model["areas"].items():
        pages[Path("areas") / f"{name}.md"] = env.get_template("area.md.j2").render(
            name=name, area=area, **model)
        for ep in area["endpoints"].values():
            pages[Path("endpoints") / name / f"{ep['slug']}.md"] = env.get_template(
                "endpoint.md.j2").render(ep=ep, area_name=name, **model)
    return write_pages(out, pages)


def write_pages(out: Path, pages: dict[Path, str]) -> list[Path]:
    """Write `pages` (path below `out` -> text), in path order, touching only a file whose text changed (its time
    stays as it was otherwise). Returns the files."""
    written = []
    for rel, text in sorted(pages.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def update_markers(markdown: Path, results_path: Path, docs_link: str = "") -> tuple[int, list[str]]:
    """Replace `<!--status:area/name-->...<!--status-end-->` and `<!--table:area-->...<!--table-end-->`
    blocks in `markdown` in place; text outside them is untouched. Returns the number replaced and the markers
    left as they were, each as `file:line: marker why`: one without an end of its own (the text up to another
    block's end is never swallowed), a table marker without a line break after it, one naming nothing of the
    results."""
    model = build_model(umami_results.load(results_path))
    endpoints = {ep_id: ep for area in model["areas"].values() for ep_id, ep in area["endpoints"].items()}
    table = markdown_environment().get_template("_area_table.md.j2")
    text = markdown.read_text(encoding="utf-8")
    parts: list[str] = []  # the text with the blocks filled, four parts per block
    problems: list[str] = []
    done = 0  # where the text not yet copied begins
    for opening in OPENING.finditer(text):
        status = opening.group(0).startswith("<!--status:")
        block = (MARKER if status else TABLE_MARKER).match(text, opening.start())
        following = OPENING.search(text, opening.end())
        why = None
        if block is None:
            why = "has no <!--table-end-->" if not status and text.startswith("\n", opening.end()) else \
                "has no <!--status-end-->" if status else "is not followed by a line break"
        elif following is not None and following.start() < block.end():
            why = f"has no {block.group(4)} of its own"
        else:
            ep, area = (endpoints.get(block.group("id")), None) if status else (None, model["areas"].get(
                block.group("area")))
            if ep is None and area is None:
                why = f"names no {'endpoint' if status else 'area'} of the results"
            else:
                body = ep["status"] if ep else table.render(area=area, name=block.group("area"),
                                                            link_base=docs_link, **model)
                parts += [text[done:block.start()], block.group(1), body, block.group(4)]
                done = block.end()
        if why:
            problems.append(f"{markdown}:{text.count(chr(10), 0, opening.start()) + 1}: {opening.group(0)} {why}")
    new = "".join(parts) + text[done:]
    if new != text:
        markdown.write_text(new, encoding="utf-8")
    return len(parts) // 4, problems

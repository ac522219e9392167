"""The upgrade check: what changed between two results.json files, classified by written rules.

Items are paired by id (endpoint[role-case]). A pair is compared only when both runs have an answer for it;
otherwise it is "not compared" with its reason (skipped, out of range, not recorded, unavailable, not in the
other run), never a change. An endpoint is "removed" or "added" only on evidence: the server's no-route
answer (405, or a 404 page) on one side against a success or a documented error on the other. `RULES` is the
classification table, printed in README.md ("Upgrade check") and pinned by tests/test_diff.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from docgen.history import json_types
from umami_results.vocabulary import NO_ANSWER, Outcome, SkipCode, skip_code

KNOWN = "📝"
PARAMETER = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True)
class Rule:
    """One change kind: breaking or not, when it applies, and why."""

    kind: str
    breaking: bool
    when: str
    why: str


RULES = [
    Rule("endpoint-removed", True, "the old server answers the route with a success or a documented error, the new "
         "one with its no-route answer (405, or a 404 page)", "every call fails"),
    Rule("auth-stricter", True, "a success becomes 401 or 403", "callers that were allowed are refused"),
    Rule("now-rejected", True, "a success becomes another 4xx (400, 404, 409, ...)",
         "a request that worked fails: its parameters or its path are no longer accepted"),
    Rule("server-error", True, "any answer below 500 becomes a 5xx (also a 4xx, or a route that was missing)",
         "the request fails, and a client loses the error it could handle"),
    Rule("content-type-changed", True, "a success answers with another media type",
         "a client cannot parse the body it gets"),
    Rule("operation-replaced", True, "one route (method and path) is another operation of the specs on each "
         "side, and both servers answer it", "requests written for the old operation must change"),
    Rule("field-removed", True, "a JSON path of a success body is gone", "code reading it gets undefined"),
    Rule("field-retyped", True, "a JSON path's types share none (null aside; integer and number are one)",
         "code using the value as the old type fails"),
    Rule("endpoint-added", False, "the old server gives its no-route answer, the new one a success or a "
         "documented error", "nothing existing changes"),
    Rule("auth-looser", False, "a 401 or 403 becomes a success",
         "nothing breaks, but more callers get data: review who may"),
    Rule("now-accepted", False, "another 4xx becomes a success", "a request that failed now works"),
    Rule("server-error-fixed", False, "a 5xx becomes an answer below 500", "a failure became a proper answer"),
    Rule("error-status-changed", False, "a 4xx becomes another 4xx (for example 403 to 401)",
         "the request fails either way; only code branching on the exact status notices"),
    Rule("success-status-changed", False, "a 2xx becomes another 2xx", "the request still succeeds; the body "
         "rules catch a body that changed"),
    Rule("error-format-changed", False, "an error answers with another media type or JSON error shape; one entry "
         "per endpoint", "the request fails either way; code that shows or parses error bodies must adapt"),
    Rule("field-added", False, "a JSON path of a success body is new (its children are not listed again)",
         "clients ignore fields they do not know"),
    Rule("field-nullability", False, "a JSON path was only null on one side and typed on the other",
         "a null sample says nothing of the type: it depends on the data, not the API"),
]
RULE = {r.kind: r for r in RULES}
ORDER = {r.kind: i for i, r in enumerate(RULES)}


@dataclass(frozen=True, order=True)
class Change:
    """One difference between the old and the new run."""

    endpoint: str
    kind: str
    where: str  # item id, JSON path, or the path of a route no spec describes
    old: str
    new: str
    area: str = ""

    @property
    def breaking(self) -> bool:
        return RULE[self.kind].breaking


@dataclass(frozen=True)
class Answer:
    """What one run got for one item."""

    status: int
    media: str  # media type without parameters, "" for none
    shape: dict[str, str]
    expected: int | None
    body: bool = True  # False: an empty body
    known: bool = False  # a known difference of that server (specs/known-differences.yaml)

    @property
    def success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def no_route(self) -> bool:
        """The server's answer to a route it lacks: 405, or a 404 page (an object not found is a 404 in
        plain text or JSON)."""
        return self.status == 405 or (self.status == 404 and self.media == "text/html")

    @property
    def documented(self) -> bool:
        """A success, or the error the spec expects (and not the no-route answer)."""
        return not self.no_route and (self.success or self.status == self.expected)

    def error_format(self) -> str:
        """Media type and, for JSON, the keys of the body (two levels), e.g. `application/json {error:{code}}`."""
        if not self.media:
            return "text without a content type" if self.body else "no body"
        keys = sorted(p for p in self.shape if p.count(".") in (1, 2) and "[" not in p)
        if not keys:
            return self.media
        top: dict[str, list[str]] = defaultdict(list)
        for path in keys:
            parts = path.split(".")[1:]
            if len(parts) == 1:
                top.setdefault(parts[0], [])
            else:
                top[parts[0]].append(parts[1])
        inner = ",".join(f"{k}:{{{','.join(v)}}}" if v else k for k, v in sorted(top.items()))
        return f"{self.media} {{{inner}}}"


@dataclass
class Diff:
    """The changes, and what was not compared with why (per side and reason)."""

    changes: list[Change]
    compared: int
    not_compared: Counter[str] = field(default_factory=Counter)
    uncompared_endpoints: dict[str, list[str]] = field(default_factory=dict)  # reason -> endpoints

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]


def _answer(item: dict[str, Any]) -> Answer | None:
    if item.get("outcome") in {None, *NO_ANSWER} or item.get("actual_status") is None:
        return None
    media = (item.get("content_type") or "").split(";")[0].strip().lower()
    return Answer(item["actual_status"], media, item.get("shape") or {}, item.get("expected_status"),
                  item.get("example") not in (None, ""), item.get("outcome") == "known")


UNCOMPARED = {SkipCode.CASE_OUT_OF_RANGE: "case out of range", SkipCode.OUT_OF_RANGE: "out of range",
              SkipCode.NOT_RECORDED: "not recorded"}  # how the report says why a skipped item was not compared


def _why_not(item: dict[str, Any] | None, side: str) -> str:
    if item is None:
        return f"not in the {side} run"
    if item.get("outcome") == Outcome.UNAVAILABLE:
        return f"unavailable in the {side} run"
    code = skip_code(item)
    if code in UNCOMPARED:
        return f"{UNCOMPARED[code]} in the {side} run"
    if item.get("outcome") == Outcome.SKIPPED:
        return f"skipped in the {side} run: {code.value if code else 'no reason'}"
    return f"no answer in the {side} run"


def _items(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The items that compare: spec items, not discovery probes or generated bad inputs."""
    return {i["id"]: i for i in results["items"] if i.get("area") != "discovery" and i.get("case") != "negative"}


def _presence(answers: list[Answer], route: dict[str, Any] | None, method: str) -> tuple[str, str]:
    """present | absent | unknown for one endpoint on one server, with the status that shows it."""
    if any(a.expected == 405 for a in answers):
        # The spec describes a method the route lacks: a refusal (401) only shows the route's other methods.
        lacking = [a for a in answers if a.status == 405]
        return ("absent", "405") if lacking else ("unknown", "")
    documented = [a for a in answers if a.documented]
    if documented:
        return "present", str(min(documented, key=lambda a: (not a.success, a.status)).status)
    if answers and all(a.no_route for a in answers):
        return "absent", str(answers[0].status)
    if route and not answers:
        if route["presence"] == "absent":
            return "absent", f"{route['status']} (probe: no route)"
        if route["presence"] == "present" and method == "GET" and route["status"] != 405:
            return "present", f"{route['status']} (probe)"
    return "unknown", ""


def template(path: str) -> str:
    """A path template with its parameters unnamed (`/websites/{}/stats`): sources name them differently."""
    return PARAMETER.sub("{}", path)


def _routes(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Route evidence of the run (discovery probes, recorded GETs, version probes) by path template."""
    found = {template(r["path"]): r for r in results.get("routes") or []}
    detection = (results.get("server") or {}).get("version_detection") or {}
    for probe in detection.get("probes") or []:
        if probe["answer"] in ("present", "absent") and template(probe["path"]) not in found:
            found[template(probe["path"])] = {"path": probe["path"], "presence": probe["answer"], "status": "?"}
    return found


def _status_change(old: Answer, new: Answer) -> str:
    if new.status >= 500 > old.status:
        return "server-error"
    if old.status >= 500 > new.status:
        return "server-error-fixed"
    if old.success and new.status in (401, 403):
        return "auth-stricter"
    if old.success and not new.success:
        return "now-rejected"
    if old.status in (401, 403) and new.success:
        return "auth-looser"
    if new.success and not old.success:
        return "now-accepted"
    return "success-status-changed" if old.success else "error-status-changed"


def _label(answer: Answer) -> str:
    return f"{answer.status}{' (no route)' if answer.no_route else ''}{f' {KNOWN}' if answer.known else ''}"


def diff_results(old: dict[str, Any], new: dict[str, Any]) -> Diff:
    """Every change from `old` to `new` by the rules in `RULES`, and what could not be compared."""
    a, b = _items(old), _items(new)
    routes_a, routes_b = _routes(old), _routes(new)
    by_endpoint: dict[str, list[str]] = defaultdict(list)
    for item_id in sorted(a.keys() | b.keys()):
        by_endpoint[(a.get(item_id) or b[item_id])["endpoint"]].append(item_id)
    changes: set[Change] = set()
    result = Diff([], 0)
    only: dict[str, dict[tuple[str, str], set[str]]] = {"old": defaultdict(set), "new": defaultdict(set)}
    for ep, ids in sorted(by_endpoint.items()):
        first = a.get(ids[0]) or b[ids[0]]
        area, method, path = first["area"], first["method"], first["path"]
        olds = {i: _answer(a[i]) for i in ids if i in a}
        news = {i: _answer(b[i]) for i in ids if i in b}
        was, was_status = _presence([x for x in olds.values() if x], routes_a.get(template(path)), method)
        now, now_status = _presence([x for x in news.values() if x], routes_b.get(template(path)), method)
        if (was, now) == ("present", "absent"):
            changes.add(Change(ep, "endpoint-removed", f"{method} {path}", was_status, now_status, area))
        elif (was, now) == ("absent", "present"):
            changes.add(Change(ep, "endpoint-added", f"{method} {path}", was_status, now_status, area))
        reasons = []
        for item_id in ids:
            o, n = olds.get(item_id), news.get(item_id)
            if o is None or n is None:
                reason = _why_not(a.get(item_id), "old") if o is None else _why_not(b.get(item_id), "new")
                result.not_compared[reason] += 1
                reasons.append(reason)
                continue
            result.compared += 1
            if {was, now} == {"present", "absent"}:
                continue  # the endpoint-level entry says it
            changes.update(_compare(ep, area, item_id, o, n))
        if len(reasons) == len(ids):
            result.uncompared_endpoints.setdefault(Counter(reasons).most_common(1)[0][0], []).append(ep)
            for side, present, out in (("old", was, "out of range in the new run"),
                                       ("new", now, "out of range in the old run")):
                if present == "present" and set(reasons) == {out}:
                    only[side][(method, path)].add(ep)
    for route in sorted(only["old"].keys() & only["new"].keys()):
        for before in sorted(only["old"][route]):
            for after in sorted(only["new"][route]):
                area = (b.get(by_endpoint[after][0]) or {}).get("area", "")
                changes.add(Change(after, "operation-replaced", " ".join(route), before, after, area))
    changes.update(_route_changes(routes_a, routes_b,
                                  {template((a.get(i) or b[i])["path"]) for i in a.keys() | b.keys()}))
    result.changes = sorted(_one_error_format_per_endpoint(changes), key=sort_key)
    return result


def _compare(ep: str, area: str, item_id: str, o: Answer, n: Answer) -> list[Change]:
    if o.status != n.status:
        return [Change(ep, _status_change(o, n), item_id, _label(o), _label(n), area)]
    if not o.success:
        fo, fn = o.error_format(), n.error_format()
        return [Change(ep, "error-format-changed", "errors", fo, fn, area)] if fo != fn else []
    if o.media != n.media:
        return [Change(ep, "content-type-changed", item_id, o.media or "no body", n.media or "no body", area)]
    return [Change(ep, kind, path, before, after, area)
            for kind, path, before, after in field_changes(o.shape, n.shape)]


def _one_error_format_per_endpoint(changes: set[Change]) -> list[Change]:
    """Error-format entries of one endpoint merged: every old format → every new format."""
    merged: dict[str, tuple[set[str], set[str], str]] = {}
    rest = []
    for c in changes:
        if c.kind == "error-format-changed":
            olds, news, _ = merged.setdefault(c.endpoint, (set(), set(), c.area))
            olds.add(c.old)
            news.add(c.new)
        else:
            rest.append(c)
    return rest + [Change(ep, "error-format-changed", "errors", " / ".join(sorted(o)), " / ".join(sorted(n)), area)
                   for ep, (o, n, area) in merged.items()]


def _route_changes(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]],
                   specified: set[str]) -> list[Change]:
    """Routes no spec describes that one server has and the other lacks (discovery and recordings)."""
    changes = []
    for key in sorted((old.keys() & new.keys()) - specified):
        before, after = old[key], new[key]
        kind = {("present", "absent"): "endpoint-removed", ("absent", "present"): "endpoint-added"}.get(
            (before["presence"], after["presence"]))
        if kind:
            path = after["path"] if kind == "endpoint-added" else before["path"]
            changes.append(Change(f"GET {path}", kind, path, str(before["status"]), str(after["status"]),
                                  "routes without a spec"))
    return changes


def _norm(types: str) -> set[str]:
    return json_types(types) - {"null"}


FIELD_NAME = re.compile(r"[a-z_][A-Za-z0-9_]*")
KEY_REST = re.compile(r"[^.\[]*(.*)")


def keyed_by_data(shape: dict[str, str]) -> dict[str, str]:
    """The shape with objects keyed by data (`$.countries.US`, `$.urls./pricing`: a key that is no camelCase
    field name) merged under `{key}`, so that other data is not another structure."""
    maps = set()
    for path in shape:
        head, _, key = path.rpartition(".")
        if head and "[" not in key and not FIELD_NAME.fullmatch(key):
            maps.add(head)
    if not maps:
        return shape
    merged: dict[str, set[str]] = {}
    for path, types in shape.items():
        head = next((h for h in sorted(maps, key=len) if path.startswith(h + ".")), None)
        if head:
            path = f"{head}.{{key}}" + KEY_REST.match(path[len(head) + 1:]).group(1)  # type: ignore[union-attr]
        merged.setdefault(path, set()).update(types.split("|"))
    return {p: "|".join(sorted(t)) for p, t in sorted(merged.items())}


def field_changes(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(kind, JSON path, old, new) between two body shapes; children of an added, removed or retyped path
    are not listed again, nor paths inside array items one side never saw (its array was empty)."""
    old, new = keyed_by_data(old), keyed_by_data(new)
    found: list[tuple[str, str, str, str]] = []
    covered: list[str] = []
    for path in sorted(old.keys() | new.keys()):
        if any(path.startswith(p + ".") or path.startswith(p + "[") for p in covered):
            continue
        if _unsampled(path, new if path in old else old):
            continue
        if path not in new:
            found.append(("field-removed", path, old[path], "absent"))
        elif path not in old:
            found.append(("field-added", path, "absent", new[path]))
        else:
            before, after = _norm(old[path]), _norm(new[path])
            if before and after and not before & after:
                found.append(("field-retyped", path, old[path], new[path]))
            elif bool(before) != bool(after):
                found.append(("field-nullability", path, old[path], new[path]))
                continue
            else:
                continue
        covered.append(path)
    return found


def _unsampled(path: str, other: dict[str, str]) -> bool:
    """`path` lies inside array items the other run never saw (its array was empty there)."""
    head = path
    while "[*]" in head:
        head = head[: head.rindex("[*]")]
        if head in other and f"{head}[*]" not in other:
            return True
    return False


def sort_key(c: Change) -> tuple[Any, ...]:
    return not c.breaking, ORDER[c.kind], c.area, c.endpoint, c.where, c.old, c.new


def _server(results: dict[str, Any]) -> str:
    server = results.get("server") or {}
    return f"Umami {server.get('release') or server.get('version') or 'unknown'}"


def diff_json(old: dict[str, Any], new: dict[str, Any], diff: Diff) -> str:
    """The diff for machines: sorted keys, the same bytes for the same inputs."""
    def side(r: dict[str, Any]) -> dict[str, Any]:
        server = r.get("server") or {}
        return {"version": server.get("version"), "release": server.get("release") or server.get("version"),
                "url": server.get("url"), "started": r.get("started")}

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


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_diff(old: dict[str, Any], new: dict[str, Any], diff: Diff) -> str:
    """Markdown for a pull request or a step summary: the summary first, then what breaks, the error format
    once, the changes per area, and what was not compared."""
    changes, breaking = diff.changes, diff.breaking
    lines = [f"# Upgrade check: {_server(old)} → {_server(new)}", "",
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

"""Run-vs-run diff (the upgrade check): what changed between two results.json files, and is it breaking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DENIED = {401, 403, 404}


@dataclass(frozen=True, order=True)
class Change:
    """One difference between the old and the new run."""

    endpoint: str
    kind: str  # endpoint-added | endpoint-removed | status-changed | auth-looser | auth-stricter | field-...
    where: str  # item id or JSON path
    old: str
    new: str
    breaking: bool


def _ran(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in items
            if i["outcome"] not in ("skipped", "unavailable", None) and i.get("actual_status")}


def _present(items: dict[str, dict[str, Any]]) -> set[str]:
    """Endpoints that answered something other than 404/405 to someone."""
    return {i["endpoint"] for i in items.values() if i["actual_status"] not in (404, 405)}


def _success(status: int) -> bool:
    return 200 <= status < 300


def diff_results(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """All changes from `old` to `new`, sorted; compares items with the same id (endpoint[role-case])."""
    a, b = _ran(old["items"]), _ran(new["items"])
    changes: set[Change] = set()
    present_a, present_b = _present(a), _present(b)
    for ep in present_b - present_a:
        changes.add(Change(ep, "endpoint-added", ep, "absent", "present", False))
    for ep in present_a - present_b:
        changes.add(Change(ep, "endpoint-removed", ep, "present", "absent", True))
    for item_id in sorted(a.keys() & b.keys()):
        old_item, new_item = a[item_id], b[item_id]
        ep = new_item["endpoint"]
        if ep in present_a - present_b:
            continue
        s_old, s_new = old_item["actual_status"], new_item["actual_status"]
        if s_old != s_new:
            if s_old in DENIED and _success(s_new):
                kind, breaking = "auth-looser", False
            elif _success(s_old) and s_new in (401, 403):
                kind, breaking = "auth-stricter", True
            else:
                kind, breaking = "status-changed", _success(s_old)
            changes.add(Change(ep, kind, item_id, str(s_old), str(s_new), breaking))
            continue
        changes.update(_field_changes(ep, old_item.get("shape") or {}, new_item.get("shape") or {}))
    return sorted(changes)


def _unsampled(path: str, other: dict[str, str]) -> bool:
    """`path` lies inside array items the other run never saw (its array was empty there)."""
    head = path
    while "[*]" in head:
        head = head[: head.rindex("[*]")]
        if head in other and f"{head}[*]" not in other:
            return True
    return False


def _field_changes(ep: str, old: dict[str, str], new: dict[str, str]) -> list[Change]:
    changes = []
    for path in sorted(old.keys() | new.keys()):
        if _unsampled(path, new if path in old else old):
            continue
        parent_gone = any(path.startswith(p + ".") or path.startswith(p + "[") for p in old.keys() - new.keys()
                          if p != path)
        if path not in new:
            if not parent_gone:
                changes.append(Change(ep, "field-removed", path, old[path], "absent", True))
        elif path not in old:
            parent_new = any(path.startswith(p + ".") or path.startswith(p + "[")
                             for p in new.keys() - old.keys() if p != path)
            if not parent_new:
                changes.append(Change(ep, "field-added", path, "absent", new[path], False))
        elif not set(old[path].split("|")) & set(new[path].split("|")):
            # Only disjoint types count: array items and optional values are samples, so a type set
            # that merely grows or shrinks ("string" vs "null|string") says more about the data.
            changes.append(Change(ep, "field-retyped", path, old[path], new[path], True))
    return changes


def render_diff(old: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> str:
    """Markdown: a summary line and one table row per change, breaking ones first."""
    def version(r: dict[str, Any]) -> str:
        return f"Umami {r['server']['version'] or 'unknown'} ({r['started']})"

    breaking = [c for c in changes if c.breaking]
    lines = [f"# Upgrade check: {version(old)} → {version(new)}", "",
             f"{len(changes)} change(s), {len(breaking)} breaking.", ""]
    if changes:
        lines += ["| Breaking | Endpoint | Change | Where | Old | New |",
                  "| :------: | :------- | :----- | :---- | :-- | :-- |"]
        for c in sorted(changes, key=lambda c: (not c.breaking, c.endpoint, c.kind, c.where)):
            lines.append(f"| {'💥 yes' if c.breaking else 'no'} | {c.endpoint} | {c.kind} | `{c.where}` "
                         f"| {c.old} | {c.new} |")
    return "\n".join(lines) + "\n"

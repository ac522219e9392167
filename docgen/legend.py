"""The docs' legend and how they read the vocabulary of a results.json (roles, finding classes, outcomes)."""

from __future__ import annotations

import re
from typing import Any

# Worst first: an endpoint/role cell shows the worst outcome of its cases. Keys are the finding groups and
# outcomes of results.json's vocabulary.
LEGEND = [
    ("🔓", "security", "security: a success answer exposes a password, a password hash or another principal's "
                      "secret, or a refused role gets other principals' objects"),
    ("🛑", "removed", "endpoint missing: 404/405 where the spec expects success"),
    ("🚨", "structure", "structure mismatch: a field added, removed or retyped, or auth looser than the spec"),
    ("⚠️", "status", "status mismatch: another status code than the spec says"),
    ("❗", "error", "error: the tool failed on this item (a bug to report, not a finding about the server)"),
    ("🔌", "unavailable", "unavailable: a transient failure (502/503/504, a dropped connection) after every retry; "
                          "not checked, not drift"),
    ("📝", "known", "known difference: a reviewed deviation listed in specs/known-differences.yaml"),
    ("✅", "passed", "passed with schema check"),
    ("✔️", "passed-no-schema", "passed, no schema for this status (e.g. a plain-text error)"),
    ("⏳", "skipped", "not checked on this server (version, read-only or role not available; reason given)"),
]
SYMBOL = {key: sym for sym, key, _ in LEGEND}
RANK = {key: i for i, (_, key, _) in enumerate(LEGEND)}
GROUP_ORDER = ("security", "removed", "structure", "status")


class Vocabulary:
    """The words of one results.json: roles in order, finding classes by severity and their groups."""

    def __init__(self, results: dict[str, Any]) -> None:
        words = results["vocabulary"]
        self.roles: list[str] = words["roles"]
        self.classes = [c["name"] for c in words["finding_classes"]]
        self.group = {c["name"]: c["group"] for c in words["finding_classes"]}
        self.prefix = re.compile(words["run_prefix"])

    def rank(self, cls: str) -> int:
        return self.classes.index(cls) if cls in self.classes else len(self.classes)

    def role_rank(self, role: str) -> int:
        return self.roles.index(role) if role in self.roles else len(self.roles)

    def item_key(self, item: dict[str, Any]) -> str:
        """The legend key of one item: its outcome, or for a failed one the worst group of its open findings."""
        outcome = item["outcome"]
        if outcome == "failed":
            groups = {self.group.get(f["class"], "structure") for f in item["findings"] if not f["known"]}
            return min(groups or {"structure"}, key=GROUP_ORDER.index)
        return outcome if outcome in SYMBOL else ("error" if outcome is None else "skipped")


def worst(keys: list[str]) -> str:
    return min(keys, key=lambda k: RANK[k]) if keys else "skipped"

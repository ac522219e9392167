"""The docs' legend and how they read the vocabulary of a results.json (roles, finding classes, outcomes)."""

from __future__ import annotations

import re
from typing import Any

from umami_results.vocabulary import FINDING_CLASSES, OUTCOMES, Outcome, release_endpoints

# Worst first: an endpoint/role cell shows the worst outcome of its cases. Keys are the finding groups and
# outcomes of results.json's vocabulary.
LEGEND = [
    ("🔓", "security", f"security: {FINDING_CLASSES['security']}"),
    ("🛑", "removed", f"endpoint missing: {FINDING_CLASSES['endpoint-missing']}"),
    ("🚨", "structure", "structure mismatch: a field added, removed or retyped, or auth looser than the spec"),
    ("⚠️", "status", "status mismatch: another status code than the spec says"),
    ("❗", "error", f"error: {OUTCOMES[Outcome.ERROR]}"),
    ("🔌", "unavailable", f"unavailable: {OUTCOMES[Outcome.UNAVAILABLE]}"),
    ("📝", "known", f"known difference: {OUTCOMES[Outcome.KNOWN]}"),
    ("✅", "passed", OUTCOMES[Outcome.PASSED]),
    ("✔️", "passed-no-schema", OUTCOMES[Outcome.PASSED_NO_SCHEMA]),
    ("⏳", "skipped", OUTCOMES[Outcome.SKIPPED]),
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


def other_release_endpoints(items: list[dict[str, Any]]) -> set[str]:
    """The endpoints the server's release lacks: every item of theirs skipped as of another release (the docs and
    the report show only this server's release, and these as one list or count)."""
    return {i["endpoint"] for i in items} - release_endpoints(items)

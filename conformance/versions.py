"""Umami versions: ranges, the route inventory of every release, and telling a server's version.

A range is a union of PEP 440 specifier sets (`">=2.0,<2.16 || >=3"`), because a few routes left
Umami and came back. The inventory (`specs/references/umami-routes.json`) lists every API route of
every release; the v3 contract (`specs/references/v3.yaml`) adds the newer API it describes. A server
that does not say its version (`/api/version` exists only in 2.7.0-2.17.0) is told by the routes it
answers: a few unauthenticated GETs, each chosen to split the releases still possible in two.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from conformance.yamlfile import ParsedCache, load_yaml

INVENTORY = "references/umami-routes.json"
CONTRACT = "references/v3.yaml"
MAX_PROBES = 24
PROBE_ROUND = 4  # probes chosen together, each to split what the others leave (asked side by side when concurrent)


class Versions:
    """A union of PEP 440 specifier sets, written `"<spec> || <spec>"`; empty means every version."""

    def __init__(self, text: str = "") -> None:
        self.text = " || ".join(p.strip() for p in text.split("||")) if text.strip() else ""
        try:
            self.parts = [SpecifierSet(p) for p in self.text.split(" || ")] if self.text else [SpecifierSet("")]
        except InvalidSpecifier as exc:
            raise ValueError(f"invalid version range {text!r} (use e.g. '>=2.0,<3' or '>=2.0,<2.16 || >=3')") \
                from exc
        self._contains: dict[tuple[str | Version, bool], bool] = {}  # asked for the same few versions per item

    def contains(self, version: str | Version, prereleases: bool = True) -> bool:
        key = (version, prereleases)
        found = self._contains.get(key)
        if found is None:
            found = self._contains[key] = any(p.contains(version, prereleases=prereleases) for p in self.parts)
        return found

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Versions({self.text!r})"

    def __bool__(self) -> bool:
        return bool(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Versions) and self.parts == other.parts


def path_regex(template: str) -> re.Pattern[str]:
    """A route template as a regex over concrete paths: each `{param}` matches one segment."""
    parts = re.split(r"(\{[^}]+\})", template.rstrip("/") or "/")
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "/?")


@lru_cache(maxsize=4096)  # asked for the same few hundred templates again and again
def template_key(path: str) -> str:
    """`/websites/{websiteId}/stats` and `/websites/{id}/stats` compare equal."""
    return re.sub(r"\{[^}]+\}", "{}", path.rstrip("/"))


def _segments(path: str) -> int:
    return path.strip("/").count("/")


@dataclass(frozen=True)
class Release:
    """One Umami release (or the API version of the contract) and its routes ("GET /path")."""

    version: str
    routes: frozenset[str]
    source: str = "release"

    def has_route(self, method: str, template: str) -> bool:
        key = template_key(template)
        return (method, key) in self._keys or ("ANY", key) in self._keys

    @cached_property
    def _keys(self) -> frozenset[tuple[str, str]]:
        """(method, template_key) of every route: `has_route` is asked for every endpoint of every release."""
        return frozenset((method, template_key(path)) for method, path in (r.split(" ", 1) for r in self.routes))


@dataclass
class Inventory:
    """Every known release, oldest first."""

    releases: list[Release]

    @classmethod
    def load(cls, specs_root: Path, parsed: ParsedCache | None = None) -> Inventory:
        """The releases of the route inventory, plus the contract's API version as the newest entry (`parsed`:
        see load_yaml)."""
        data = json.loads((specs_root / INVENTORY).read_text(encoding="utf-8"))
        routes: dict[str, set[str]] = {v: set() for v in data["versions"]}
        for route, versions in data["routes"].items():
            for v in versions:
                routes[v].add(route)
        releases = [Release(v, frozenset(r)) for v, r in routes.items()]
        contract_path = specs_root / CONTRACT
        if contract_path.exists():
            doc = load_yaml(contract_path, parsed)
            releases.append(Release(doc["versions"][0], frozenset(
                f"{op['method']} {op['path']}" for op in doc["operations"]), source="contract"))
        releases.sort(key=lambda r: Version(r.version))
        return cls(releases)

    @cached_property
    def templates(self) -> dict[str, frozenset[str]]:
        """Path template -> the versions that have a route (any method) at it."""
        found: dict[str, set[str]] = {}
        for r in self.releases:
            for route in r.routes:
                found.setdefault(route.split(" ", 1)[1], set()).add(r.version)
        return {t: frozenset(v) for t, v in sorted(found.items())}

    @cached_property
    def _regexes(self) -> dict[int, list[tuple[re.Pattern[str], frozenset[str]]]]:
        """The templates' regexes by their number of segments: a concrete path can only match those of its own."""
        by_length: dict[int, list[tuple[re.Pattern[str], frozenset[str]]]] = {}
        for t, v in self.templates.items():
            by_length.setdefault(_segments(t), []).append((path_regex(t), v))
        return by_length

    def versions_reaching(self, path: str) -> frozenset[str]:
        """The versions in which a request to the concrete `path` reaches a route (any method)."""
        return frozenset().union(*(v for rx, v in self._regexes.get(_segments(path), ()) if rx.fullmatch(path)))

    @property
    def versions(self) -> list[str]:
        return [r.version for r in self.releases]

    def releases_with(self, method: str, template: str) -> list[str]:
        """The releases (not the contract) that have this route."""
        return [r.version for r in self.releases if r.source == "release" and r.has_route(method, template)]

    def range_of(self, candidates: Iterable[str]) -> str:
        """The smallest range of the known versions holding exactly `candidates`. Between the newest
        release and the contract's API version lies the unknown: a server whose routes are those of the
        newest release is taken to be of its minor series, one with the contract's routes to be newer."""
        wanted = set(candidates)
        releases = self.releases
        runs: list[tuple[int, int]] = []
        for i, r in enumerate(releases):
            if r.version in wanted:
                if runs and runs[-1][1] == i - 1:
                    runs[-1] = (runs[-1][0], i)
                else:
                    runs.append((i, i))
        parts = []
        for lo, hi in runs:
            low = f">={releases[lo].version}"
            if releases[lo].source == "contract" and lo > 0:
                v = Version(releases[lo - 1].version)
                low = f">={v.major}.{v.minor + 1}"
            if hi + 1 >= len(releases):
                parts.append(low)
            elif releases[hi + 1].source == "contract":
                v = Version(releases[hi].version)
                parts.append(f"{low},<{v.major}.{v.minor + 1}")
            else:
                parts.append(f"{low},<{releases[hi + 1].version}")
        return " || ".join(parts)


@dataclass
class Detected:
    """What is known of the server's version: the releases it may be, how that was found."""

    candidates: list[str]
    range: str
    source: str
    probes: list[dict[str, str]] = field(default_factory=list)  # {path, answer: present|absent|unknown}

    @property
    def version(self) -> str:
        """The newest candidate: the version whose response shapes and known differences apply."""
        return max(self.candidates, key=Version)

    @property
    def release(self) -> str:
        """The release as far as it is known: exact only when one candidate is left (`2.10.0`), else the span of
        the candidates (`3.0.0–3.0.3`), never the newest one alone."""
        ordered = sorted(self.candidates, key=Version)
        return ordered[0] if len(ordered) == 1 else f"{ordered[0]}–{ordered[-1]}"

    def applies(self, versions: Versions) -> bool:
        """A spec applies when its range holds one of the releases the server may be."""
        return any(versions.contains(v) for v in self.candidates)

    @classmethod
    def exact(cls, version: str, source: str) -> Detected:
        return cls([version], f"=={version}", source)

    def as_dict(self) -> dict[str, object]:
        return {"range": self.range, "candidates": self.candidates, "source": self.source, "probes": self.probes}


Answer = Callable[[str], bool | None]  # concrete path -> route present, absent, or None when unknown


def _splits(reach: dict[str, frozenset[str]], candidates: set[str], tried: set[str], width: int) -> list[str]:
    """Up to `width` templates not tried yet, chosen one after the other: each the one that best splits the groups
    of candidates that the templates chosen before it leave (the first: the best split of the candidates). When
    no template splits them further, the round is filled with the next best splits of the candidates: they ask
    again what the others ask, for the answers a server leaves unknown (a gateway error, a path not recorded)."""
    groups: list[set[str]] = [candidates]
    chosen: list[str] = []
    while len(chosen) < width:
        split = _best(reach, groups, tried | set(chosen))
        if split is None:
            break
        chosen.append(split)
        groups = [part for g in groups for part in (g & reach[split], g - reach[split]) if part]
    while chosen and len(chosen) < width and (split := _best(reach, [candidates], tried | set(chosen))):
        chosen.append(split)
    return chosen


def _best(reach: dict[str, frozenset[str]], groups: list[set[str]], skip: set[str]) -> str | None:
    """The template that best splits `groups` (the smaller side of each, summed; the first such in `reach`), None
    when none splits any."""
    best: tuple[int, str] | None = None
    for t, versions in reach.items():
        if t not in skip:
            score = sum(min(len(g & versions), len(g - versions)) for g in groups)
            if score and (best is None or score > best[0]):
                best = (score, t)
    return best[1] if best else None


def probe_path(template: str) -> str:
    """A concrete path for a route template: every parameter a fresh UUID."""
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), template)


def fingerprint(inventory: Inventory, answer: Answer, max_probes: int = MAX_PROBES,
                observed: Iterable[tuple[str, bool]] = (),
                ask: Callable[[Answer, list[str]], Iterable[bool | None]] = map) -> Detected | None:
    """Tell the version from the routes the server answers. Each round asks about the PROBE_ROUND paths that best
    split the releases still possible, through `ask` (`map`: one after the other; a thread pool's `map`: side by
    side, the same probes, so the release found does not depend on the run's concurrency); a release stays
    possible while it contradicts the fewest answers, so one odd answer (a proxy rule, a patched server) does not
    empty the set. `observed`: paths already known to reach a route or not (a recording's exchanges), counted
    before any probe. None when nothing was answered at all."""
    mismatches = {v: 0 for v in inventory.versions}
    seen = 0
    for path, present in observed:
        seen += 1
        reach = inventory.versions_reaching(path)
        for v in mismatches:
            mismatches[v] += (v in reach) != present
    probes = {t: probe_path(t) for t in inventory.templates}
    reach = {t: inventory.versions_reaching(p) for t, p in probes.items()}
    asked: list[dict[str, str]] = []
    tried: set[str] = set()
    while len(asked) < max_probes:
        best = min(mismatches.values())
        chosen = _splits(reach, {v for v, n in mismatches.items() if n == best}, tried,
                         min(PROBE_ROUND, max_probes - len(asked)))
        if not chosen:
            break
        tried.update(chosen)
        for template, present in zip(chosen, ask(answer, [probes[t] for t in chosen]), strict=True):
            asked.append({"path": template, "answer": {True: "present", False: "absent", None: "unknown"}[present]})
            if present is None:
                continue
            for v in mismatches:
                if (v in reach[template]) != present:
                    mismatches[v] += 1
    known = sum(a["answer"] != "unknown" for a in asked)
    if not known and not seen:
        return None
    best = min(mismatches.values())
    candidates = [v for v in inventory.versions if mismatches[v] == best]
    source = f"route fingerprint ({known} probes" + (f", {seen} recorded paths" if seen else "") + \
        (f", {best} disagreeing)" if best else ")")
    return Detected(candidates, inventory.range_of(candidates), source, asked)

"""Ranges from evidence: a known difference or a versioned response covers exactly the releases whose named
source is the same as where it was seen (specs/references/umami-source-history.json).

Every known difference (specs/known-differences.yaml) and every versioned response of an area spec that names
source files in its prose (`src/app/api/teams/[teamId]/route.ts`, `prisma/schema.prisma`) says in `seen` the
releases where the behaviour was seen (a real server, a recording, or that release's source read). The named
code of a release is the set of (file, blob) of the named files that release has: a file counts in every
release that has it, so an entry whose code moved (pages/api -> app/api) names the files of each era. Then:

- every named file is a file of the history, and every seen release has at least one of them;
- the seen releases are in the entry's `versions`;
- `versions` (within its endpoint's range) holds exactly the releases whose named code equals that of a seen
  release: a range that stops while the code is the same, or goes on over a change, fails, unless the entry
  gives its `range_reason` (the reason the range is right all the same: a defect that lives in code the entry
  does not name, the npm package 2.10.0 that differs from its tag, the releases in between read one by one).

What was seen on 2.10.0 is the npm package umami@2.10.0 (the local server), which predates the v2.10.0 tag; an
entry seen there that names a file the package has otherwise than the tag needs a range_reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.loader import DEFAULT_SPECS
from conformance.versions import Versions
from conformance.yamlfile import load_yaml

from conftest import ROOT, bundled_specs

HISTORY_FILE = "references/umami-source-history.json"
SHARED_HISTORY = ROOT.parent / "shared" / "reference" / "umami-source-history.json"
# A source file named in prose: a path with a source file suffix. A path that does not start at the
# repository's root (`sessions/getX.ts`, `.../getX.ts`) is not in the history, so it fails: write it whole.
SOURCE_PATH = re.compile(r"[\w\-\[\].]*(?:/[\w\-\[\].]*)*\.(?:ts|tsx|js|jsx|sql|prisma)\b")
# The local 2.10.0 server runs the npm package umami@2.10.0, which predates the v2.10.0 tag: these files of the
# history are not the tag's there (git hash-object of the package's files against the tag's blobs; transfer.ts
# is absent). What was seen on 2.10.0 through one of them is not the tag's code, so the tags cannot give such an
# entry's range: it says why its range is right in range_reason.
NPM_2_10_0 = "2.10.0"
NPM_2_10_0_DIFFERS = frozenset({
    "db/postgresql/migrations/04_team_redesign/migration.sql", "db/postgresql/schema.prisma", "src/lib/auth.ts",
    "src/lib/constants.ts", "src/lib/data.ts", "src/lib/date.ts", "src/lib/detect.ts", "src/lib/prisma.ts",
    "src/lib/types.ts", "src/pages/api/admin/users.ts", "src/pages/api/auth/verify.ts", "src/pages/api/me/teams.ts",
    "src/pages/api/me/websites.ts", "src/pages/api/reports/index.ts", "src/pages/api/send.ts",
    "src/pages/api/teams/[teamId]/users/[userId].ts", "src/pages/api/teams/[teamId]/users/index.ts",
    "src/pages/api/teams/[teamId]/websites/index.ts", "src/pages/api/teams/index.ts",
    "src/pages/api/users/[userId]/teams.ts", "src/pages/api/users/[userId]/websites.ts",
    "src/pages/api/websites/[websiteId]/index.ts", "src/pages/api/websites/[websiteId]/reports.ts",
    "src/pages/api/websites/[websiteId]/transfer.ts", "src/pages/api/websites/index.ts",
    "src/queries/admin/report.ts", "src/queries/admin/team.ts", "src/queries/admin/teamUser.ts",
    "src/queries/admin/user.ts", "src/queries/admin/website.ts",
    "src/queries/analytics/eventData/getEventDataEvents.ts", "src/queries/analytics/eventData/getEventDataFields.ts",
    "src/queries/analytics/eventData/saveEventData.ts", "src/queries/analytics/events/saveEvent.ts",
    "src/queries/analytics/getActiveVisitors.ts", "src/queries/analytics/getValues.ts",
    "src/queries/analytics/pageviews/getPageviewMetrics.ts", "src/queries/analytics/reports/getFunnel.ts",
    "src/queries/analytics/sessions/getSessionMetrics.ts", "src/queries/analytics/sessions/saveSessionData.ts",
})


class History:
    """The blob of every file of every release (1.30.0-3.1.0, in release order)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.releases: list[str] = doc["versions"]
        index = {v: i for i, v in enumerate(self.releases)}
        self.files: dict[str, dict[str, str]] = {}
        for path, runs in doc["files"].items():
            blobs = self.files[path] = {}
            for blob, first, last in runs:
                for release in self.releases[index[first]:index[last] + 1]:
                    blobs[release] = blob

    @classmethod
    def load(cls, root: Path) -> History:
        return cls(json.loads((root / HISTORY_FILE).read_text(encoding="utf-8")))

    def code(self, names: list[str], release: str) -> frozenset[tuple[str, str]]:
        """The named code of a release: (file, blob) of each named file the release has."""
        return frozenset((n, self.files[n][release]) for n in names if release in self.files.get(n, {}))

    def runs(self, releases: set[str]) -> str:
        """`2.10.0-2.11.2, 2.16-2.20.2`: the releases as runs in release order."""
        runs: list[list[str]] = []
        previous = False
        for release in self.releases:
            if release in releases:
                if previous:
                    runs[-1][1] = release
                else:
                    runs.append([release, release])
            previous = release in releases
        return ", ".join(a if a == b else f"{a}-{b}" for a, b in runs) or "none"


@dataclass
class Ranged:
    """A known difference or a versioned response: what it says, its range and where it was seen."""

    where: str
    endpoint: str
    text: str
    versions: str
    seen: list[str] | None
    range_reason: str | None


def named_files(text: str) -> list[str]:
    return sorted(set(SOURCE_PATH.findall(text)))


def problems(entry: Ranged, history: History, endpoint_range: Versions) -> list[str]:
    """What is wrong with the entry's range by the named code; empty when it is right."""
    names = named_files(entry.text)
    if not names:
        return []
    if not entry.seen:
        return [f"names {', '.join(names)} but says in no `seen` where it was seen"]
    found = []
    unknown = [n for n in names if n not in history.files]
    if unknown:
        found.append(f"names {', '.join(unknown)}, which no release 1.30.0-3.1.0 has (write the path whole, "
                     "from the repository's root)")
    unknown_seen = [s for s in entry.seen if s not in history.releases]
    if unknown_seen:
        return found + [f"seen on {', '.join(unknown_seen)}, which is no release of the history"]
    versions = Versions(entry.versions)
    outside = [s for s in entry.seen if not versions.contains(s)]
    if outside:
        found.append(f"seen on {', '.join(outside)}, outside its versions {entry.versions!r}")
    empty = [s for s in entry.seen if not history.code(names, s)]
    if empty:
        found.append(f"none of the named files is in {', '.join(empty)}, where it was seen")
    if found or entry.range_reason:
        return found
    npm = sorted(NPM_2_10_0_DIFFERS.intersection(names)) if NPM_2_10_0 in entry.seen else []
    if npm:
        return [f"seen on {NPM_2_10_0}, the npm package, whose {', '.join(npm)} is not the v{NPM_2_10_0} tag's: "
                "the tags cannot give its range; say why it is right in `range_reason`"]
    releases = [r for r in history.releases if endpoint_range.contains(r)]
    seen_code = {history.code(names, s) for s in entry.seen}
    same = {r for r in releases if history.code(names, r) in seen_code}
    held = {r for r in releases if versions.contains(r)}
    if same - held:
        found.append(f"stops while the named code is the same: {history.runs(same - held)} not in {entry.versions!r}")
    if held - same:
        found.append(f"goes on over a change of the named code: {history.runs(held - same)}")
    if found:
        found.append(f"the named code is the same as where it was seen on {history.runs(same)}; "
                     "change `versions`, or give the reason it is right in `range_reason`")
    return found


def known_entries(root: Path) -> list[Ranged]:
    path = root / "known-differences.yaml"
    doc = load_yaml(path)
    return [Ranged(f"{path.name}:{doc.item_lines[i]}", raw["endpoint"], raw["reason"], raw["versions"],
                   raw.get("seen"), raw.get("range_reason"))
            for i, raw in enumerate(doc)]


def response_entries(root: Path) -> list[Ranged]:
    """The versioned responses of the area specs (a status whose answer is a list of variants)."""
    found = []
    for path in sorted(root.glob("*.yaml")):
        doc = load_yaml(path)
        if not isinstance(doc, dict) or "endpoints" not in doc:
            continue
        for endpoint in doc["endpoints"]:
            for variants in (endpoint.get("responses") or {}).values():
                if not isinstance(variants, list):
                    continue
                for i, variant in enumerate(variants):
                    found.append(Ranged(f"{path.name}:{variants.item_lines[i]}", endpoint["id"],
                                        variant.get("description", ""), variant.get("versions", ""),
                                        variant.get("seen"), variant.get("range_reason")))
    return found


ROOT_SPECS = DEFAULT_SPECS
HISTORY = History.load(ROOT_SPECS)
ENTRIES = [e for e in known_entries(ROOT_SPECS) + response_entries(ROOT_SPECS) if named_files(e.text)]


@pytest.fixture(scope="module")
def endpoint_ranges() -> dict[str, Versions]:
    return {e.id: e.versions for area in bundled_specs().areas for e in area.endpoints}


@pytest.mark.parametrize("entry", ENTRIES, ids=[f"{e.where} {e.endpoint}" for e in ENTRIES])
def test_range_matches_the_named_source(entry: Ranged, endpoint_ranges: dict[str, Versions]) -> None:
    found = problems(entry, HISTORY, endpoint_ranges[entry.endpoint])
    assert not found, f"specs/{entry.where} {entry.endpoint} {entry.versions!r}:\n  " + "\n  ".join(found)


def test_the_check_covers_the_known_differences_and_responses() -> None:
    """Most known differences name their source; the versioned responses that do are checked too."""
    known = [e for e in ENTRIES if e.where.startswith("known-differences.yaml")]
    assert len(known) >= 90 and len(ENTRIES) - len(known) >= 10


def _entry(**changes: Any) -> Ranged:
    """The 2.16-2.20 defect of /realtime/{websiteId} with a malformed id (seen on 2.20.2), whose route file is the
    same on 2.16-2.20.2 and changes with 3.0.0; the checks below change one field of it."""
    entry = next(e for e in ENTRIES if e.endpoint == "realtime/get" and "Umami 2.16-2.20 defect" in e.text)
    return Ranged(**{**entry.__dict__, **changes})


ENDPOINT = "realtime/get"


def test_a_narrowed_range_fails(endpoint_ranges: dict[str, Versions]) -> None:
    assert _entry().versions == ">=2.16,<3" and _entry().range_reason is None
    assert problems(_entry(), HISTORY, endpoint_ranges[ENDPOINT]) == []
    found = problems(_entry(versions=">=2.18,<3"), HISTORY, endpoint_ranges[ENDPOINT])
    assert found and found[0] == "stops while the named code is the same: 2.16-2.17.0 not in '>=2.18,<3'"


def test_a_range_over_a_change_fails(endpoint_ranges: dict[str, Versions]) -> None:
    found = problems(_entry(versions=">=2.16"), HISTORY, endpoint_ranges[ENDPOINT])
    assert found and found[0] == "goes on over a change of the named code: 3.0.0-3.1.0"
    found = problems(_entry(versions=">=2.10,<3"), HISTORY, endpoint_ranges[ENDPOINT])
    assert found and found[0] == "goes on over a change of the named code: 2.10.0-2.15.1"


def test_a_range_reason_is_the_exception_but_not_to_the_names(endpoint_ranges: dict[str, Versions]) -> None:
    reason = "read in every release's source"
    assert problems(_entry(versions=">=2.18,<3", range_reason=reason), HISTORY,
                    endpoint_ranges[ENDPOINT]) == []
    found = problems(_entry(text="in src/app/api/realtime/route.ts", range_reason=reason), HISTORY,
                     endpoint_ranges[ENDPOINT])
    assert found and "src/app/api/realtime/route.ts, which no release" in found[0]
    assert problems(_entry(seen=None), HISTORY, endpoint_ranges[ENDPOINT])[0].endswith("where it was seen")
    assert "outside its versions" in problems(_entry(seen=["3.1.0"]), HISTORY, endpoint_ranges[ENDPOINT])[0]
    route = _entry(text="src/app/api/realtime/[websiteId]/route.ts", versions=">=2.10,<3", seen=["2.10.0"])
    assert "none of the named files is in 2.10.0" in problems(route, HISTORY, endpoint_ranges[ENDPOINT])[0]


def test_what_was_seen_on_the_npm_package_needs_a_reason(endpoint_ranges: dict[str, Versions]) -> None:
    """2.10.0 seen through a file the npm package has otherwise than the tag: the tags cannot tell the range."""
    entry = _entry(text="checkAuth() (src/lib/auth.ts)", versions=">=2.10,<3", seen=["2.10.0"])
    found = problems(entry, HISTORY, endpoint_ranges[ENDPOINT])
    assert found == ["seen on 2.10.0, the npm package, whose src/lib/auth.ts is not the v2.10.0 tag's: the tags "
                     "cannot give its range; say why it is right in `range_reason`"]
    assert problems(Ranged(**{**entry.__dict__, "range_reason": "read in every tag"}), HISTORY,
                    endpoint_ranges[ENDPOINT]) == []


def test_a_path_not_from_the_root_is_no_name_of_the_history() -> None:
    assert named_files("(src/queries/sql/sessions/getX.ts, events/getY.ts, .../getZ.ts)") == [
        ".../getZ.ts", "events/getY.ts", "src/queries/sql/sessions/getX.ts"]


def test_the_copy_equals_the_shared_history() -> None:
    if not SHARED_HISTORY.exists():
        pytest.skip(f"../shared is absent ({SHARED_HISTORY} not found): the copy in specs/{HISTORY_FILE} "
                    "is not compared with its source")
    shared = json.loads(SHARED_HISTORY.read_text(encoding="utf-8"))
    assert json.loads((ROOT_SPECS / HISTORY_FILE).read_text(encoding="utf-8")) == shared, \
        f"specs/{HISTORY_FILE} differs from {SHARED_HISTORY}: copy it again"


def test_the_history_has_the_releases_of_the_route_inventory() -> None:
    routes = json.loads((ROOT_SPECS / "references" / "umami-routes.json").read_text(encoding="utf-8"))
    assert HISTORY.releases == routes["versions"]


"""Every endpoint's `versions` agrees with the route inventory (specs/references/umami-routes.json).

An endpoint applies to exactly the releases that have its route (method and path template); where
several endpoints share a route (the v1 API beside the v2 one, a shape that changed with a major
release), together they cover those releases, each release once. An endpoint whose route no release
has (a v3 contract operation newer than the last release) applies to no release, but to the contract.
ERRATA lists the few routes the inventory gets wrong for some releases, with the reason.
A spec that expects no success for any role (GET on a POST-only route: 405) checks that a route is
absent; it is not a route of its own and is left out.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from conformance.coverage import coverage
from conformance.loader import load_specs
from conformance.model import Endpoint
from conformance.versions import INVENTORY, Inventory, Versions, template_key

from conftest import ROOT, SPEC_CACHE, bundled_specs, copy_specs

SHARED_ROUTES = Path(__file__).parents[2] / "shared" / "reference" / "umami-routes.json"

# Where the inventory, read from the release tags' route files, is wrong about a release: route -> (releases
# that do not answer it, why). A pages-router file lists its yup schemas per method; a schema key is no handler.
ERRATA: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/users"): (">=2.9,<2.16", "src/pages/api/users/index.ts of 2.9.0-2.15.1 handles POST only (GET is a "
                                       "key of its yup schema); 2.10.0 answers 405"),
    ("GET", "/teams"): (">=2.10.1,<2.16", "src/pages/api/teams/index.ts of 2.10.1-2.15.1 handles POST only (GET is "
                                          "a key of its yup schema); the npm package umami@2.10.0 still answers GET"),
    ("POST", "/websites/{}/transfer"): ("==2.10.0", "the npm package umami@2.10.0 has no "
                                                   "src/pages/api/websites/[websiteId]/transfer.ts (the v2.10.0 tag "
                                                   "has it); 2.10.0 answers 404"),
    ("GET", "/websites/{}/reset"): (">=2.6,<2.8", "src/pages/api/websites/[id]/reset.ts of 2.6.0-2.7.0 handles POST "
                                                  "only (GET is a key of its yup schema)"),
}


def releases_with(inv: Inventory, method: str, path: str) -> set[str]:
    """The releases that answer the route: the inventory's, less its errata."""
    has = set(inv.releases_with(method, path))
    wrong = ERRATA.get((method, template_key(path)))
    return {v for v in has if not (wrong and Versions(wrong[0]).contains(v))}


def _releases(inv: Inventory) -> list[str]:
    return [r.version for r in inv.releases if r.source == "release"]


def exact_range(inv: Inventory, versions: set[str]) -> str:
    """The readable range holding exactly these releases of the inventory: a run that reaches the
    newest release stays open, one that starts at the oldest known release (1.30.0) has no lower bound,
    and `x.y.0` is written `x.y`."""
    releases = _releases(inv)
    wanted = set(versions)
    if releases[-1] in wanted:
        wanted |= {r.version for r in inv.releases if r.source == "contract"}
    parts = []
    for part in inv.range_of(wanted).split(" || "):
        part = re.sub(r"(\d+\.\d+)\.0\b", r"\1", part)
        low = re.sub(r"(\d+\.\d+)\.0\b", r"\1", f">={releases[0]}")
        if part.startswith(low):
            part = part[len(low):].lstrip(",") or "any version"
        parts.append(part)
    return " || ".join(parts)


def _absent_route(e: Endpoint) -> bool:
    """The spec expects an error for every role and case: it checks that the route is not there."""
    statuses = set(e.auth.values()) | {c.status for c in e.cases if c.status}
    return not any(200 <= s < 300 for s in statuses)


def _where(e: Endpoint) -> str:
    return f"{e.file.relative_to(ROOT) if e.file.is_relative_to(ROOT) else e.file}:{e.line} {e.id}"


def test_every_endpoint_range_matches_the_route_inventory() -> None:
    specs = bundled_specs()
    inv = specs.inventory
    assert inv is not None, f"specs/{INVENTORY} is missing"
    releases = _releases(inv)
    by_route: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    for e in specs.endpoints:
        if not _absent_route(e):
            by_route[(e.method, template_key(e.path))].append(e)
    problems, checked = [], 0
    for (method, _), endpoints in sorted(by_route.items()):
        has = releases_with(inv, method, endpoints[0].path)
        if not has:
            continue
        checked += len(endpoints)
        should = exact_range(inv, has)
        covering: dict[str, list[Endpoint]] = defaultdict(list)
        for e in endpoints:
            inside = {v for v in releases if e.versions.contains(v)}
            for v in inside & has:
                covering[v].append(e)
            if inside - has:
                problems.append(f"{_where(e)}: {method} {e.path} versions {str(e.versions)!r} hold releases "
                                f"without the route: {exact_range(inv, inside - has)}; the route is in {should}")
        missing = has - set(covering)
        if missing:
            ids = ", ".join(_where(e) for e in endpoints)
            problems.append(f"{ids}: {method} {endpoints[0].path} gated out of releases that have the route: "
                            f"{exact_range(inv, missing)}; "
                            + (f"should be {should!r}" if len(endpoints) == 1 else
                               f"together these endpoints should cover {should!r}"))
        twice = {v for v, eps in covering.items() if len(eps) > 1}
        if twice:
            ids = ", ".join(sorted({_where(e) for v in twice for e in covering[v]}))
            problems.append(f"{ids}: {method} {endpoints[0].path}: more than one endpoint applies to "
                            f"{exact_range(inv, twice)}")
    assert checked > 100, f"only {checked} endpoints have a route of the inventory"
    assert not problems, "endpoint ranges disagree with the route inventory:\n" + "\n".join(problems)


def test_endpoints_of_routes_no_release_has_apply_to_no_release() -> None:
    """Contract-only operations (API 3.3.1, newer than 3.1.0) are gated ">=3.2" and hold the contract."""
    specs = bundled_specs()
    inv = specs.inventory
    assert inv is not None
    releases = _releases(inv)
    contract = [r for r in inv.releases if r.source == "contract"]
    problems = []
    for e in specs.endpoints:
        if releases_with(inv, e.method, e.path) or _absent_route(e):
            continue
        inside = [v for v in releases if e.versions.contains(v)]
        if inside:
            problems.append(f"{_where(e)}: {e.method} {e.path} is in no release, but versions "
                            f"{str(e.versions)!r} hold {exact_range(inv, set(inside))}")
        for c in contract:
            if c.has_route(e.method, e.path) and not e.versions.contains(c.version):
                problems.append(f"{_where(e)}: {e.method} {e.path} is in the contract (API {c.version}), "
                                f"but versions {str(e.versions)!r} do not hold {c.version}")
    assert not problems, "\n".join(problems)


def test_errata_correct_routes_of_the_inventory() -> None:
    """Each erratum removes releases that the inventory does list for its route."""
    inv = bundled_specs().inventory
    assert inv is not None
    for (method, key), (wrong, why) in ERRATA.items():
        listed = {v for v in inv.releases_with(method, key.replace("{}", "{id}")) if Versions(wrong).contains(v)}
        assert listed, f"erratum {method} {key} ({wrong}) matches no release of the inventory: {why}"


def test_inventory_copy_matches_the_shared_reference() -> None:
    if not SHARED_ROUTES.exists():
        pytest.skip(f"../shared is absent ({SHARED_ROUTES} not found): the copy in specs/{INVENTORY} "
                    "is not compared with its source")
    shared = json.loads(SHARED_ROUTES.read_text(encoding="utf-8"))
    copy = json.loads((ROOT / "specs" / INVENTORY).read_text(encoding="utf-8"))
    assert copy["versions"] == shared["versions"]
    assert copy["routes"] == shared["routes"], "specs/references/umami-routes.json differs from " \
        f"{SHARED_ROUTES}: copy it again"


def test_coverage_of_the_newest_release(tmp_path: Path) -> None:
    """`coverage` counts the 129 routes of 3.1.0 from the inventory; a spec gated off 3.1.0 no longer
    covers its route."""
    release = {c.name: c for c in coverage(bundled_specs(), SPEC_CACHE)}["umami-3.1.0"]
    assert release.total == 129
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    text = me.read_text()
    assert "    path: /me\n" in text
    me.write_text(text.replace("    path: /me\n", "    path: /me\n    versions: \"<3\"\n", 1))
    after = {c.name: c for c in coverage(load_specs(specs, SPEC_CACHE), SPEC_CACHE)}["umami-3.1.0"]
    assert after.total == 129 and "GET /me" in after.missing
    assert after.specified == release.specified - 1

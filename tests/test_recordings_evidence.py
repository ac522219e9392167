"""What the recordings of real servers (tests/recordings) show about the sandbox: which seeded websites could not
be deleted, and the 2.20.2 password-hash leak as a security finding."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any


from conformance.seed import seed_plan

from conftest import shared_recording

ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
RANGE_2_20 = ["2.20.2", "2.20.1", "2.20.0", "2.19.0", "2.18.1", "2.18.0"]  # what the recording alone tells


def _recording(name: str) -> list[dict[str, Any]]:
    return json.loads(gzip.decompress(shared_recording(name).read_bytes()))["log"]["entries"]


def _deletions(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Websites created (id -> owner), those sent revenue events, those some DELETE removed, and the
    DELETE answers per user."""
    created: dict[str, str | None] = {}
    revenue: set[str] = set()
    deleted: set[str] = set()
    users: dict[str, list[int]] = {}
    for e in entries:
        method, status = e["request"]["method"], e["response"]["status"]
        path = e["request"]["url"].split("?")[0].partition("/api")[2]
        if (method, path, status) == ("POST", "/websites", 200):
            site = json.loads(e["response"]["content"]["text"])
            created[site["id"]] = site.get("userId")
        elif (method, path) == ("POST", "/send"):
            payload = json.loads(e["request"]["postData"]["text"])["payload"]
            data = payload.get("data") or {}
            if (data.get("revenue") or 0) > 0 and data.get("currency"):
                revenue.add(payload["website"])
        elif method == "DELETE" and re.fullmatch(f"/websites/{ID}", path) and status == 200:
            deleted.add(path.rsplit("/", 1)[1])
        elif method == "DELETE" and re.fullmatch(f"/users/{ID}", path):
            users.setdefault(path.rsplit("/", 1)[1], []).append(status)
    return {"created": created, "revenue": revenue, "deleted": deleted, "users": users}


def test_on_2_20_2_exactly_the_websites_seeded_with_revenue_could_not_be_deleted() -> None:
    seen = _deletions(_recording("umami-2.20.2-run.har.gz"))
    undeleted = set(seen["created"]) - seen["deleted"]
    assert seen["revenue"] and undeleted == seen["revenue"], "revenue is what kept the run's websites there"
    owners = {seen["created"][site] for site in seen["revenue"]} - {None}  # the team website has no user
    assert owners and all(seen["users"][owner] == [500] for owner in owners), "and their owner"
    others = [statuses for user, statuses in seen["users"].items() if user not in owners and 200 in statuses]
    assert len(others) >= 2, "the run's other users were deleted"
    # The sandbox no longer sends revenue events to a server that may be one of these releases.
    assert seed_plan(RANGE_2_20).revenue is False


def test_on_3_1_0_websites_seeded_with_revenue_are_deleted() -> None:
    seen = _deletions(_recording("umami-3.1.0-run.har.gz"))
    assert seen["revenue"] and seen["revenue"] <= seen["deleted"]
    assert set(seen["created"]) <= seen["deleted"]
    assert seed_plan(["3.1.0"]).revenue is True


def test_recheck_of_2_20_2_reports_the_admin_users_hash_leak_as_security(recheck_2_20_2: tuple[Any, Path]) -> None:
    proc, out = recheck_2_20_2
    results = json.loads((out / "results.json").read_text())
    leaks = [(i["id"], f) for i in results["items"] for f in i["findings"] if f["class"] == "security"]
    assert {i for i, _ in leaks} >= {"admin/users[admin-first-page]", "admin/users[admin-search]"}
    assert all(f["json_path"] == "$.data[*].password" and f["known"] for _, f in leaks)
    for item in results["items"]:  # security first in every item
        classes = [f["class"] for f in item["findings"]]
        assert "security" not in classes or classes[0] == "security"
    assert results["summary"]["security"] == len(leaks)
    assert "seeded without revenue" in proc.stdout and "security (0, known" in proc.stdout
    assert results["seeded"]["revenue"] == 0 and "undeletable" in results["seeded"]["skipped"]["revenue"]
    assert not re.search(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}", (out / "results.json").read_text())

"""The seed: realistic traffic sent through /api/send to the run's websites (sessions from several countries,
pageviews, custom events, revenue events where the server can still delete the website afterwards), which the
stats cases then read."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from conformance.cleanup import REVENUE_BLOCKS_DELETION
from conformance.client import BROWSER_UA, Credential, Drift, UmamiClient
from conformance.objects import each

# Kept traffic seeded this recently is reused instead of sent again: less than the 5 minutes in which Umami
# counts a visitor as active, which website-stats/get-active's case expects of the seed.
SEED_FRESH_SECONDS = 4 * 60
SEED_IPS = ["8.8.8.8", "81.2.69.142", "85.214.132.117", "195.154.122.113", "1.1.1.1"]
SEED_PAGES = [("/", "Home"), ("/pricing", "Pricing"), ("/docs/start", "Getting started"),
              ("/blog/hello", "Hello world")]
SEED_REFERRERS = ["https://www.google.com/", "https://news.ycombinator.com/", "", "https://github.com/"]

SeedRequest = tuple[dict[str, Any], dict[str, str]]  # (body, headers) of one POST /send


@dataclass(frozen=True)
class SeedPlan:
    """What the sandbox seeds on a server: revenue events only where deleteWebsite removes revenue rows (no route
    deletes them; cleanup.LEFT_BEHIND). Segments, the other rows that can block a delete, are the cleanup's to
    remove."""

    revenue: bool
    reason: str | None = None  # why revenue is left out


def seed_plan(versions: list[str] | None) -> SeedPlan:
    """The seed for a server that may be any of `versions` (None: not known, so the careful plan)."""
    if versions is None:
        return SeedPlan(False, "the server's version is not known, and on Umami 2.19.0-3.0.1 deleteWebsite leaves "
                               "revenue rows, which no route deletes, so they make a website and its owner "
                               "undeletable")
    blocked = [v for v in versions if REVENUE_BLOCKS_DELETION.contains(v)]
    if blocked:
        shown = ", ".join(blocked[:3]) + (", ..." if len(blocked) > 3 else "")
        return SeedPlan(False, f"the server may be Umami {shown}, where deleteWebsite leaves revenue rows, which "
                               f"no route deletes, so they make a website and its owner undeletable (DELETE "
                               f"answers 500; deleteWebsite removes them since 3.0.2): no revenue events were sent")
    return SeedPlan(True)


def seed_requests(site: dict[str, Any], visitor: str, plan: SeedPlan) -> list[SeedRequest]:
    """Realistic traffic for /api/send as (body, headers): sessions from several countries with distinct ids
    (`<visitor>visitor-<n>`), pageviews on several paths with UTM parameters and referrers, custom events with
    data, and revenue events (`revenue`/`currency` event data, as Umami's revenue reports read them) where the
    seed plan allows them (never where they would make the website undeletable). The sessions are new for
    every `visitor`: before 2.14 Umami ignores the id and derives a session from the website, hostname, IP and
    user agent (src/lib/session.ts), so the user agent carries a build number taken from `visitor` too."""
    requests = []
    build = int(hashlib.sha256(visitor.encode()).hexdigest()[:4], 16)
    agent = BROWSER_UA.replace("Chrome/124.0 ", f"Chrome/124.0.{build}.0 ")
    for i, ip in enumerate(SEED_IPS):
        headers = {"X-Forwarded-For": ip, "User-Agent": agent}
        base = {"website": site["id"], "hostname": site["domain"], "screen": "1920x1080", "language": "en-US",
                "id": f"{visitor}visitor-{i}"}  # distinct id (v2.14+; older servers ignore it)
        for j, (page, title) in enumerate(SEED_PAGES[: 2 + i % 3]):
            payload = {**base, "title": title,
                       "url": f"{page}?utm_source=newsletter&utm_medium=email" if j == 0 and i % 2 else page,
                       "referrer": SEED_REFERRERS[i % len(SEED_REFERRERS)] if j == 0 else ""}
            requests.append(({"type": "event", "payload": payload}, headers))
        requests.append(({"type": "event", "payload": {
            **base, "url": "/pricing", "title": "Pricing", "name": "signup-click",
            "data": {"plan": "pro" if i % 2 else "free", "seats": i + 1}}}, headers))
        if i % 2 and plan.revenue:
            requests.append(({"type": "event", "payload": {
                **base, "url": "/checkout", "title": "Checkout", "name": "purchase",
                "data": {"revenue": 19.5 * i, "currency": "USD"}}}, headers))
    return requests


def send_seed(client: UmamiClient, site: dict[str, Any], requests: list[SeedRequest], auth: Credential | None,
              concurrency: int, kept: bool) -> bool:
    """Send the seed (seed_requests) through /api/send: each visitor's requests in order, `concurrency` visitors at
    a time; a refusal ends the seed. A `kept` website that already holds a seed of the last SEED_FRESH_SECONDS
    (asked with `auth`) is not seeded again, so that its traffic grows by at most one seed per run: returns whether
    that seed was reused. Every seed sent makes sessions of its own (the run's visitors): the realtime windows list
    the sessions created in them, so a kept website's sessions of an earlier day would leave them empty. The site
    gets `seededSince` (epoch ms), a window start that holds this seed and no earlier one."""
    started = int(time.time() * 1000)
    fresh = kept and _freshly_seeded(client, auth, site["id"], requests)
    # `${website.seededSince}`: from where the one seed the website's cases read begins. A reused seed is of the
    # last SEED_FRESH_SECONDS, and the seed before it older still (seeds are that far apart); a seed sent now
    # begins now, less a minute for a server clock behind ours.
    site["seededSince"] = started - (SEED_FRESH_SECONDS if fresh else 60) * 1000
    if not fresh:
        refused = threading.Event()
        lock = threading.Lock()

        def visit(visitor: list[SeedRequest]) -> None:
            for body, headers in visitor:  # one visitor's requests in order: its session, then its events
                if refused.is_set() or not _send(client, body, headers, lock):
                    refused.set()
                    return

        visitors: dict[str, list[SeedRequest]] = {}
        for body, headers in requests:
            visitors.setdefault(body["payload"]["id"], []).append((body, headers))
        each(visit, list(visitors.values()), concurrency)
    return fresh


def seed_counts(requests: list[SeedRequest], plan: SeedPlan, reused: int) -> dict[str, Any]:
    """What a seed holds, as results.json `sandbox.seeded` tells it: pageviews, events, sessions and revenue events
    per seed, how many seeds were `reused`, and the parts the plan `skipped` with the reason."""
    names = [body["payload"].get("name") for body, _ in requests]  # None: a pageview
    seeded = {"pageviews": names.count(None), "events": len(names) - names.count(None),
              "sessions": len(SEED_IPS), "revenue": names.count("purchase"),
              **({"reused": reused} if reused else {})}
    if not plan.revenue:
        seeded["skipped"] = {"revenue": plan.reason}
    return seeded


def _freshly_seeded(client: UmamiClient, auth: Credential | None, website_id: str,
                   requests: list[SeedRequest]) -> bool:
    """Whether the website counts at least one seed's pageviews in the last SEED_FRESH_SECONDS."""
    now = int(time.time() * 1000)
    ex = client.request("GET", f"/websites/{website_id}/stats", auth=auth,
                        params={"startAt": now - SEED_FRESH_SECONDS * 1000, "endAt": now})
    body = ex.json()
    views = body.get("pageviews") if ex.response.status_code == 200 and isinstance(body, dict) else None
    views = views.get("value") if isinstance(views, dict) else views
    try:
        return float(views) >= sum(1 for body, _ in requests if "name" not in body["payload"])
    except (TypeError, ValueError):
        return False


def _send(client: UmamiClient, body: dict[str, Any], headers: dict[str, str], lock: threading.Lock) -> bool:
    """Send one seed request; an answer other than 200 is a finding (once per run; `lock` makes the look and the
    note one step among the seed's threads), and a refusal ends the seed (the checks of seeded values then show
    what is missing)."""
    # Safe to repeat: a seeded event sent twice only raises counts that case schemas bound from below.
    ex = client.request("POST", "/send", json_body=body, headers=headers, repeatable=True).settled()
    status = ex.response.status_code
    with lock:
        if status != 200 and not any(d.exchange.request.url.path.endswith("/send") for d in client.drift):
            went_on = "the seed went on" if ex.response.is_success else "the seed stopped there"
            client.drift.append(Drift(ex, 200, "status-changed", "$", 200, status,
                                      f"set-up: seeding traffic, POST /send answered HTTP {status} "
                                      f"instead of 200; {went_on}"))
    return ex.response.is_success

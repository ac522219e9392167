"""Negative inputs with hypothesis: wrong types, missing fields, out-of-range, oversized, odd unicode,
bad ids. A server answer of 5xx is a finding, reported with the smallest request hypothesis shrinks to.

Only GET endpoints and `safe` ones (login) are probed: generated input must never create data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any
from collections.abc import Callable
from urllib.parse import quote

from conformance.client import Credential, Exchange, UmamiClient
from conformance.model import Case, Endpoint

if TYPE_CHECKING:  # hypothesis itself is imported where inputs are generated (--negative): it takes a while
    from hypothesis import strategies as st

ODD = ["", "null", "undefined", "-1", "0", "1e309", "9" * 40, "NaN", "true", "[]", "{}",
       "00000000-0000-0000-0000-000000000000", "not-a-uuid", "../../etc/passwd", "' OR 1=1 --", "%00",
       "\u0000", "💥", "\u202e\u200b", "ﷺ" * 20, "<script>"]


@cache
def _bad_values() -> st.SearchStrategy[Any]:
    """Bad values of every kind for one parameter."""
    from hypothesis import strategies as st
    return st.one_of(
        st.sampled_from(ODD),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
        st.integers(min_value=1000, max_value=20000).map(lambda n: "x" * n),
        st.booleans(),
        st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    )


@dataclass(frozen=True)
class Mutation:
    """Set one parameter to a bad value, or drop it."""

    where: str  # path | query | body
    name: str
    value: Any = None
    drop: bool = False


class ServerError(Exception):
    """A 5xx answer to a generated request."""

    def __init__(self, exchange: Exchange) -> None:
        super().__init__(f"HTTP {exchange.response.status_code}")
        self.exchange = exchange


def probe_case(endpoint: Endpoint) -> Case | None:
    """The case whose parameters are mutated: the first with any parameter."""
    for case in endpoint.cases:
        if case.path_params or case.query or isinstance(case.body, dict) and case.body:
            return case
    return None


def applies(endpoint: Endpoint) -> bool:
    return (endpoint.method == "GET" or endpoint.safe) and probe_case(endpoint) is not None


def _mutations(case: Case, rendered: dict[str, dict[str, Any]]) -> st.SearchStrategy[Mutation]:
    from hypothesis import strategies as st
    slots = [(where, name) for where in ("path", "query", "body") for name in sorted(rendered[where])]
    slot = st.sampled_from(slots)
    set_value = st.tuples(slot, _bad_values()).map(lambda t: Mutation(t[0][0], t[0][1], t[1]))
    droppable = [s for s in slots if s[0] != "path"]
    if not droppable:
        return set_value
    drop = st.sampled_from(droppable).map(lambda s: Mutation(s[0], s[1], drop=True))
    return st.one_of(drop, set_value)


def find_server_errors(client: UmamiClient, endpoint: Endpoint, auth: Credential | None,
                       rendered: dict[str, dict[str, Any]], examples: int) -> tuple[Exchange | None, int]:
    """Send up to `examples` generated requests (seeded, reproducible); return the smallest one that
    answered 5xx (or None) and how many requests were sent."""
    from hypothesis import HealthCheck, Phase, given, settings
    case = probe_case(endpoint)
    assert case is not None
    sent = 0

    def send(m: Mutation) -> Exchange:
        nonlocal sent
        parts = {k: dict(v) for k, v in rendered.items()}
        if m.drop:
            parts[m.where].pop(m.name, None)
        else:
            parts[m.where][m.name] = m.value
        path = endpoint.path.format(**{k: quote(_text(v), safe="") for k, v in parts["path"].items()})
        query = {k: v if isinstance(v, list) else _text(v) for k, v in parts["query"].items()}
        body = parts["body"] if endpoint.method != "GET" else None
        sent += 1
        return client.request(endpoint.method, path, auth=auth, params=query or None, json_body=body)

    @settings(max_examples=examples, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
              report_multiple_bugs=False)
    @given(_mutations(case, rendered))
    def probe(m: Mutation) -> None:
        exchange = send(m)
        if exchange.response.status_code >= 500:
            raise ServerError(exchange)

    try:
        probe()
    except ServerError as exc:
        return exc.exchange, sent
    return None, sent


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_parts(case: Case, render: Callable[[Any], Any]) -> dict[str, dict[str, Any]]:
    return {"path": render(case.path_params), "query": render(case.query),
            "body": render(case.body) if isinstance(case.body, dict) else {}}

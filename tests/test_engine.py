"""The engine without pytest: items of a spec set, and what `execute_item` makes of a skip, a finding, a transient
failure and a bug of the tool (on the in-memory fake Umami: no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance import execute
from conformance.client import Credential
from conformance.console import summary_lines
from conformance.execute import execute_item
from conformance.errors import Unavailable
from conformance.events import SessionOutcome
from conformance.items import Item, collect
from conformance.options import Options
from conformance.session import Session
from conformance.versions import Detected
from umami_results.vocabulary import Kind, Outcome
from conftest import bundled_specs
from fake_umami import FakeUmami

ADMIN = Credential.bearer("admin-token-0123456789")


@pytest.fixture
def session(tmp_path: Path) -> Session:
    fake = FakeUmami()
    specs = bundled_specs()
    session = Session(options=Options(target=fake.client().target, specs_dir=specs.root,
                                      results_path=tmp_path / "results.json"), specs=specs, known=[])
    session.client = fake.client()
    session.detected = Detected.exact("3.1.0", "--umami-version")
    session.credentials["admin"] = ADMIN
    return session


def _item(item_id: str) -> Item:
    return next(i for i in collect(bundled_specs()) if i.id == item_id)


def test_collect_gives_every_endpoint_role_and_case_once() -> None:
    items = list(collect(bundled_specs(), negative_examples=1, discover=True))
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    assert {i.kind for i in items} == set(Kind) - {Kind.SETUP}  # set-up items come from the set-up's drift
    assert "admin/users[admin-first-page]" in ids and "admin/users[admin-negative]" in ids
    files = [i.endpoint.file.name for i in items]
    assert files == sorted(files), "file by file in the order of their names, as pytest collects them"
    discovery = [n for n, i in enumerate(items) if i.kind in (Kind.DISCOVERY, Kind.ROUTES)]
    assert ids[discovery[-1]] == "discovery/routes[all]" and discovery == list(range(discovery[0], discovery[-1] + 1))


def test_a_skip_is_an_outcome_with_its_reason(session: Session) -> None:
    # no credentials for `user` in this run
    result = execute_item(session.execution(), _item("admin/users[user-first-page]"))
    assert result.outcome is Outcome.SKIPPED and result.reason == "role 'user' has no credentials in this run"
    assert result.as_dict()["outcome"] == "skipped" and result.as_dict()["actual_status"] is None


def test_the_summary_says_how_to_give_a_role_its_credentials(session: Session) -> None:
    """Issue 27: the user and view-only roles were skipped without a hint that UMAMI_USER_* and UMAMI_VIEWER_*
    exist."""
    context = session.execution()
    session.results = [execute_item(context, _item(i)) for i in ("admin/users[user-first-page]",
                                                                 "admin/users[admin-first-page]")]
    lines = [text for text, _ in summary_lines(session, SessionOutcome())]
    assert "roles without credentials in this run: user; give existing users with UMAMI_USER_USERNAME and " \
           "UMAMI_USER_PASSWORD" in lines, lines
    # a server that cannot create users (2.10.0): the roles are unavailable, and the same hint says how
    context.unavailable.update({"user": "the server cannot create users", "view-only": "no regular user"})
    session.results = [execute_item(context, _item("admin/users[user-first-page]")),
                       execute_item(context, _item("admin/users[view-only-first-page]"))]
    assert all(r.skip and r.skip.code.value == "role-unavailable" for r in session.results), session.results
    lines = [text for text, _ in summary_lines(session, SessionOutcome())]
    assert "roles without credentials in this run: user, view-only; give existing users with UMAMI_USER_USERNAME " \
           "and UMAMI_USER_PASSWORD and UMAMI_VIEWER_USERNAME and UMAMI_VIEWER_PASSWORD" in lines, lines


def test_an_answer_is_checked_and_recorded(session: Session) -> None:
    result = execute_item(session.execution(), _item("admin/users[admin-first-page]"))
    record = result.as_dict()
    # The spec's 200 shapes of /admin/users end at 2.x: on 3.1.0 the status holds and no shape is checked.
    assert result.ran and result.outcome is Outcome.PASSED_NO_SCHEMA and not result.schema_checked
    assert record["outcome"] == "passed-no-schema" and record["findings"] == [] and record["actual_status"] == 200
    assert record["shape"]["$"] == "object" and record["curl"].startswith("curl -X GET")


def test_a_bug_of_the_tool_is_the_item_s_error_not_a_crash(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(execute, "_check_versions", broken)
    result = execute_item(session.execution(), _item("admin/users[admin-first-page]"))
    assert result.outcome is Outcome.ERROR
    assert re.fullmatch(r"RuntimeError: a bug \(test_engine\.py:\d+\)", result.reason)
    assert result.as_dict()["outcome"] == "error"


def test_a_transient_failure_is_unavailable(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def gateway(*args: object, **kwargs: object) -> None:
        raise Unavailable("GET /api/admin/users answered HTTP 502 (tried 4 times)", 4)

    monkeypatch.setattr(session.client, "request", gateway)
    result = execute_item(session.execution(), _item("admin/users[admin-first-page]"))
    assert result.outcome is Outcome.UNAVAILABLE and "502" in result.reason

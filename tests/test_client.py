"""Client layer: redaction, retries of transient failures, clear errors (httpx.MockTransport, no real server)."""

from __future__ import annotations

import json

import httpx
import pytest

from conformance.client import GONE_AFTER, Target, UmamiClient
from conformance.errors import AuthFailed, ConnectionFailed, ServerGone, Unavailable
from conformance.redact import Redactor


def _client(handler) -> UmamiClient:
    client = UmamiClient(Target(url="http://umami.test", username="admin", password="pa55word-long"))
    client.http = httpx.Client(base_url=client.target.api_base, transport=httpx.MockTransport(handler))
    return client


def test_curl_redacts_headers_body_and_known_secrets() -> None:
    r = Redactor()
    r.add("tok-1234567890")
    req = httpx.Request("POST", "http://u.test/api/auth/login?x=tok-1234567890",
                        headers={"Authorization": "Bearer tok-1234567890", "x-umami-share-token": "abc"},
                        json={"username": "admin", "password": "hunter2"})
    curl = r.curl(req)
    assert "tok-1234567890" not in curl and "hunter2" not in curl and "abc" not in curl
    assert '"password":"***"' in curl


def test_curl_line_of_a_request_follows_secrets_added_later() -> None:
    r = Redactor()
    request = httpx.Request("GET", "http://u.test/api/x?k=late-secret-123")
    assert r.curl(request) == "curl -X GET 'http://u.test/api/x?k=late-secret-123'"
    r.add("late-secret-123")
    assert "late-secret-123" not in r.curl(request)


def test_redactor_data_keeps_short_common_words() -> None:
    r = Redactor()
    r.add("umami")  # the default password is too short to be searched for in free text
    assert r.data({"tool": "umami-conformance", "password": "umami"}) == {
        "tool": "umami-conformance", "password": "***"}


def test_a_join_code_is_a_credential_wherever_it_shows_up() -> None:
    """A team's accessCode lets anyone join the team: `***` in reports, a stand-in in recordings, also in the
    request that later sends it (issue 27: join codes were printed in clear)."""
    r = Redactor()
    assert r.data({"accessCode": "ucf-x-no-such-code"}) == {"accessCode": "***"}
    assert r.text("ucf-x-no-such-code") == "ucf-x-no-such-code"  # a code only a request holds is no team's
    assert r.data([{"id": "t-1", "name": "team", "accessCode": "team_pxTxdFXDVxVA"}], answer=True) == [
        {"id": "t-1", "name": "team", "accessCode": "***"}]
    join = httpx.Request("POST", "http://u.test/api/teams/join", json={"accessCode": "team_pxTxdFXDVxVA"})
    assert "team_pxTxdFXDVxVA" not in r.curl(join)
    stand_in = r.stand_in("team_pxTxdFXDVxVA")
    assert r.recorded_text('{"accessCode":"team_pxTxdFXDVxVA"}') == f'{{"accessCode":"{stand_in}"}}'
    assert r.data({"accessCode": None}) == {"accessCode": None}


def test_redactor_text_finds_every_secret_whatever_its_characters() -> None:
    r = Redactor()
    assert r.text("nothing known yet: tok-1234567890") == "nothing known yet: tok-1234567890"
    r.add("tok-1234567890")
    r.add("tok-1234567890-longer")  # the shorter one is its prefix: the longer is replaced whole
    r.add("a+b*c?(d)[e]|f$^\\g.")  # regex metacharacters are plain text in a secret
    assert r.text("x tok-1234567890-longer y tok-1234567890 z") == "x *** y *** z"
    assert r.text("q=a+b*c?(d)[e]|f$^\\g.&") == "q=***&"
    assert r.text("aXb*c?(d)[e]|f$^\\g. tok-123456789") == "aXb*c?(d)[e]|f$^\\g. tok-123456789"
    assert r.data({"tok-1234567890": ["$tok-1234567890", {"k": "tok-1234567890-longer"}]}) == \
        {"***": ["$***", {"k": "***"}]}


def test_redactor_replaces_overlapping_secrets_longest_first() -> None:
    r = Redactor()
    r.add("xxxxxxab")
    r.add("abcdefgh12")  # overlaps the end of the first in the text below: the longer one goes first
    assert r.text("xxxxxxabcdefgh12") == "xxxxxx***"
    assert r.recorded_text("xxxxxxabcdefgh12") == "xxxxxx***"


def test_login_registers_token_and_wrong_password_is_auth_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["password"] == "pa55word-long":
            return httpx.Response(200, json={"token": "the-token-value-123", "user": {}})
        return httpx.Response(401, text="message.incorrect-username-password")

    client = _client(handler)
    assert client.login("admin", "pa55word-long").value == "Bearer the-token-value-123"
    assert "the-token-value-123" not in client.redactor.text("x the-token-value-123 y")
    with pytest.raises(AuthFailed, match="refused"):
        client.login("admin", "wrong-password")


def test_retry_after_is_honoured() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={})

    ex = _client(handler).request("GET", "/heartbeat")
    assert ex.response.status_code == 200 and len(calls) == 2


def test_not_umami_and_unreachable() -> None:
    client = _client(lambda request: httpx.Response(404, text="<html>nginx</html>",
                                                    headers={"content-type": "text/html"}))
    with pytest.raises(ConnectionFailed, match="does not look like an Umami server"):
        client.probe()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ConnectionFailed, match="cannot connect"):
        _quick(refuse).probe()


def _flaky(plan: list[object], calls: list[httpx.Request]):
    """A handler answering from `plan` in turn: a status code, or an exception to raise."""
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        step = plan[min(len(calls), len(plan)) - 1]
        if isinstance(step, Exception):
            raise step
        return httpx.Response(step, json={} if step == 200 else None,
                              text=None if step == 200 else "<html>bad gateway</html>")
    return handler


def _quick(handler, retries: int = 3) -> UmamiClient:
    client = _client(handler)
    client.target.retries, client.target.retry_wait = retries, 0.0
    return client


@pytest.mark.parametrize("failure", [502, 503, 504, httpx.RemoteProtocolError("dropped"),
                                     httpx.ReadTimeout("slow"), httpx.ConnectError("refused")])
def test_a_read_is_retried_after_any_transient_failure(failure: object) -> None:
    calls: list[httpx.Request] = []
    client = _quick(_flaky([failure, failure, 200], calls))
    ex = client.request("GET", "/websites")
    assert ex.response.status_code == 200 and ex.attempts == 3 and len(calls) == 3
    assert client.retries == 2 and client.unavailable == 0


def test_a_transient_answer_that_outlives_the_retries_is_unavailable_not_an_answer() -> None:
    calls: list[httpx.Request] = []
    client = _quick(_flaky([502], calls), retries=2)
    ex = client.request("GET", "/websites")
    assert ex.transient and ex.attempts == 3 and len(calls) == 3 and client.unavailable == 1
    with pytest.raises(Unavailable, match=r"GET /api/websites answered HTTP 502 \(tried 3 times\)"):
        ex.settled()
    with pytest.raises(Unavailable, match=r"connection dropped .*\(tried 3 times\)"):
        _quick(_flaky([httpx.RemoteProtocolError("dropped")], []), retries=2).request("GET", "/me")


def test_a_write_is_retried_only_when_it_provably_did_not_arrive() -> None:
    # A gateway error or a dropped connection may hide a write that landed: sent once, counted as unsure.
    for failure in (502, httpx.RemoteProtocolError("dropped")):
        calls: list[httpx.Request] = []
        client = _quick(_flaky([failure, 200], calls))
        if isinstance(failure, int):
            assert client.request("POST", "/websites", json_body={}).transient
        else:
            with pytest.raises(Unavailable):
                client.request("POST", "/websites", json_body={})
        assert len(calls) == 1 and client.unsure_writes == 1
    # Refused connections, 429 and 503 with Retry-After never reached the handler: sent again.
    for failure in (httpx.ConnectError("refused"), 429):
        calls = []
        client = _quick(_flaky([failure, 200], calls))
        assert client.request("POST", "/websites", json_body={}).response.status_code == 200
        assert len(calls) == 2 and client.unsure_writes == 0
    calls = []
    client = _quick(_flaky([200], calls))
    client.request("POST", "/send", json_body={}, repeatable=True)
    assert len(calls) == 1


def test_retry_after_on_503_is_honoured_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr("conformance.client.time.sleep", waits.append)
    answers = iter([httpx.Response(503, headers={"Retry-After": "2"}),
                    httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(502),
                    httpx.Response(200, json={})])
    client = _client(lambda request: next(answers))
    assert client.request("POST", "/websites", json_body={}).response.status_code != 200  # 502: not provable
    answers = iter([httpx.Response(503, headers={"Retry-After": "2"}),
                    httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(502),
                    httpx.Response(200, json={})])
    client = _client(lambda request: next(answers))
    assert client.request("GET", "/websites").response.status_code == 200
    assert waits[-3:] == [2.0, 30.0, 1.0]  # Retry-After, capped; then backoff 0.25 * 2**2


def test_a_server_that_stays_down_ends_the_run() -> None:
    client = _quick(_flaky([502], []), retries=1)
    for _ in range(GONE_AFTER - 1):
        assert client.request("GET", "/websites").transient
    with pytest.raises(ServerGone, match="stopped answering: 8 requests in a row"):
        client.request("GET", "/websites")
    assert client.request("GET", "/websites").transient  # cleanup afterwards still gets its attempts


def test_writes_that_could_not_be_sent_again_neither_end_the_run_nor_break_the_row() -> None:
    """A gateway that loses the answers to one kind of write (a 502 to a POST is not retried: it may have
    landed) while reads get through: however many such writes follow each other (a concurrent batch), the
    server is not taken for gone; reads that stay down after their retries still are, writes between them or not."""
    client = _quick(_flaky([502], []), retries=1)
    for _ in range(3 * GONE_AFTER):
        assert client.request("POST", "/reports", json_body={}).transient
    for _ in range(GONE_AFTER - 1):
        assert client.request("GET", "/websites").transient
        client.request("POST", "/reports", json_body={})
    with pytest.raises(ServerGone, match="stopped answering"):
        client.request("GET", "/websites")


JWT_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VySWQiOiIxMjM0In0.c2lnbmF0dXJlLXBhcnQ"


@pytest.mark.parametrize("status, body, drift", [
    (200, {"token": JWT_TOKEN, "user": {"id": "u1"}}, []),
    (202, {"token": JWT_TOKEN, "user": {"id": "u1"}}, [("status-changed", "$", 200, 202)]),
    (200, {"accessToken": JWT_TOKEN, "user": {"id": "u1"}}, [("field-removed", "$.token", "string", "missing")]),
    (201, {"data": {"session": JWT_TOKEN}}, [("status-changed", "$", 200, 201),
                                             ("field-removed", "$.token", "string", "missing")]),
])
def test_a_login_that_drifted_but_still_gives_a_token_is_a_finding_not_an_abort(status, body, drift) -> None:
    client = _client(lambda request: httpx.Response(status, json=body))
    credential, user = client.login_user("admin", "pa55word-long")
    assert credential.value == f"Bearer {JWT_TOKEN}"
    assert [(d.cls, d.json_path, d.expected, d.actual) for d in client.drift] == drift
    assert all(d.exchange.response.status_code == status for d in client.drift)
    assert JWT_TOKEN not in client.redactor.text(JWT_TOKEN), "the token found elsewhere is still a secret"


def test_a_login_without_any_token_stops_the_run_naming_what_changed() -> None:
    client = _client(lambda request: httpx.Response(200, json={"user": {"id": "u1", "username": "admin"}}))
    with pytest.raises(ConnectionFailed) as exc:
        client.login_user("admin", "pa55word-long")
    assert "answered HTTP 200 without a token (fields: user;" in str(exc.value)
    assert "does not look like an Umami server" not in str(exc.value)

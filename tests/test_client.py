"""Client layer: redaction, retries on 429, clear errors (httpx.MockTransport, no real server)."""

from __future__ import annotations

import json

import httpx
import pytest

from conformance.client import Redactor, Target, UmamiClient
from conformance.errors import AuthFailed, ConnectionFailed


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


def test_redactor_data_keeps_short_common_words() -> None:
    r = Redactor()
    r.add("umami")  # the default password is too short to be searched for in free text
    assert r.data({"tool": "umami-conformance", "password": "umami"}) == {
        "tool": "umami-conformance", "password": "***"}


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
        _client(refuse).probe()


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

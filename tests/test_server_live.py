"""The local real Umami that `umami-conformance server start` provides."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from conformance import server

from conftest import run_cli


def test_default_admin_login_and_version(umami: server.ServerInfo) -> None:
    r = httpx.post(f"{umami.url}/api/auth/login", json={"username": "admin", "password": "umami"})
    assert r.status_code == 200
    assert len(r.json()["token"]) > 20 and r.json()["user"]["isAdmin"] is True
    assert httpx.get(f"{umami.url}/api/version").json() == {"version": server.UMAMI_VERSION}


def test_start_is_idempotent_and_status_reports(umami: server.ServerInfo) -> None:
    start = time.monotonic()
    again = run_cli("server", "start")
    assert again.returncode == 0 and again.stdout.strip() == umami.url, again.stderr
    assert time.monotonic() - start < 60, "a second start reuses the running server"
    status = run_cli("server", "status")
    assert status.returncode == 0 and umami.url in status.stdout and "MiB" in status.stdout


def test_regular_user_exists_for_the_user_role(umami: server.ServerInfo) -> None:
    r = httpx.post(f"{umami.url}/api/auth/login",
                   json={"username": umami.user_username, "password": umami.user_password})
    assert r.status_code == 200 and r.json()["user"]["role"] == "user"


def test_send_records_traffic_with_geo(umami: server.ServerInfo, admin_token: str) -> None:
    h = {"Authorization": f"Bearer {admin_token}"}
    site = httpx.post(f"{umami.url}/api/websites", headers=h,
                      json={"name": "geo-check", "domain": "geo.example.com"}).json()
    ua = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
          "X-Forwarded-For": "8.8.8.8"}
    sent = httpx.post(f"{umami.url}/api/send", headers=ua, json={"type": "event", "payload": {
        "website": site["id"], "hostname": "geo.example.com", "url": "/", "language": "en-US",
        "screen": "1x1", "title": "t", "referrer": ""}})
    assert sent.status_code == 200
    now = int(time.time() * 1000)
    countries = httpx.get(f"{umami.url}/api/websites/{site['id']}/metrics", headers=h,
                          params={"type": "country", "startAt": now - 3600_000, "endAt": now + 60_000}).json()
    assert {"x": "US", "y": 1} in countries


def test_port_taken_between_choice_and_bind_is_retried(umami: server.ServerInfo, monkeypatch) -> None:
    """A second local server (own state dir): its first port is taken, the start tries another."""
    import shutil
    import socket
    import tempfile

    state = tempfile.mkdtemp(prefix="ucf-test-state-")  # under /tmp: reachable by user postgres
    monkeypatch.setenv("UMAMI_CONFORMANCE_STATE", state)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    choices: list[int] = []
    free_port = server._free_port

    def taken_first() -> int:
        choices.append(1)
        return busy.getsockname()[1] if len(choices) == 2 else free_port()  # 1st: PostgreSQL, 2nd: Umami

    monkeypatch.setattr(server, "_free_port", taken_first)
    try:
        info = server.start()
        assert info.url != umami.url and server.answers(info.url)
        # The retry chose another port, and the log is the answering server's (the failed start's is gone).
        assert info.port != busy.getsockname()[1] and len(choices) >= 3  # PG port, taken port, retry
        assert "EADDRINUSE" not in Path(info.log).read_text(errors="replace")
    finally:
        server.stop()
        busy.close()
        shutil.rmtree(state, ignore_errors=True)


def test_users_made_with_sql_log_in_even_with_a_dash_password(umami: server.ServerInfo, monkeypatch) -> None:
    """Regression: a random password starting with "-" was read by node as an option (1 in 64)."""
    monkeypatch.setattr(server.secrets, "token_urlsafe", lambda n: "-dash-first-password")
    password = server.create_user_sql(umami.pg_port, umami.database, server.app_dir(), "dash-user", "user")
    r = httpx.post(f"{umami.url}/api/auth/login", json={"username": "dash-user", "password": password})
    assert password == "-dash-first-password" and r.status_code == 200

"""A recording (and optionally mutating or faulty) reverse proxy in front of the real local Umami, or of any
httpx transport (a recording's `Replay`: a server answering from a recording, for tests without a live server).

Used to count every request the suite sends and to see every response (e.g. login tokens).
Mutations exist only to test the drift detector itself; faults (a flaky gateway) to test that transient
failures are retried and never called drift.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable

import httpx

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
# (method, path, status, body) -> None to pass through, or (status, body) / (status, body, headers)
Mutation = Callable[[str, str, int, bytes], "tuple | None"]


@dataclass
class Seen:
    method: str
    path: str
    request_body: bytes
    status: int
    response_body: bytes
    at: float  # when the answer was sent (time.monotonic)
    request_headers: dict[str, str] = field(default_factory=dict)  # as forwarded (no hop-by-hop headers)


BAD_GATEWAY = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"


@dataclass
class Faults:
    """A flaky gateway, reproducible: a share of requests answered 502 (HTML, like nginx) without reaching the
    server, and a share whose connection is dropped after the server answered. Whether the n-th sending of one
    request (method, path, body) fails is a hash of `seed`, the request and n, not of the order of arrival."""

    bad_gateway: float = 0.0
    dropped: float = 0.0
    seed: int = 0
    only: Callable[[str, str], bool] | None = None  # (method, path) -> whether faults apply
    injected: Counter = field(default_factory=Counter)
    _sent: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def draw(self, method: str, path: str, body: bytes) -> str | None:
        if self.only is not None and not self.only(method, path):
            return None
        key = f"{method} {path} {hashlib.sha256(body).hexdigest()}"
        with self._lock:
            n = self._sent[key]
            self._sent[key] += 1
        digest = hashlib.sha256(f"{self.seed}|{key}|{n}".encode()).digest()
        x = int.from_bytes(digest[:8], "big") / 2 ** 64
        fault = "502" if x < self.bad_gateway else "dropped" if x < self.bad_gateway + self.dropped else None
        if fault:
            with self._lock:
                self.injected[fault] += 1
        return fault


@dataclass
class RecordingProxy:
    upstream: str
    mutate: Mutation | None = None
    faults: Faults | None = None
    delay: float = 0.0  # seconds added before every request is forwarded: a server farther away (the bench)
    transport: httpx.BaseTransport | None = None  # answers instead of `upstream` (e.g. a recording's Replay)
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> RecordingProxy:
        proxy = self
        client = httpx.Client(base_url=self.upstream, timeout=30, transport=self.transport)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                fault = proxy.faults.draw(self.command, self.path, body) if proxy.faults else None
                if proxy.delay:
                    time.sleep(proxy.delay)
                if fault == "502":  # the gateway cannot reach the server
                    status, content, out_headers = 502, BAD_GATEWAY, {"content-type": "text/html"}
                else:
                    r = client.request(self.command, self.path, content=body, headers=headers)
                    if fault == "dropped":  # the server did the work; its answer is lost on the way
                        self.close_connection = True
                        return
                    status, content = r.status_code, r.content
                    out_headers = {k: v for k, v in r.headers.items() if k.lower() not in HOP_HEADERS}
                    if proxy.mutate:
                        changed = proxy.mutate(self.command, self.path, status, content)
                        if changed:
                            status, content = changed[0], changed[1]
                            out_headers.update(changed[2] if len(changed) > 2 else {})
                proxy.seen.append(Seen(self.command, self.path, body, status, content, time.monotonic(), headers))
                self.send_response(status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._client = client
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

"""A recording (and optionally mutating) reverse proxy in front of the real local Umami.

Used to count every request the suite sends and to see every response (e.g. login tokens).
Mutations exist only to test the drift detector itself.
"""

from __future__ import annotations

import threading
import time
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
    at: float


@dataclass
class RecordingProxy:
    upstream: str
    mutate: Mutation | None = None
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> RecordingProxy:
        proxy = self
        client = httpx.Client(base_url=self.upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                r = client.request(self.command, self.path, content=body, headers=headers)
                status, content = r.status_code, r.content
                out_headers = {k: v for k, v in r.headers.items() if k.lower() not in HOP_HEADERS}
                if proxy.mutate:
                    changed = proxy.mutate(self.command, self.path, status, content)
                    if changed:
                        status, content = changed[0], changed[1]
                        out_headers.update(changed[2] if len(changed) > 2 else {})
                proxy.seen.append(Seen(self.command, self.path, body, status, content, time.monotonic()))
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

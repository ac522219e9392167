"""HAR 1.2 recordings of a run (`run --record FILE.har`): every exchange, the item it belongs to, no secret.

The plugin names the item around each test item (`exchange_item`, a context variable); set-up and
version detection read "setup", cleanup "cleanup". Each entry carries it as `_item`. Secrets are
removed when the file is written, with the client's Redactor (which by then knows every secret of the
run): credentials (tokens, API keys, share ids, team access codes) become stable stand-ins
`redacted-<12 hex>`, passwords and other secrets `***`, as do the `/send` session cache value
(a field `cache`, or 2.10.0's whole text/plain answer) and the `x-umami-cache` header.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conformance import __version__
from conformance.errors import UsageError
from conformance.redact import CACHE_FIELD, HASH_VALUE, REDACTED, SECRET_FIELDS, SECRET_HEADERS, Redactor, redact_hash

CURRENT_ITEM: ContextVar[str] = ContextVar("umami_conformance_item", default="setup")
STAND_IN_FIELDS = {"token", "apikey", "api_key", "sharetoken"}  # credentials: stand-ins, not ***
CACHE_HEADER = "x-umami-cache"


@contextmanager
def exchange_item(name: str) -> Iterator[None]:
    """Every exchange inside belongs to item `name` (recorded as `_item`, matched on in a replay)."""
    token = CURRENT_ITEM.set(name)
    try:
        yield
    finally:
        CURRENT_ITEM.reset(token)


@dataclass
class _Exchange:
    item: str
    started: dt.datetime
    seconds: float
    request: httpx.Request
    response: httpx.Response


@dataclass
class HarRecorder:
    """Collects the exchanges of a run; `write` redacts them into a HAR file (gzip when it ends in .gz)."""

    path: Path
    api_base: str
    exchanges: list[_Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, request: httpx.Request, response: httpx.Response, seconds: float) -> None:
        started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)
        with self._lock:
            self.exchanges.append(_Exchange(CURRENT_ITEM.get(), started, seconds, request, response))

    def har(self, redactor: Redactor) -> dict[str, Any]:
        return {"log": {"version": "1.2", "creator": {"name": "umami-conformance", "version": __version__},
                        "comment": "umami-conformance run; secrets replaced: credentials by stable stand-ins "
                                   "(redacted-<12 hex>), passwords and /send cache values by ***",
                        "_apiBase": httpx.URL(self.api_base).path.rstrip("/"),
                        "entries": [_entry(x, redactor) for x in self.exchanges]}}

    def write(self, redactor: Redactor) -> Path:
        data = json.dumps(self.har(redactor), ensure_ascii=False, indent=1).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(gzip.compress(data, mtime=0) if self.path.name.endswith(".gz") else data)
        return self.path


def load_har(path: Path) -> dict[str, Any]:
    """A HAR file, gzip or plain, with at least one entry (UsageError, one line, for anything else: a text file,
    a results.json, an empty recording)."""
    try:
        raw = Path(path).read_bytes()
        har = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        entries = har["log"]["entries"]
    except (OSError, EOFError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{path}: not a HAR recording ({type(exc).__name__}); recheck reads the files that "
                         "`run --record FILE.har` writes") from None
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{path}: a HAR recording without entries: nothing to recheck")
    return har


def _entry(x: _Exchange, redactor: Redactor) -> dict[str, Any]:
    request, response = x.request, x.response
    send = request.url.path.rstrip("/").endswith("/send")
    url = redactor.recorded_text(str(request.url))
    req: dict[str, Any] = {
        "method": request.method, "url": url, "httpVersion": "HTTP/1.1", "cookies": [],
        "headers": _headers(request.headers, redactor),
        "queryString": [{"name": k, "value": v} for k, v in httpx.URL(url).params.multi_items()],
        "headersSize": -1, "bodySize": len(request.content)}
    if request.content:
        req["postData"] = {"mimeType": request.headers.get("content-type", ""), **_content(request.content, redactor)}
    ctype = response.headers.get("content-type", "")
    content = _content(response.content, redactor)
    if send and response.is_success and "json" not in ctype and response.content:
        content = {"text": REDACTED}  # 2.10.0 answers the session cache token itself
    ms = round(x.seconds * 1000, 3)
    return {"_item": x.item, "startedDateTime": x.started.isoformat(), "time": ms, "request": req,
            "response": {"status": response.status_code, "statusText": response.reason_phrase,
                         "httpVersion": "HTTP/1.1", "cookies": [], "headers": _headers(response.headers, redactor),
                         "content": {"size": len(response.content), "mimeType": ctype, **content},
                         "redirectURL": "", "headersSize": -1, "bodySize": len(response.content)},
            "cache": {}, "timings": {"send": 0, "wait": ms, "receive": 0}}


def _headers(headers: httpx.Headers, redactor: Redactor) -> list[dict[str, str]]:
    out = []
    for name, value in headers.multi_items():
        low = name.lower()
        if low == CACHE_HEADER:
            value = REDACTED
        elif low in SECRET_HEADERS:
            scheme, sep, token = value.partition(" ") if low == "authorization" else ("", "", value)
            value = f"{scheme} {redactor.stand_in(token)}" if sep else redactor.stand_in(value)
        else:
            value = redactor.recorded_text(value)
        out.append({"name": name, "value": value})
    return out


def _content(raw: bytes, redactor: Redactor) -> dict[str, str]:
    """A body as HAR content: JSON with secret fields replaced, other text with known secrets replaced,
    anything else base64."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"text": base64.b64encode(raw).decode(), "encoding": "base64"}
    try:
        data = json.loads(text)
    except ValueError:
        return {"text": redactor.recorded_text(text)}
    return {"text": json.dumps(_data(data, redactor), ensure_ascii=False, separators=(",", ":"))}


def _data(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            low = key.lower()
            if isinstance(item, str) and item and low in STAND_IN_FIELDS:
                out[key] = redactor.stand_in(item)
            elif isinstance(item, dict) and low in STAND_IN_FIELDS:  # a decoded token (/me's shareToken payload):
                out[key] = _data(item, redactor)  # its fields are kept, secrets among them replaced
            elif item not in (None, "") and (low in SECRET_FIELDS or low == CACHE_FIELD):
                out[key] = REDACTED
            else:
                out[key] = _data(item, redactor)
        return out
    if isinstance(value, list):
        return [_data(v, redactor) for v in value]
    if isinstance(value, str):
        return redact_hash(value) if HASH_VALUE.match(value) else redactor.recorded_text(value)
    return value

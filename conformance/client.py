"""The run's one httpx client: profiles (self-hosted / Cloud), login, version, retries; what it sends and hears
is redacted by its Redactor (redact.py)."""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

import httpx

from conformance.errors import AuthFailed, ConnectionFailed, ServerGone, Unavailable
from conformance.redact import CACHE_FIELD, Redactor

NOT_RECORDED_HEADER = "x-ucf-not-recorded"  # marks a replay answer the recordings did not have (see replay.py)
REPLAYED_HEADER = "x-ucf-replayed"  # how a replay found its answer: item, exact, template, no-route
BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0 Safari/537.36")
MAX_RETRY_AFTER = 30.0
MAX_BACKOFF = 8.0
TRANSIENT_STATUSES = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
GONE_AFTER = 8  # requests in a row that stay transient after their retries: the server is down


@dataclass
class Tally:
    """What the requests of one item went through (items may run in parallel threads, so the client's totals
    cannot tell one item's share)."""

    retries: int = 0
    not_recorded: int = 0


_TALLY: ContextVar[Tally | None] = ContextVar("umami_conformance_tally", default=None)


@contextmanager
def tallied() -> Iterator[Tally]:
    """Count the retries and unrecorded answers of the requests sent inside (in this thread's context)."""
    tally = Tally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def send_cache(exchange: Exchange) -> str | None:
    """The session cache token a successful `/send` answered: the `cache` field (3.x), or the whole
    text/plain body (2.10)."""
    response = exchange.response
    if not (response.is_success and exchange.request.url.path.rstrip("/").endswith("/send") and response.content):
        return None
    body = exchange.body
    if isinstance(body, dict):
        return body.get(CACHE_FIELD) if isinstance(body.get(CACHE_FIELD), str) else None
    return None if body is not None else response.text.strip() or None


@dataclass(frozen=True)
class Credential:
    """How one identity authenticates: a header and its value, and headers that must go with it."""

    header: str
    value: str
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def bearer(cls, token: str) -> Credential:
        return cls("Authorization", f"Bearer {token}")

    @classmethod
    def api_key(cls, key: str) -> Credential:
        return cls("x-umami-api-key", key)

    @classmethod
    def share_token(cls, token: str) -> Credential:
        """A share link's token. Umami 3.x also needs `x-umami-share-context: 1` (else 401); 2.x ignores it."""
        return cls("x-umami-share-token", token, (("x-umami-share-context", "1"),))

    def headers(self) -> dict[str, str]:
        return {self.header: self.value, **dict(self.extra)}


@dataclass
class Exchange:
    """One request and its response, timed."""

    request: httpx.Request
    response: httpx.Response
    seconds: float
    attempts: int = 1

    def json(self) -> Any:
        """The answer's JSON, parsed anew (None when it is not JSON): the caller may change it."""
        try:
            return self.response.json()
        except ValueError:
            return None

    @cached_property
    def body(self) -> Any:
        """The answer's JSON (None when it is not JSON), parsed once and shared by the checks: read it, never
        change it."""
        return self.json()

    @property
    def not_recorded(self) -> bool:
        """A replay (`recheck`) had no recorded answer for this request."""
        return NOT_RECORDED_HEADER in self.response.headers

    @property
    def transient(self) -> bool:
        """A gateway's answer (502/503/504) that stayed so after the retries: the server was not asked."""
        return self.response.status_code in TRANSIENT_STATUSES

    def settled(self) -> Exchange:
        """This exchange, or Unavailable when it is transient: for callers that judge the answer."""
        if self.transient:
            raise Unavailable(f"{self.request.method} {self.request.url.path} answered HTTP "
                              f"{self.response.status_code} {_tries(self.attempts)}", self.attempts)
        return self

    @property
    def replayed(self) -> bool:
        """The answer comes from a recording (a recheck), where `***` stands for whatever the recorder hid."""
        return REPLAYED_HEADER in self.response.headers

    @property
    def other_objects(self) -> bool:
        """A replay answered with an exchange on other objects (a template match): the run's seeded data
        is not in it."""
        return self.response.headers.get(REPLAYED_HEADER) == "template"


@dataclass
class Drift:
    """An answer to a request the run itself needs (login, set-up) that deviates from what it expects, yet
    lets the run go on: reported as a finding of the endpoint (plugin: a `setup` record)."""

    exchange: Exchange
    expected_status: int
    cls: str  # a checks.CLASSES key
    json_path: str
    expected: Any
    actual: Any
    message: str  # what deviated and what the run did about it


@dataclass
class Target:
    """Where and how to talk to Umami."""

    url: str
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    timeout: float = 15.0
    read_only: bool = False
    retries: int = 3  # further attempts after a transient failure
    retry_wait: float = 0.25  # seconds before the first retry; doubles each time, at most MAX_BACKOFF

    @property
    def api_base(self) -> str:
        """Self-hosted: `<url>/api`; Umami Cloud (API key): the URL as given, e.g. https://api.umami.is/v1."""
        url = self.url.rstrip("/")
        return url if self.api_key else f"{url}/api"


@cache
def ssl_context() -> ssl.SSLContext:
    """httpx's default SSL context (certifi's CAs, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), made once per process: each
    new one reads the CA bundle again, tens of milliseconds per client."""
    return httpx.create_ssl_context()


@dataclass
class UmamiClient:
    """Wraps one `httpx.Client`; counts requests, retries and the time spent waiting on the server.

    `transport` replaces the network (a replay answers from recordings, see replay.py); `recorder`
    is told every exchange (har.HarRecorder, for `run --record`); `not_recorded` counts the answers
    a replay did not have; `retries` the attempts sent again after a transient failure, `unavailable`
    the requests still failing transiently after them, `unsure_writes` the writes of which nobody can
    tell whether they reached the server.
    """

    target: Target
    redactor: Redactor = field(default_factory=Redactor)
    requests: list[tuple[str, str]] = field(default_factory=list)
    server_seconds: float = 0.0
    transport: httpx.BaseTransport | None = None
    recorder: Any = None
    not_recorded: int = 0
    retries: int = 0
    unavailable: int = 0
    unsure_writes: int = 0
    _failing: int = 0  # requests in a row that stayed transient
    _not_before: float = 0.0  # monotonic time before which no request is sent (a 429 or Retry-After, pool-wide)
    drift: list[Drift] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redactor.add(self.target.password)
        self.redactor.add(self.target.api_key, stand_in=True)
        self.http = httpx.Client(
            base_url=self.target.api_base,
            timeout=httpx.Timeout(self.target.timeout, connect=5.0),
            headers={"User-Agent": BROWSER_UA, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            transport=self.transport,
            verify=ssl_context() if self.transport is None else True,
        )
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, *, auth: Credential | None = None,
                params: dict[str, Any] | None = None, json_body: Any = None,
                headers: dict[str, str] | None = None, repeatable: bool | None = None) -> Exchange:
        """Send one request, retrying transient failures up to `target.retries` times with backoff.

        A request safe to send twice (GET, or `repeatable`: a login, seeding, a checked DELETE) is retried after
        any transient failure: 502/503/504, 429, a dropped connection, a timeout. Any other only when it
        provably did not reach the server: a refused connection, 429, or 503 with Retry-After. A 502/503/504
        that remains is returned (`Exchange.transient`); a connection failure that remains raises Unavailable.
        """
        hdrs = dict(headers or {})
        if auth:
            hdrs.update(auth.headers())
        kwargs: dict[str, Any] = {"params": params, "headers": hdrs}
        if json_body is not None:
            kwargs["json"] = json_body
        safe = method.upper() in SAFE_METHODS if repeatable is None else repeatable
        attempt, waited = 1, 0.0
        while True:
            self._hold(waited)
            request = self.http.build_request(method, path, **kwargs)
            start = time.perf_counter()
            try:
                response = self.http.send(request)
                response.read()
            except httpx.TransportError as exc:
                unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
                if attempt <= self.target.retries and (safe or unsent):
                    waited = max(waited, self._wait(attempt, None))
                    attempt += 1
                    continue
                self._settle(transient=True, unsure=not safe and not unsent, tries=attempt)
                raise Unavailable(self._failure(method, path, exc) + f" {_tries(attempt)}", attempt) from None
            elapsed = time.perf_counter() - start
            if self.recorder is not None:
                self.recorder.add(request, response, elapsed)
            unrecorded = NOT_RECORDED_HEADER in response.headers
            with self._lock:
                self.server_seconds += elapsed
                self.requests.append((method, path))
                self.not_recorded += unrecorded
            tally = _TALLY.get()
            if tally is not None:
                tally.not_recorded += unrecorded
            status = response.status_code
            told_later = status == 429 or (status == 503 and "retry-after" in response.headers)
            if attempt <= self.target.retries and (told_later or (safe and status in TRANSIENT_STATUSES)):
                waited = max(waited, self._wait(attempt, response))
                attempt += 1
                continue
            exchange = Exchange(request, response, elapsed, attempt)
            self._settle(transient=exchange.transient, unsure=exchange.transient and not safe and not told_later,
                         tries=attempt)
            return exchange

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        """Wait before attempt `attempt + 1`: the server's Retry-After, else exponential backoff. A 429 or a
        Retry-After holds back every request of the client (all threads of a concurrent run), not only this one:
        returns the end of that pause (0.0 for a backoff of this request alone)."""
        with self._lock:
            self.retries += 1
        tally = _TALLY.get()
        if tally is not None:
            tally.retries += 1
        backoff = min(self.target.retry_wait * 2 ** (attempt - 1), MAX_BACKOFF)
        if response is not None and (response.status_code == 429 or "retry-after" in response.headers):
            delay = _retry_after(response) if "retry-after" in response.headers else backoff
            with self._lock:
                until = time.monotonic() + delay
                self._not_before = max(self._not_before, until)
            time.sleep(delay)
            return until
        time.sleep(backoff)
        return 0.0

    def _hold(self, waited: float) -> None:
        """Wait until the last 429 or Retry-After any request of the client met allows requests again (unless
        this request has waited out that pause already)."""
        with self._lock:
            until = self._not_before
        delay = until - time.monotonic()
        if until > waited and delay > 0:
            time.sleep(delay)

    def _settle(self, transient: bool, unsure: bool, tries: int) -> None:
        """Count how a request ended; raise ServerGone when GONE_AFTER in a row stayed transient after all their
        retries. A write that could not be sent again (tried fewer times) says less about the server: it neither
        counts nor breaks the row (in a concurrent run such writes may follow each other with no read between)."""
        exhausted = tries > self.target.retries
        with self._lock:
            self.unavailable += transient
            self.unsure_writes += unsure
            if not transient:
                self._failing = 0
            elif exhausted:
                self._failing += 1
            gone = self._failing >= GONE_AFTER
            if gone:
                self._failing = 0  # cleanup afterwards gets its own attempts
        if gone:
            raise ServerGone(f"{self.target.url} stopped answering: {GONE_AFTER} requests in a row still failed "
                             f"after {self.target.retries} retries each (502/503/504 or no connection)")

    def _failure(self, method: str, path: str, exc: httpx.TransportError) -> str:
        if isinstance(exc, httpx.TimeoutException):
            return (f"{self.target.url}: no answer within {self.target.timeout:.0f}s ({method} {path}); "
                    "raise --timeout or check the server")
        what = "cannot connect" if isinstance(exc, httpx.ConnectError) else "connection dropped"
        return (f"{self.target.url}: {what} ({method} {path}: {exc.__class__.__name__}: "
                f"{self.redactor.text(str(exc)) or 'no detail'})")

    def login(self, username: str, password: str) -> Credential:
        """Self-hosted login; returns the bearer credential and registers the token as a secret."""
        return self.login_user(username, password)[0]

    def login_user(self, username: str, password: str) -> tuple[Credential, dict[str, Any]]:
        """Login, returning the credential and the user the server answered with."""
        self.redactor.add(password)
        ex = self.request("POST", "/auth/login", json_body={"username": username, "password": password},
                          repeatable=True).settled()
        body = ex.json()
        status = ex.response.status_code
        if status in (401, 403):
            raise AuthFailed(f"login as {username!r} at {self.target.url} was refused "
                             f"(HTTP {status}): check --umami-username/--umami-password")
        if not ex.response.is_success:
            raise ConnectionFailed(_not_umami(self.target.url, ex))
        path, token = _find_token(body)
        if token is None:
            keys = ", ".join(sorted(body)) if isinstance(body, dict) and body else "none"
            raise ConnectionFailed(
                f"login as {username!r} at {self.target.url} answered HTTP {status} without a token (fields: "
                f"{keys}; content type {ex.response.headers.get('content-type', 'none')}): the run cannot "
                "authenticate, so it stops. The login has changed; Umami answers {token, user}")
        self.redactor.add(token, stand_in=True)
        if status != 200:
            self.drift.append(Drift(ex, 200, "status-changed", "$", 200, status,
                                    f"login answered HTTP {status} instead of 200; the run used its token"))
        if path != "$.token":
            self.drift.append(Drift(ex, 200, "field-removed", "$.token", "string", "missing",
                                    f"the login's token is not at $.token; the run used the credential at {path}"))
        user = body.get("user") if isinstance(body, dict) else None
        return Credential.bearer(token), user if isinstance(user, dict) else {}

    def check_api_key(self, key: Credential) -> None:
        """Umami Cloud: an API key that `/me` refuses stops the run with a clear message."""
        ex = self.request("GET", "/me", auth=key).settled()
        if ex.response.status_code in (401, 403):
            raise AuthFailed(f"the API key was refused by {self.target.url} (HTTP "
                             f"{ex.response.status_code} on /me): check --api-key / UMAMI_API_KEY")

    def probe(self) -> str | None:
        """Check that this is an Umami server; return its version when it tells it (2.7.0-2.17.0).
        `/heartbeat` answers from 1.38.0 on; older servers are known by their login route."""
        ex = self.request("GET", "/heartbeat").settled()
        if ex.response.status_code >= 500:
            raise ConnectionFailed(f"{self.target.url}: server error HTTP {ex.response.status_code} "
                                   "on /heartbeat; is Umami healthy?")
        version = None
        vex = self.request("GET", "/version").settled()
        body = vex.json()
        if vex.response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("version"), str):
            version = body["version"]
        if ex.response.status_code != 200 and not version and not self.target.api_key:
            login = self.request("GET", "/auth/login").settled()
            if login.response.status_code not in (400, 405):  # 1.x: 400 (no body), later 405
                raise ConnectionFailed(_not_umami(self.target.url, ex))
        return version


TOKEN_NAME = re.compile(r"token$", re.I)
JWT = re.compile(r"^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$")


def _find_token(body: Any, path: str = "$") -> tuple[str | None, str | None]:
    """Where a login answer holds its bearer token: `$.token`, else the first string under a name ending in
    `token` or that looks like a JWT, searched depth-first; (None, None) when there is none."""
    if isinstance(body, str) and JWT.match(body):
        return path, body
    if isinstance(body, dict):
        if isinstance(body.get("token"), str) and body["token"]:
            return f"{path}.token", body["token"]
        for key, value in body.items():
            if isinstance(value, str) and value and (TOKEN_NAME.search(key) or JWT.match(value)):
                return f"{path}.{key}", value
        for key, value in body.items():
            found = _find_token(value, f"{path}.{key}")
            if found[1]:
                return found
    return None, None


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "1")), MAX_RETRY_AFTER)
    except ValueError:
        return 1.0


def _tries(attempts: int) -> str:
    return f"(tried {attempts} time{'s' if attempts > 1 else ''})"


def _not_umami(url: str, ex: Exchange) -> str:
    ctype = ex.response.headers.get("content-type", "no content type")
    return (f"{url} does not look like an Umami server: {ex.request.method} {ex.request.url.path} "
            f"answered HTTP {ex.response.status_code} ({ctype}); check --umami-url")

"""Redaction: every secret of the run (passwords, tokens, API keys, share ids, teams' join codes, /send's session
cache token, password hashes) removed from what is written or printed, credentials as stable stand-ins in recordings."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets as secrets_module
import shlex
import threading
from typing import Any

import httpx

SECRET_HEADERS = {"authorization", "x-umami-api-key", "x-umami-share-token", "x-umami-cache", "cookie", "set-cookie"}
SECRET_FIELDS = {"password", "token", "apikey", "api_key", "sharetoken", "newpassword", "currentpassword"}
CACHE_FIELD = "cache"  # /send's session cache token (a JWT that stands for the visitor's session)
# A team's join code: whoever holds it can join the team. Shown to the team's members by design (no security
# finding), but a credential in anything written: `***` in reports, a stand-in in recordings.
JOIN_CODE_FIELD = "accesscode"
REDACTED_FIELDS = SECRET_FIELDS | {CACHE_FIELD, JOIN_CODE_FIELD}
REDACTED = "***"
# A password hash, by its value (bcrypt, argon2, scrypt, pbkdf2, sha-crypt): never written anywhere, whatever
# the field is called; the security check (checks.py) reports it.
HASH_VALUE = re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}|\$argon2(id|i|d)\$|\$scrypt\$|\$pbkdf2[-$]"
                        r"|\$[56]\$[^$]+\$")
HASH_SCHEME = re.compile(r"\$(2[abxy]?\$\d{2}|argon2(id|i|d)|scrypt|pbkdf2[^$]*|[56])\$")
REDACTED_HASH = re.compile(HASH_SCHEME.pattern + re.escape("***") + "$")
MIN_TEXT_SECRET = 8


def redact_hash(value: str) -> str:
    """A password hash as written anywhere: its scheme only, `$2b$10$***` (so a recording still shows a hash)."""
    scheme = HASH_SCHEME.match(value)
    return (scheme.group(0) if scheme else "") + "***"


class Redactor:
    """Knows every secret of the run and removes it from anything that is written or printed.

    Secret-named fields and headers are always redacted. Free text is searched for secrets of at
    least MIN_TEXT_SECRET characters: a short word such as the default password `umami` would
    otherwise erase the product's name from every report.

    Credentials (tokens, API keys, share ids) are added with `stand_in=True`: reports show them as
    `***` like any secret, recordings (har.py) as a stable stand-in `redacted-<12 hex>`, an HMAC with
    a key of this run, so the same token reads the same everywhere and roles can still be told apart.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        # The secrets longest first, and a pattern that finds any of them (None: no secrets); replaced together
        # on add, so a reader in another thread sees one consistent pair.
        self._known: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)
        self._stand_ins: set[str] = set()
        self._last_curl: tuple[httpx.Request, tuple[tuple[str, ...], re.Pattern[str] | None], str] | None = None
        self._key = secrets_module.token_bytes(16)
        self._lock = threading.Lock()

    def add(self, secret: str | None, stand_in: bool = False) -> None:
        if secret and len(secret) >= MIN_TEXT_SECRET:
            with self._lock:
                self._secrets.add(secret)
                ordered = tuple(sorted(self._secrets, key=len, reverse=True))
                self._known = ordered, re.compile("|".join(map(re.escape, ordered)))
                if stand_in:
                    self._stand_ins.add(secret)

    def stand_in(self, value: str) -> str:
        """The stable stand-in of a credential: `redacted-<12 hex>`, not reversible."""
        return "redacted-" + hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:12]

    def recorded_text(self, value: str) -> str:
        """Free text for a recording: credentials become their stand-ins, other secrets `***`."""
        ordered, pattern = self._known
        if pattern is not None and pattern.search(value):
            for secret in ordered:
                if secret in value:
                    value = value.replace(secret, self.stand_in(secret) if secret in self._stand_ins else REDACTED)
        return value

    def text(self, value: str) -> str:
        """Free text with every known secret `***`: longest first, one after the other (one regex substitution
        would differ where secrets overlap); the search spares that loop for the many strings that hold none."""
        ordered, pattern = self._known
        if pattern is not None and pattern.search(value):
            for secret in ordered:
                value = value.replace(secret, REDACTED)
        return value

    def data(self, value: Any, answer: bool = False) -> Any:
        """Redact a JSON-like value, string by string (keys too): secret-named fields, /send's cache token,
        password hashes and known secret strings. In a server's `answer`, a join code becomes a known secret (with
        a stand-in), replaced wherever else it shows up: in the requests that send it, and in recordings (a code
        only a request holds, such as a made-up one, is no team's)."""
        text = self.text

        def walk(value: Any) -> Any:
            if isinstance(value, str):  # every password hash starts with `$`: most strings skip the match
                return redact_hash(value) if value.startswith("$") and HASH_VALUE.match(value) else text(value)
            if isinstance(value, dict):
                for k, v in value.items():
                    if answer and k.lower() == JOIN_CODE_FIELD and isinstance(v, str):
                        self.add(v, stand_in=True)
                return {text(k): REDACTED if k.lower() in REDACTED_FIELDS and v not in (None, "") else walk(v)
                        for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        return walk(value)

    def curl(self, request: httpx.Request) -> str:
        """The request as one curl line, secrets replaced. The last line made is kept while no secret is added:
        the checks of one answer ask for it several times."""
        known, last = self._known, self._last_curl
        if last is not None and last[0] is request and last[1] is known:
            return last[2]
        parts = ["curl", "-X", request.method]
        for name, value in request.headers.items():
            if name.lower() in {"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"}:
                continue
            shown = REDACTED if name.lower() in SECRET_HEADERS else value
            parts += ["-H", f"{name}: {shown}"]
        body = request.content
        if body:
            try:
                parts += ["--data", json.dumps(self.data(json.loads(body)), separators=(",", ":"))]
            except ValueError:
                parts += ["--data", self.text(body.decode("utf-8", "replace"))]
        parts.append(self.text(str(request.url)))
        line = " ".join(shlex.quote(p) for p in parts)
        self._last_curl = (request, known, line)  # one tuple: a thread reads all of it or none
        return line

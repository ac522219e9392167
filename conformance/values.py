"""Placeholders in spec cases: `${website.id}`, `${now-7d}`, `${now-1d.iso}`, `${prefix}`, `${credentials.password}`.

A string that is exactly one placeholder becomes the raw value (so `${now}` stays a number, epoch ms, and
`${now-1d.iso}` is the same time as an ISO 8601 string);
placeholders inside longer strings are interpolated as text.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any
from collections.abc import Mapping

NOW = re.compile(r"now(?:[-+]\d+[smhdw])?(?:\.iso)?")
PLACEHOLDER = re.compile(rf"\$\{{([a-z_-]+(?:\.[a-zA-Z_]+)?|{NOW.pattern})\}}")
# Roots a spec may use; the sandbox provides them (see specs/README.md).
KNOWN_ROOTS = {"website", "user", "prefix", "credentials", "target", "now", "share", "team", "team_website",
               "viewer"}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# What a placeholder stands for, in words a reader can use (docs, reasons): a user never sees the specs' `${...}`.
WORDS = {"prefix": "ucf-<run>-", "credentials.username": "<username>", "credentials.password": "<password>",
         "share.id": "<shareId>", "target.accessCode": "<accessCode>", "website.seededSince": "<epoch ms>"}


class MissingValue(KeyError):
    """A placeholder names something the sandbox does not have (e.g. in read-only mode)."""


def unknown_placeholders(value: Any) -> list[str]:
    """Placeholders in `value` whose root is not known; checked at load time."""
    found = []
    if isinstance(value, str):
        for match in re.finditer(r"\$\{([^}]*)\}", value):
            valid = PLACEHOLDER.fullmatch(match.group(0))
            root = match.group(1).split(".")[0]
            moment = root.startswith("now") and NOW.fullmatch(match.group(1))
            if not valid or (root not in KNOWN_ROOTS and not moment) or (root == "now" and not moment):
                found.append(match.group(0))
    elif isinstance(value, dict):
        for v in value.values():
            found.extend(unknown_placeholders(v))
    elif isinstance(value, list):
        for v in value:
            found.extend(unknown_placeholders(v))
    return found


def in_words(text: str) -> str:
    """`text` with its placeholders as words: `${website.id}` is `<website id>`, `${now-7d}` is
    `<epoch ms: now-7d>`, `${prefix}` is `ucf-<run>-` (the placeholders `render` fills: the loader accepts no
    other)."""
    return PLACEHOLDER.sub(lambda m: word(m.group(1)), text)


def word(name: str) -> str:
    """What the placeholder `${name}` stands for, in words."""
    if NOW.fullmatch(name):
        return f"<{'ISO 8601 time' if name.endswith('.iso') else 'epoch ms'}: {name.removesuffix('.iso')}>"
    if name in WORDS:
        return WORDS[name]
    return f"<{name.replace('_', ' ').replace('.', ' ')}>"


def _lookup(name: str, context: Mapping[str, Any], now_ms: int) -> Any:
    if name.startswith("now"):
        moment, iso = name.removesuffix(".iso"), name.endswith(".iso")
        offset = 0
        if len(moment) > 3:
            sign = -1 if moment[3] == "-" else 1
            offset = sign * int(moment[4:-1]) * _UNITS[moment[-1]] * 1000
        if iso:
            stamp = datetime.fromtimestamp((now_ms + offset) / 1000, timezone.utc)
            return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return now_ms + offset
    node: Any = context
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node or node[part] is None:
            raise MissingValue(name)
        node = node[part]
    return node


def render(value: Any, context: Mapping[str, Any], now_ms: int | None = None) -> Any:
    """Replace placeholders in `value` (recursively) from `context`."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole:
            return _lookup(whole.group(1), context, now_ms)
        return PLACEHOLDER.sub(lambda m: str(_lookup(m.group(1), context, now_ms)), value)
    if isinstance(value, dict):
        return {k: render(v, context, now_ms) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, context, now_ms) for v in value]
    return value

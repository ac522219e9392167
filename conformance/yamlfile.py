"""YAML with line numbers: spec files parsed into mappings and sequences that remember the line of each key and
item, so that every spec error can say `specs/websites.yaml:42: ...`."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from conformance.errors import SpecError


class LocatedDict(dict):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class LocatedList(list):
    """A sequence that remembers the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: ~10x faster


class _LineLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> LocatedDict:
        # Keys are strings, as in JSON (YAML reads `200:` as an int).
        mapping = LocatedDict((str(k), v) for k, v in
                              super().construct_mapping(node, deep=True).items())
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {str(self.construct_object(k, deep=True)): k.start_mark.line + 1
                             for k, _ in node.value}
        return mapping

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> LocatedList:
        seq = LocatedList(super().construct_sequence(node, deep=True))
        seq.line = node.start_mark.line + 1
        seq.item_lines = [item.start_mark.line + 1 for item in node.value]
        return seq


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                            _LineLoader.construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
                            _LineLoader.construct_sequence)
# Keep "2023-01-01" and similar as strings: specs are JSON-shaped.
_LineLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in _BaseLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path, parsed: ParsedCache | None = None) -> Any:
    """Parse one YAML file, keeping line numbers; syntax errors become SpecError with file:line. `parsed`: the
    parses of earlier processes (a fresh copy each time)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    kept = parsed.get(text) if parsed is not None else None
    if kept is not None:
        return kept
    try:
        doc = pickle.loads(_parsed(text))  # noqa: S301 - our own pickle of our own parse: a fresh copy each time
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise SpecError(f"{path}:{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from None
    if parsed is not None:
        parsed.put(text, doc)
    return doc


class ParsedCache:
    """Parsed YAML files kept across processes in `path` (None: this process only), by the sha256 of each file's
    text: parsing is most of a cold spec load (0.4 of 0.6 s), reading the parse back a fifth of that. It is JSON,
    not a pickle, so nothing read from disk can run code. A file written by another version of this module or of
    PyYAML, or one that cannot be read, is ignored; one that cannot be written is not written."""

    LIMIT = 400  # beyond this many parses, only those this process used are written again

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._files: dict[str, Any] | None = None  # the encoded parses, by the sha256 of the text
        self._used: set[str] = set()
        self._changed = False

    def _known(self) -> dict[str, Any]:
        if self._files is None:
            self._files = {}
            try:
                doc = json.loads(self.path.read_text(encoding="utf-8")) if self.path else None
            except (OSError, ValueError):
                doc = None
            if isinstance(doc, dict) and _format() and doc.get("format") == _format() \
                    and isinstance(doc.get("files"), dict):
                self._files = doc["files"]
        return self._files

    def get(self, text: str) -> Any:
        """A fresh copy of the parse of `text`, or None when it is not kept."""
        key = hashlib.sha256(text.encode()).hexdigest()
        self._used.add(key)
        encoded = self._known().get(key)
        try:
            return None if encoded is None else _decode(encoded)
        except (KeyError, TypeError, AttributeError):  # a kept file changed by hand: parse again
            return None

    def put(self, text: str, doc: Any) -> None:
        if doc is None or not _format():  # an empty file; a module whose source cannot be read (no version to tell)
            return
        try:
            encoded = _encode(doc)
            json.dumps(encoded, allow_nan=False)  # JSON only (a YAML `.nan` is left to parsing)
        except (TypeError, ValueError):
            return
        key = hashlib.sha256(text.encode()).hexdigest()
        self._known()[key] = encoded
        self._used.add(key)
        self._changed = True

    def save(self) -> None:
        """Write the kept parses when this process added one (atomically; best effort)."""
        if not self._changed or self.path is None:
            return
        files = self._known()
        if len(files) > self.LIMIT:
            files = {key: value for key, value in files.items() if key in self._used}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps({"format": _format(), "files": files}, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            return
        self._changed = False


@cache
def _format() -> str:
    """What a kept parse depends on besides the text: this module (how it builds the parse) and PyYAML ("" when
    this module's source cannot be read: then nothing is kept)."""
    try:
        source = Path(__file__).read_bytes()
    except OSError:
        return ""
    return hashlib.sha256(source + f"{yaml.__version__} {_BaseLoader.__name__}".encode()).hexdigest()[:16]


def _encode(value: Any) -> Any:
    """A parse as plain JSON: a mapping as {"d", "l", "k"}, a sequence as {"a", "l", "i"} (a scalar is never an
    object)."""
    if isinstance(value, LocatedDict):
        return {"d": {k: _encode(v) for k, v in value.items()}, "l": value.line, "k": dict(value.key_lines)}
    if isinstance(value, LocatedList):
        return {"a": [_encode(v) for v in value], "l": value.line, "i": list(value.item_lines)}
    if isinstance(value, (dict, list)):
        raise TypeError("a mapping or sequence without lines")
    return value


def _decode(value: Any) -> Any:
    """What `_encode` wrote, as new mappings and sequences with their lines."""
    if not isinstance(value, dict):
        return value
    if "a" in value:
        seq = LocatedList(_decode(v) for v in value["a"])
        seq.line, seq.item_lines = value["l"], list(value["i"])
        return seq
    mapping = LocatedDict((k, _decode(v)) for k, v in value["d"].items())
    mapping.line, mapping.key_lines = value["l"], dict(value["k"])
    return mapping


@lru_cache(maxsize=512)
def _parsed(text: str) -> bytes:
    """The parse of `text`, pickled: the same file read again (the specs of every entry point of a test session,
    a spec directory copied with one file changed) is unpickled, ten times faster than parsing, and the caller
    still gets its own copy to change."""
    return pickle.dumps(yaml.load(text, Loader=_LineLoader), protocol=pickle.HIGHEST_PROTOCOL)  # noqa: S506


def line_of(doc: Any, location: list[Any] | tuple[Any, ...]) -> int:
    """The line of the deepest node of `location` (a JSON path as keys/indexes) within `doc`."""
    line = getattr(doc, "line", 1)
    node = doc
    for key in location:
        if isinstance(node, LocatedDict) and key in node:
            line = node.key_lines.get(key, line)
        elif isinstance(node, LocatedList) and isinstance(key, int) and key < len(node):
            line = node.item_lines[key]
        else:
            break
        node = node[key]
    return line

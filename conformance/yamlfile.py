"""YAML with line numbers: spec files parsed into mappings and sequences that remember the line of each key and
item, so that every spec error can say `specs/websites.yaml:42: ...`."""

from __future__ import annotations

import pickle
from functools import lru_cache
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


def load_yaml(path: Path) -> Any:
    """Parse one YAML file, keeping line numbers; syntax errors become SpecError with file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return pickle.loads(_parsed(text))  # noqa: S301 - our own pickle of our own parse: a fresh copy each time
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise SpecError(f"{path}:{line}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: invalid YAML: {exc}") from None


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

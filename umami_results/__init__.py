"""results.json, the one seam between the runner (`conformance`) and the docs (`docgen`): its schema and loading.

Neither side imports the other; both read and write this format, and the CLI (`umami_conformance`) composes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

SCHEMA_PATH = Path(__file__).resolve().parent / "results.schema.json"
REFERENCE_SCHEMA_PATH = SCHEMA_PATH.with_name("reference.schema.json")
# The schema is written in JSON Schema 2020-12 but uses only keywords that draft-07 means the same way
# (tests/test_architecture.py checks), so fastjsonschema compiles it as draft-07: a results file of 1,700 items
# validates in about 20 ms instead of 300 ms.
SHARED_KEYWORDS = {"$defs", "$id", "$ref", "$schema", "additionalProperties", "const", "description", "enum",
                   "items", "minimum", "pattern", "properties", "required", "title", "type"}


class ResultsError(ValueError):
    """A file that is not a valid results.json (the message names the file and what is wrong)."""


def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Callable[[Any], Any]:
    return fastjsonschema.compile({**schema(), "$schema": "http://json-schema.org/draft-07/schema#"})


def validate(doc: dict[str, Any]) -> None:
    """Raise ResultsError (naming the JSON path) when `doc` does not follow the schema."""
    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaException as exc:
        raise ResultsError(exc.message[:300]) from None


@cache
def _reference_validator() -> Callable[[Any], Any]:
    doc = json.loads(REFERENCE_SCHEMA_PATH.read_text(encoding="utf-8"))
    return fastjsonschema.compile({**doc, "$schema": "http://json-schema.org/draft-07/schema#"})


def validate_reference(doc: dict[str, Any]) -> None:
    """Raise ResultsError when `doc` is not a reference.json (reference.schema.json: the specs of every release)."""
    try:
        _reference_validator()(doc)
    except fastjsonschema.JsonSchemaException as exc:
        raise ResultsError(f"not a reference document of umami-conformance: {exc.message[:300]}") from None


def dumps(doc: dict[str, Any]) -> str:
    """`doc` as the text of a results.json, validated first (ResultsError when it does not follow the schema): a
    top-level key per line, and each element of a top-level list or object (an item, an endpoint) on a line of
    its own. That greps and diffs item by item, and json's C encoder writes it (an indented file takes the
    pure-Python one: three times as long for 1,700 items)."""
    validate(doc)
    lines = []
    for key, value in doc.items():
        name = json.dumps(key)
        if isinstance(value, list) and value:
            inner = ",\n".join(f"    {json.dumps(v)}" for v in value)
            lines.append(f"  {name}: [\n{inner}\n  ]")
        elif isinstance(value, dict) and value:
            inner = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in value.items())
            lines.append(f"  {name}: {{\n{inner}\n  }}")
        else:
            lines.append(f"  {name}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def load(path: Path, strict: bool = True) -> dict[str, Any]:
    """A results.json of umami-conformance. `strict`: it must follow the current schema (what the docs need);
    otherwise only its frame is checked (tool, server, items), so that results of earlier versions still diff."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultsError(f"{path}: not a results file of umami-conformance ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from None
    if not (isinstance(doc, dict) and doc.get("tool") == "umami-conformance" and isinstance(doc.get("items"), list)
            and isinstance(doc.get("server"), dict)):
        raise ResultsError(f"{path}: not a results file of umami-conformance (no tool, server and items)")
    if strict:
        try:
            validate(doc)
        except ResultsError as exc:
            raise ResultsError(f"{path}: not a results file of this umami-conformance version ({exc}); run the "
                               "suite again to write a current one") from None
    return doc

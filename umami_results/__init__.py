"""results.json, the one seam between the runner (`conformance`) and the docs (`docgen`): its schema and loading.

Neither side imports the other; both read and write this format, and the CLI (`umami_conformance`) composes them.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).resolve().parent / "results.schema.json"


class ResultsError(ValueError):
    """A file that is not a valid results.json (the message names the file and what is wrong)."""


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def validate(doc: dict[str, Any]) -> None:
    """Raise jsonschema's ValidationError when `doc` does not follow the schema."""
    _validator().validate(doc)


# The sha256 of results texts that followed the schema, in this process: a run validates what it writes, and
# the reports and docs it renders from that file then load it without validating the same text again.
_PASSED: set[str] = set()


def dumps(doc: dict[str, Any]) -> str:
    """`doc` as the text of a results.json, validated first (ValidationError when it does not follow the
    schema)."""
    validate(doc)
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    _PASSED.add(hashlib.sha256(text.encode()).hexdigest())
    return text


def load(path: Path, strict: bool = True) -> dict[str, Any]:
    """A results.json of umami-conformance. `strict`: it must follow the current schema (what the docs need);
    otherwise only its frame is checked (tool, server, items), so that results of earlier versions still diff."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        doc = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResultsError(f"{path}: not a results file of umami-conformance ({type(exc).__name__}: "
                           f"{str(exc)[:120]})") from None
    if not (isinstance(doc, dict) and doc.get("tool") == "umami-conformance" and isinstance(doc.get("items"), list)
            and isinstance(doc.get("server"), dict)):
        raise ResultsError(f"{path}: not a results file of umami-conformance (no tool, server and items)")
    if strict and hashlib.sha256(text.encode()).hexdigest() not in _PASSED:
        error = next(iter(_validator().iter_errors(doc)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            raise ResultsError(f"{path}: not a results file of this umami-conformance version (at {where}: "
                               f"{error.message[:160]}); run the suite again to write a current one")
    return doc

"""The spec model: what the loader makes of the spec files (`Endpoint`, `Case`, `ResponseSpec`, `Area`,
`ErrorShape`) and the `SpecSet` that holds them with the schema registry that validates answers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry

from conformance.versions import Inventory, Versions

SCHEMA_BASE = "https://umami-conformance.local/schemas/"  # the registry's URIs: schema files and inline schemas
ROLES = ("admin", "user", "view-only", "share", "anonymous")
PATH_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\}")  # a parameter of an endpoint's path template


@dataclass
class ResponseSpec:
    """What one status code of an endpoint looks like, for the versions it applies to."""

    status: int
    versions: Versions
    content_type: str | None
    schema: dict[str, Any] | None
    schema_uri: str
    description: str = ""


@dataclass
class Case:
    """One request of an endpoint: parameters, optional fixed expected status, roles it runs for."""

    name: str
    line: int
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    status: int | None = None
    roles: list[str] | None = None
    target: str | None = None
    creates: str | None = None
    schema_uri: str | None = None
    fresh_login: bool = False
    description: str = ""
    versions: Versions = field(default_factory=Versions)  # the versions this case applies to (default all)
    needs: list[str] = field(default_factory=list)  # parts of the seed the case schema expects (revenue)


@dataclass
class Endpoint:
    """One operation: method + path + auth per role + cases + responses."""

    id: str
    area: str
    method: str
    path: str
    versions: Versions
    source: str
    summary: str
    auth: dict[str, int]
    cases: list[Case]
    responses: list[ResponseSpec]
    file: Path
    line: int
    operation_id: str | None = None
    safe: bool = False
    query: bool = False  # a non-GET that computes an answer from stored data and stores nothing (a report)

    @property
    def writes(self) -> bool:
        """A request other than GET changes server state, unless the spec marks it safe (login)."""
        return self.method != "GET" and not self.safe

    def responses_for(self, status: int, version: str | None) -> list[ResponseSpec]:
        return [r for r in self.responses if r.status == status
                and (version is None or r.versions.contains(version, prereleases=True))]


@dataclass
class Area:
    """One spec file."""

    name: str
    title: str
    description: str
    file: Path
    endpoints: list[Endpoint]


@dataclass
class ErrorShape:
    """How error bodies look on a range of Umami versions (specs/errors.yaml)."""

    versions: Versions
    content_type: str | None
    schema_uri: str | None
    status_pointer: str | None
    description: str


@dataclass
class SpecSet:
    """All areas plus the schema registry used to validate responses."""

    root: Path
    areas: list[Area]
    registry: Registry
    errors: list[ErrorShape] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    inventory: Inventory | None = None
    _validators: dict[str, SchemaValidator] = field(default_factory=dict, repr=False)

    def error_shape(self, version: str | None) -> ErrorShape | None:
        """The error shape of `version` (None when the version is unknown or has none)."""
        return next((e for e in self.errors
                     if version is not None and e.versions.contains(version, prereleases=True)), None)

    @property
    def endpoints(self) -> list[Endpoint]:
        return [e for a in self.areas for e in a.endpoints]

    @cached_property
    def _root_validator(self) -> Draft202012Validator:
        """A validator of no schema in particular, with the registry's resolver (made once)."""
        return Draft202012Validator(True, registry=self.registry, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def validator_for(self, uri: str) -> SchemaValidator:
        """The validator of one registered schema (made once per URI; safe across threads). Each is the root
        validator evolved, sharing its resolver: one made from the registry would combine the registry with
        jsonschema's meta-schemas anew (milliseconds each, for a hundred and more schemas)."""
        validator = self._validators.get(uri)
        if validator is None:
            made = SchemaValidator(self._root_validator.evolve(schema={"$ref": uri}))
            validator = self._validators.setdefault(uri, made)
        return validator


class SchemaValidator:
    """One schema's validator that remembers the errors of each body it checked: the same body always has the
    same errors, and a recheck replays one recorded answer to many items (roles, cases)."""

    def __init__(self, validator: Draft202012Validator) -> None:
        self.validator = validator
        self._errors: dict[str, list[ValidationError]] = {}  # by the body as JSON text (key order kept)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        key = json.dumps(instance)
        errors = self._errors.get(key)
        if errors is None:
            errors = self._errors.setdefault(key, list(self.validator.iter_errors(instance)))
        return iter(errors)

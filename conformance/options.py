"""The options of a run, defined once: one table feeds the CLI (`umami-conformance run`, `recheck`, `cleanup`) and
the pytest plugin (`--umami-*`), and both turn into the same typed `Options`."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.client import Target
from conformance.errors import UsageError

REPLAY_URL = "http://umami"  # a replay sends nowhere; the recordings answer


@dataclass(frozen=True)
class Opt:
    """One option: its `Options` name, the CLI flag (None: the plugin's only), and the environment variable that
    gives its default (read, never written, by the tool)."""

    name: str
    help: str
    cli: str | None = None
    env: str | None = None
    default: Any = None
    type: Any = None
    flag: bool = False  # a switch (store_true)
    many: bool = False  # repeatable (append)
    metavar: str | None = None
    commands: tuple[str, ...] = ("run",)

    @property
    def pytest_flag(self) -> str:
        return "--umami-" + self.name.replace("_", "-")

    def default_value(self) -> Any:
        if self.many:
            return []
        if self.flag:
            return False
        raw = os.environ.get(self.env) if self.env else None
        if raw is None or not self.type:
            return self.default if raw is None else raw
        try:
            return self.type(raw)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise UsageError(f"{self.env}={raw!r} is not a valid value: {exc}") from None

    def kwargs(self, read_env: bool = True) -> dict[str, Any]:
        """argparse keyword arguments (pytest's `addoption` takes the same). Without `read_env` a value option's
        default is None: `Options.from_values` reads the environment later, only where a run needs it."""
        env = f" (env {self.env})" if self.env else ""
        if self.flag:
            return {"action": "store_true", "default": False, "help": self.help + env}
        if self.many:
            return {"action": "append", "default": [], "metavar": self.metavar, "help": self.help}
        return {"default": self.default_value() if read_env else None, "type": self.type, "metavar": self.metavar,
                "help": self.help + env}


def http_url(text: str) -> str:
    """A server URL with its scheme and host (`127.0.0.1:3000` alone is no URL: say so, do not retry it)."""
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL (e.g. http://localhost:3000)")
    return text


CONNECTION = ("run", "cleanup")
OPTIONS = [
    Opt("url", "Umami server URL, e.g. http://localhost:3000 or https://api.umami.is/v1; without it `run` starts "
        "the local real Umami", cli="--url", env="UMAMI_URL", type=http_url, commands=CONNECTION),
    Opt("username", "admin username for the login", cli="--username", env="UMAMI_USERNAME", default="admin",
        commands=CONNECTION),
    Opt("password", "admin password (prefer the environment variable; default umami)", cli="--password",
        env="UMAMI_PASSWORD", default="umami", commands=CONNECTION),
    Opt("api_key", "Umami Cloud API key, sent as x-umami-api-key (prefer the environment variable)",
        cli="--api-key", env="UMAMI_API_KEY", commands=CONNECTION),
    Opt("user_username", "an existing regular user, for servers that cannot create one", env="UMAMI_USER_USERNAME"),
    Opt("user_password", "its password", env="UMAMI_USER_PASSWORD"),
    Opt("viewer_username", "another existing regular user, made the view-only team member",
        env="UMAMI_VIEWER_USERNAME"),
    Opt("viewer_password", "its password", env="UMAMI_VIEWER_PASSWORD"),
    Opt("timeout", "seconds to wait for one answer (default 15)", cli="--timeout", type=float, default=15.0,
        commands=CONNECTION),
    Opt("retries", "send a request again up to N times after a transient failure (502/503/504, 429, a dropped "
        "connection, a timeout; writes only when they provably did not arrive); default 3", cli="--retries",
        type=int, default=3, metavar="N", commands=CONNECTION),
    Opt("retry_wait", "seconds before the first retry, doubling each time (at most 8); Retry-After wins "
        "(default 0.25)", cli="--retry-wait", type=float, default=0.25, metavar="S", commands=CONNECTION),
    Opt("concurrency", "run up to N independent reads at a time (writes, logins and discovery stay in order; 1: "
        "everything in order); default 4, few enough for any server, most of the gain on a small one",
        cli="--concurrency", env="UMAMI_CONCURRENCY", type=int, default=4, metavar="N"),
    Opt("version", "Umami version to assume instead of detecting it (/api/version or the route fingerprint)",
        cli="--umami-version", env="UMAMI_VERSION", commands=("run", "recheck")),
    Opt("specs", "directory of spec files (default: the bundled specs/)", cli="--specs", env="UMAMI_SPECS",
        type=Path, commands=("run", "recheck")),
    Opt("read_only", "send no request other than GET and login; write endpoints are reported as not checked",
        cli="--read-only", flag=True),
    Opt("website_id", "existing website to read in a read-only run", cli="--website-id", env="UMAMI_WEBSITE_ID"),
    Opt("discover", "also probe every route of the route inventory and the server's OpenAPI document: routes no "
        "spec describes are findings, and results.json records what each route answered (for the upgrade diff)",
        cli="--discover", flag=True),
    Opt("negative", "also send N generated bad inputs per GET endpoint (hypothesis, seeded); a 5xx is a finding",
        cli="--negative", type=int, default=0, metavar="N"),
    Opt("contract", "OpenAPI document (JSON/YAML) for the three-way check; default: the one the server publishes",
        cli="--contract", env="UMAMI_CONTRACT", type=Path),
    Opt("record", "also write every exchange as HAR 1.2, secrets redacted (gzip when FILE ends in .gz)",
        cli="--record", type=Path, metavar="FILE.har"),
    Opt("replay", "answer from these recordings instead of a server (repeatable; see `recheck`)", many=True,
        metavar="FILE.har"),
    Opt("results", "where results.json is written (default reports/results.json)", type=Path,
        default=Path("reports/results.json")),
    Opt("ledger_dir", "where the sandbox ledger is kept (default: beside results.json)", type=Path),
]
BY_NAME = {o.name: o for o in OPTIONS}


def add_to_pytest(group: Any) -> None:
    """The plugin's `--umami-*` options. Their environment variables are read only in a session that collects
    specs (the plugin is installed in every pytest session of the environment, unrelated projects included)."""
    for opt in OPTIONS:
        group.addoption(opt.pytest_flag, dest=f"umami_{opt.name}", **opt.kwargs(read_env=False))


def add_to_cli(parser: argparse.ArgumentParser, command: str) -> None:
    """The flags of one CLI command."""
    for opt in OPTIONS:
        if opt.cli and command in opt.commands:
            parser.add_argument(opt.cli, dest=opt.name, **opt.kwargs())


def cli_flags(text: str) -> str:
    """A message of the plugin with its pytest option names replaced by the CLI's flags (`--umami-url` -> `--url`),
    or by the environment variable where the CLI has no flag."""
    flags = {o.pytest_flag: o.cli or o.env for o in OPTIONS if o.cli or o.env}
    return re.sub(r"--umami-[a-z-]+", lambda m: flags.get(m.group(0), m.group(0)), text)


@dataclass(frozen=True)
class Options:
    """Everything configured for a run, whichever way it was given (CLI flags, pytest options, environment)."""

    target: Target
    specs_dir: Path
    results_path: Path
    ledger_dir: Path | None = None  # where the sandbox ledger goes (default: beside results.json)
    version: str | None = None
    website_id: str | None = None
    existing_users: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (username, password)
    contract: Path | None = None
    record: Path | None = None  # write every exchange here as HAR (run --record)
    replay: tuple[Path, ...] = ()  # answer from recordings instead of a server (recheck)
    discover: bool = False
    negative: int = 0
    concurrency: int = 4  # items at a time (as schedule.lane allows); a replay runs in order

    @classmethod
    def from_values(cls, values: Mapping[str, Any], default_specs: Path) -> Options:
        """From {option name: value} (an argparse namespace's vars, or the plugin's options); missing names take
        their defaults."""
        value = {o.name: values[o.name] if values.get(o.name) is not None else o.default_value() for o in OPTIONS}
        if value["concurrency"] < 1:
            raise UsageError(f"--concurrency must be at least 1 (got {value['concurrency']})")
        replay = tuple(Path(p).resolve() for p in value["replay"])
        existing = {label: (value[f"{label}_username"], value[f"{label}_password"]) for label in ("user", "viewer")
                    if value[f"{label}_username"] and value[f"{label}_password"]}
        target = Target(url=REPLAY_URL if replay else value["url"] or "", username=value["username"],
                        password=value["password"], api_key=value["api_key"], timeout=value["timeout"],
                        read_only=value["read_only"], retries=value["retries"], retry_wait=value["retry_wait"])
        return cls(target=target, specs_dir=Path(value["specs"] or default_specs).resolve(),
                   results_path=Path(value["results"]), ledger_dir=value["ledger_dir"] and Path(value["ledger_dir"]),
                   version=value["version"], website_id=value["website_id"], existing_users=existing,
                   contract=value["contract"] and Path(value["contract"]).resolve(),
                   record=value["record"] and Path(value["record"]).resolve(), replay=replay,
                   discover=value["discover"], negative=value["negative"], concurrency=value["concurrency"])

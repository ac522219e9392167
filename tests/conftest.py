"""Fixtures: the real local Umami (started once per session with a fresh database) and helpers."""

from __future__ import annotations

import contextlib
import functools
import fcntl
import gc
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib.metadata import version as package_version
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from conformance import server
from conformance.loader import DEFAULT_SPECS, load_specs
from conformance.model import SpecSet
from conformance.validation import ValidationCache
from umami_conformance import cli
from conformance.errors import ConformanceError

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "umami_conformance.cli"]
# Copies of ../shared/recordings, vendored so no test depends on ../shared; the teams' join codes are stand-ins.
RECORDINGS = ROOT / "tests" / "recordings"
REFERENCE = ROOT / "tests" / "reference"  # copies of ../shared/reference (the sources of specs/references), vendored
LIVE_LOCK = Path(tempfile.gettempdir()) / "umami-live.lock"
# What passed validation (by content: a changed schema or spec file is validated again), kept from one test session
# to the next in the system's temporary directory, never in $HOME; every process of a session (the xdist workers,
# the CLI in a subprocess, the plugin in-process) shares it.
SPEC_CACHE = ValidationCache(Path(tempfile.gettempdir()) / f"umami-conformance-tests-{os.getuid()}"
                             / f"valid-specs-jsonschema-{package_version('jsonschema')}.txt")
_held: list[IO[str]] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the real server (the `umami` fixture, also through another fixture) is `live`:
    `-m "not live and not build"` is the unit tier, `-m "build and not live"` the build tier (`build` is marked by
    hand). The ageing tier runs last: it leaves the server looking a month old."""
    for item in items:
        if "umami" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.live)
    items.sort(key=lambda item: item.get_closest_marker("ageing") is not None)


@pytest.fixture(scope="session", autouse=True)
def no_spec_cache_in_home() -> Iterator[None]:
    """The entry points' default validation cache lives in $HOME: the CLI in a subprocess and the plugin run
    in-process use SPEC_CACHE's file instead (tests pass SPEC_CACHE where they load specs themselves)."""
    assert SPEC_CACHE.path is not None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UMAMI_CONFORMANCE_SPEC_CACHE", str(SPEC_CACHE.path))
        yield


@pytest.fixture(scope="session")
def umami() -> server.ServerInfo:
    """A running real Umami with PostgreSQL: a fresh database per test session.

    Fails (never skips) with the reason when the machine cannot install or start it. One test session at a
    time uses it: the session waits for LIVE_LOCK (a fresh start would pull the server from under another).
    """
    _hold_live_lock()
    try:
        return server.start(fresh=True)
    except ConformanceError as exc:
        pytest.fail(f"the real local Umami could not be started: {exc}", pytrace=False)


def _hold_live_lock() -> None:
    """Hold LIVE_LOCK until the session ends, unless a parent holds it (`flock /tmp/umami-live.lock pytest ...`)."""
    fds = Path("/proc/self/fd")
    if fds.is_dir() and any(os.path.realpath(fd) == str(LIVE_LOCK) for fd in fds.iterdir()):
        return
    handle = LIVE_LOCK.open("a")
    fcntl.flock(handle, fcntl.LOCK_EX)
    _held.append(handle)


@pytest.fixture(scope="session")
def admin_token(umami: server.ServerInfo) -> str:
    r = httpx.post(f"{umami.url}/api/auth/login", json={"username": "admin", "password": "umami"})
    assert r.status_code == 200, r.text
    return r.json()["token"]


def user_env(umami: server.ServerInfo) -> dict[str, str]:
    """The local server's regular users, for the `user` and `view-only` roles (2.10.0 cannot create users)."""
    return {"UMAMI_USER_USERNAME": umami.user_username, "UMAMI_USER_PASSWORD": umami.user_password,
            "UMAMI_VIEWER_USERNAME": umami.viewer_username, "UMAMI_VIEWER_PASSWORD": umami.viewer_password}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `umami-conformance` in a subprocess, as a user would."""
    return subprocess.run([*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def in_process(main: Callable[[list[str]], Any], *args: str) -> subprocess.CompletedProcess:
    """Run `main(args)` (the CLI's, or pytest's) in this process, as `run_cli` runs the CLI in a subprocess (the
    same exit code, stdout and stderr), but with the specs this process has loaded already: for the unit tier.
    Any exception other than an exit fails the test, as a traceback in `run_cli`'s stderr would."""
    out, err = io.StringIO(), io.StringIO()
    cwd = Path.cwd()
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGALRM)}  # the plugin's, --max-time's
    os.chdir(ROOT)
    gc.freeze()  # pytest collects garbage at the end of a session: not this process's whole heap every time
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        gc.unfreeze()
        os.chdir(cwd)
        for number, handler in handlers.items():
            signal.signal(number, handler)
    return subprocess.CompletedProcess([*CLI, *args], int(code), out.getvalue(), err.getvalue())


@functools.cache
def bundled_specs() -> SpecSet:
    """The bundled specs, loaded once for the test session (tests only read them)."""
    return load_specs(DEFAULT_SPECS, SPEC_CACHE)


def _load(root: Path) -> SpecSet:
    """The bundled specs from the session's copy, any other directory (a test's modified copy) read afresh."""
    return bundled_specs() if Path(root).resolve() == DEFAULT_SPECS.resolve() else load_specs(root, SPEC_CACHE)


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """`umami-conformance` with `args`, in this process (see `in_process`), the bundled specs loaded once."""
    return in_process(lambda argv: cli.main(argv, load=_load, cache=SPEC_CACHE), *args)


def copy_specs(tmp_path: Path) -> Path:
    target = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", target)
    return target


def shared_recording(name: str) -> Path:
    """A recording of a real server, vendored in tests/recordings (copied from ../shared/recordings). It must
    be there: a missing one fails the test, it never skips it."""
    path = RECORDINGS / name
    assert path.exists(), f"{path} is missing: the recordings of real servers are part of the repository"
    return path


def recheck(out: Path, *recordings: Path, args: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, dict]:
    """`umami-conformance recheck` of `recordings` into `out` (no docs), in this process: its outcome and
    its results.json. It never ends in a traceback."""
    proc = cli_in_process("recheck", *map(str, recordings), "--out", str(out), "-q", "--no-docs", *args)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc, json.loads((out / "results.json").read_text())


def _session_dir(factory: pytest.TempPathFactory, name: str) -> Path:
    """`name` in the directory that every process of this test session shares (pytest-xdist's workers each have
    a base directory of their own, side by side in the session's)."""
    base = factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


def _outcome(out: Path) -> Path:
    return out.with_name(f"{out.name}.outcome.json")


def _make(out: Path, make: Callable[[Path], subprocess.CompletedProcess]) -> None:
    """`make(out)` and its outcome beside `out`, unless another process of the session made them (the caller holds
    `out`'s lock)."""
    if not _outcome(out).exists():
        out.mkdir(parents=True, exist_ok=True)  # an earlier attempt's, when it failed
        proc = make(out)
        _outcome(out).write_text(json.dumps([proc.args, proc.returncode, proc.stdout, proc.stderr]))


def _once(out: Path, make: Callable[[Path], subprocess.CompletedProcess],
          meanwhile: dict[Path, Callable[[Path], subprocess.CompletedProcess]] | None = None
          ) -> subprocess.CompletedProcess:
    """`make(out)` in the first process of the session that asks for `out`; the others wait for it and get its
    outcome and the files it wrote: a recheck takes seconds, and each worker would make its own. A process that
    would wait first makes one of `meanwhile` that no process has made or is making (the session needs it too)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_name(f"{out.name}.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            for other, make_other in (meanwhile or {}).items():
                with other.with_name(f"{other.name}.lock").open("w") as other_lock:
                    try:
                        fcntl.flock(other_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue
                    if not _outcome(other).exists():
                        _make(other, make_other)
                        break
            fcntl.flock(lock, fcntl.LOCK_EX)
        _make(out, make)
    return subprocess.CompletedProcess(*json.loads(_outcome(out).read_text()))


def _recheck_with_docs(recording: str) -> Callable[[Path], subprocess.CompletedProcess]:
    def make(out: Path) -> subprocess.CompletedProcess:
        proc = cli_in_process("recheck", str(shared_recording(recording)), "--out", str(out), "-q")
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        return proc
    return make


@pytest.fixture(scope="session")
def recheck_2_20_2(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """One recheck of the shared 2.20.2 recording, with docs, for every test of the session that reads it (it takes
    seconds): its outcome and its reports directory. Tests copy the directory before they change anything in it."""
    out = _session_dir(tmp_path_factory, "recheck-2.20.2")
    return _once(out, _recheck_with_docs("umami-2.20.2-run.har.gz")), out


@pytest.fixture(scope="session")
def full_recheck(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[subprocess.CompletedProcess, dict,
                                                                                    Path]]:
    """`recheck` of a vendored full recording (`run --discover --record`, every role), with docs, by file name,
    once per test session, for every test that reads it (test_recheck's exact counts, the shipped results of
    upgrade-check, the verdict's report and docs, the observed releases of the API reference): its outcome, its
    results.json and its reports directory. Tests only read what it returns; they write into their own tmp_path."""
    done: dict[str, tuple[subprocess.CompletedProcess, dict, Path]] = {}
    every = {_session_dir(tmp_path_factory, f"recheck-{p.name}"): _recheck_with_docs(p.name)
             for p in sorted(RECORDINGS.glob("umami-*-full.har.gz"))}

    def get(name: str) -> tuple[subprocess.CompletedProcess, dict, Path]:
        if name not in done:
            out = _session_dir(tmp_path_factory, f"recheck-{name}")
            proc = _once(out, _recheck_with_docs(name), meanwhile=every)
            done[name] = proc, json.loads((out / "results.json").read_text()), out
        return done[name]
    return get

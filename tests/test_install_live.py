"""The built wheel, installed into a fresh venv outside the repository, is a working `umami-conformance`: it ships the
specs, schemas and references, validates them, exports OpenAPI and runs against the real local Umami."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conformance import __version__, server
from conftest import ROOT, user_env

pytestmark = pytest.mark.live  # a build and an install: not for the unit tier


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`bin/` of a fresh venv with the wheel (and its dependencies from the registry) installed."""
    base = tmp_path_factory.mktemp("wheel-install")
    wheels = base / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next(wheels.glob("umami_conformance-*.whl"))
    assert wheel.name.startswith(f"umami_conformance-{__version__}-")  # the version of conformance.__version__
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    proc = subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return env_dir / "bin"


def _tool(bin_dir: Path, cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "UMAMI_SPECS", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "umami-conformance"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**clean, **(env or {})})


def test_the_installed_wheel_validates_its_own_specs_anywhere(installed: Path, tmp_path: Path) -> None:
    proc = _tool(installed, tmp_path, "validate")
    assert proc.returncode == 0, proc.stderr
    root = proc.stdout.split(":")[0]
    assert "site-packages" in root and not root.startswith(str(ROOT)) and "endpoints" in proc.stdout
    assert _tool(installed, tmp_path, "--version").stdout.strip() == f"umami-conformance {__version__}"
    coverage = _tool(installed, tmp_path, "coverage")  # the references and the route inventory are shipped too
    assert coverage.returncode == 0 and "umami-3.1.0" in coverage.stdout, coverage.stderr
    out = tmp_path / "openapi.json"
    assert _tool(installed, tmp_path, "openapi", "--umami-version", "2.10.0", "--out", str(out)).returncode == 0
    assert json.loads(out.read_text())["info"]["version"] == "2.10.0"
    listing = _tool(installed, tmp_path, "upgrade-check", "--to", "9.9.9")  # the wheel ships the recorded releases
    assert listing.returncode == 2 and "--to takes one of: 2.10.0, 2.20.2, 3.1.0" in listing.stderr, listing.stderr
    # --specs: your own specs directory (here a broken copy, so the answer proves it was read)
    own = tmp_path / "my-specs"
    own.mkdir()
    (own / "meta-schema.yaml").write_text("type: [object\n")
    bad = _tool(installed, tmp_path, "validate", "--specs", str(own))
    assert bad.returncode == 2 and f"{own}/meta-schema.yaml:" in bad.stderr and "Traceback" not in bad.stderr


def test_the_installed_wheel_runs_against_the_local_server(installed: Path, tmp_path: Path,
                                                            umami: server.ServerInfo) -> None:
    proc = _tool(installed, tmp_path, "run", "--url", umami.url, "-k", "me/get", "-q", "--no-docs",
                 env=user_env(umami))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "reports" / "results.json").read_text())
    outcomes = {i["id"]: i["outcome"] for i in results["items"]}
    assert outcomes["me/get[admin-default]"] == "passed", outcomes
    assert results["server"]["version"] == "2.10.0"

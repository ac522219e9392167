"""What the benchmarks share: the local real Umami with its regular users, and one timed `umami-conformance run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from conformance import server

ROOT = Path(__file__).resolve().parent.parent


def local_server() -> tuple[str, dict[str, str]]:
    """The local real Umami (started if needed): its URL, and the environment naming its regular users."""
    info = server.start()
    return info.url, {**os.environ, "UMAMI_USER_USERNAME": info.user_username,
                      "UMAMI_USER_PASSWORD": info.user_password, "UMAMI_VIEWER_USERNAME": info.viewer_username,
                      "UMAMI_VIEWER_PASSWORD": info.viewer_password}


def timed_run(url: str, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float, dict[str, Any]]:
    """One `umami-conformance run -q` against `url` into a temporary directory: the process, its wall time in
    seconds, and its results.json."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "umami_conformance.cli", "run", "--url", url, "--out", out, "-q",
                               *args], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        return proc, wall, json.loads((Path(out) / "results.json").read_text())

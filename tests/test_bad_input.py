"""Bad input gets one clear message and exit 2 (usage), never a traceback and never an exit code of drift (1) or of
an unreachable server (3)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli_in_process, shared_recording


def _one_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-1000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.mark.parametrize("content, says", [
    (b"hello\n", "not a HAR recording"),
    (json.dumps({"tool": "umami-conformance", "server": {}, "items": []}).encode(), "not a HAR recording"),
    (b"", "not a HAR recording"),
    (gzip.compress(b"{\"log\": {\"entries\": []}}"), "without entries"),
    (b"\x1f\x8b not really gzip", "not a HAR recording"),
], ids=["text", "results-json", "empty-file", "no-entries", "broken-gzip"])
def test_recheck_of_what_is_no_recording(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "input.har"
    path.write_bytes(content)
    line = _one_error(cli_in_process("recheck", str(path), "--out", str(tmp_path / "out"), "--no-docs", "-q"))
    assert str(path) in line and says in line, line
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_recording_beside_a_bad_file_is_not_rechecked(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("not a recording")
    line = _one_error(cli_in_process("recheck", str(shared_recording("umami-3.1.0-full.har.gz")), str(bad),
                                     "--out", str(tmp_path / "out"), "--no-docs", "-q"))
    assert "notes.txt: not a HAR recording" in line


@pytest.mark.parametrize("url", ["127.0.0.1:3000", "localhost:3000", "http://", "ftp://umami.example.com"])
@pytest.mark.parametrize("command", ["run", "cleanup"])
def test_a_url_without_its_scheme_is_a_usage_error(tmp_path: Path, command: str, url: str) -> None:
    line = _one_error(cli_in_process(command, "--url", url, "--out", str(tmp_path)))
    assert "is not an http:// or https:// URL" in line, line


@pytest.mark.parametrize("variable, value", [("UMAMI_CONCURRENCY", "abc"), ("UMAMI_URL", "umami.example.com")])
def test_a_bad_environment_variable_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    line = _one_error(cli_in_process("run", "--out", str(tmp_path)))
    assert f"{variable}={value!r} is not a valid value" in line, line


def test_the_plugin_leaves_unrelated_pytest_sessions_alone(tmp_path: Path) -> None:
    """The plugin is installed for every pytest session of the environment: its variables are read only in a
    session of the specs."""
    (tmp_path / "test_other.py").write_text("def test_other():\n    assert True\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_other.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "UMAMI_CONCURRENCY": "0", "UMAMI_URL": "not a url"})
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]

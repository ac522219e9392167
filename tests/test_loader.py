"""The loader: bundled specs are valid; broken input names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.errors import SpecError
from conformance.loader import load_specs

from conftest import copy_specs, run_cli


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


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    _edit(me, "    method: GET\n", "    method: [GET\n")
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    msg = str(exc.value)
    assert msg.startswith(f"{me}:")
    line = int(msg.split(":")[1])
    assert abs(line - _line_of(me, "method: [GET")) <= 1, msg


def test_meta_schema_violation_names_line(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    _edit(me, "    method: GET\n", "    method: FETCH\n")
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    assert f"{me}:{_line_of(me, 'method: FETCH')}:" in str(exc.value)
    assert "FETCH" in str(exc.value)


def test_broken_schema_names_file_and_line(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    _edit(me, '        schema: {$ref: "user.yaml"}', '        schema: {type: objekt}')
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    msg = str(exc.value)
    assert f"{me}:" in msg and "invalid JSON Schema" in msg and "objekt" in msg
    assert int(msg.split(":")[1]) in range(_line_of(me, '"200":'), _line_of(me, "type: objekt") + 1)


def test_broken_shared_schema_names_file(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    common = specs / "schemas" / "common.yaml"
    _edit(common, "  count:\n    type: integer", "  count:\n    type: 5")
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    assert f"{common}:" in str(exc.value) and "invalid JSON Schema" in str(exc.value)


def test_dangling_ref_names_file_and_line(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    _edit(me, '{$ref: "user.yaml"}', '{$ref: "nobody.yaml"}')
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    assert str(exc.value) == f"{me}:{_line_of(me, 'nobody.yaml')}: unknown $ref 'nobody.yaml'"


def test_dangling_ref_inside_shared_schema(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    stats = specs / "schemas" / "stats.yaml"
    _edit(stats, '{$ref: "#/$defs/value-change"}', '{$ref: "#/$defs/no-such-def"}')
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    assert f"{stats}:{_line_of(stats, 'no-such-def')}: unknown $ref" in str(exc.value)


def test_unknown_role_and_placeholder(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    _edit(me, "      user: 200\n", "      superuser: 200\n")
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    assert f"{me}:{_line_of(me, 'superuser')}:" in str(exc.value)

    specs2 = copy_specs(tmp_path / "2")
    stats = specs2 / "website-stats.yaml"
    _edit(stats, '${website.id}', '${websit.id}')
    with pytest.raises(SpecError) as exc:
        load_specs(specs2)
    assert "unknown placeholder ${websit.id}" in str(exc.value)


def test_bad_version_range(tmp_path: Path) -> None:
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    _edit(me, 'versions: ">=2.0"', 'versions: "two or more"')
    with pytest.raises(SpecError) as exc:
        load_specs(specs)
    assert "invalid version range 'two or more'" in str(exc.value)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    ok = run_cli("validate")
    assert ok.returncode == 0 and "valid" in ok.stdout
    specs = copy_specs(tmp_path)
    _edit(specs / "me.yaml", '{$ref: "user.yaml"}', '{$ref: "nobody.yaml"}')
    bad = run_cli("validate", "--specs", str(specs))
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith("umami-conformance: error: ") and "nobody.yaml" in bad.stderr
    run = run_cli("run", "--specs", str(specs), "--url", "http://127.0.0.1:9")
    assert run.returncode == 2 and "nobody.yaml" in run.stderr, "spec errors stop the run first"


def test_coverage_counts_operations_per_reference(tmp_path: Path) -> None:
    from conformance.coverage import coverage
    before = {c.name: c for c in coverage(load_specs())}
    assert set(before) == {"v1", "v2", "v3"}
    assert before["v2"].total == 65 and before["v3"].total == 166 and before["v1"].total == 8
    assert "GET /me" not in before["v2"].missing
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    text = me.read_text()
    me.write_text(text.replace("    path: /me\n", "    path: /me-renamed\n", 1))
    after = {c.name: c for c in coverage(load_specs(specs))}
    assert after["v2"].specified == before["v2"].specified - 1 and "GET /me" in after["v2"].missing
    out = run_cli("coverage", "--missing")
    assert out.returncode == 0 and out.stdout.startswith("v1: ")
    assert "missing:" not in out.stdout and out.stdout.count("(100 %)") == 3, out.stdout

"""The loader: bundled specs are valid; broken input names file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from jsonschema import Draft202012Validator

from conformance import yamlfile
from conformance.errors import SpecError
from conformance.loader import DEFAULT_SPECS, load_specs
from conformance.validation import ValidationCache

from conftest import SPEC_CACHE, bundled_specs, cli_in_process, copy_specs, run_cli


def test_bundled_specs_load() -> None:
    specs = bundled_specs()
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
        load_specs(specs, SPEC_CACHE)
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
    assert f"{me}:{_line_of(me, 'type: objekt')}: invalid JSON Schema" in msg, msg  # the offending line


def test_broken_shared_schema_names_file_and_line(tmp_path: Path) -> None:
    """Issue 27: a broken schema file pointed at line 2 instead of the offending line."""
    common, msg = _spec_error(tmp_path, "schemas/common.yaml", "  count:\n    type: integer", "  count:\n    type: 5")
    assert f"{common}:{_line_of(common, 'type: 5')}: invalid JSON Schema" in msg, msg


def test_dangling_ref_names_file_and_line(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", '{$ref: "user.yaml"}', '{$ref: "nobody.yaml"}')
    assert msg == f"{me}:{_line_of(me, 'nobody.yaml')}: unknown $ref 'nobody.yaml'"


def test_dangling_ref_inside_shared_schema(tmp_path: Path) -> None:
    stats, msg = _spec_error(tmp_path, "schemas/stats.yaml", '{$ref: "#/$defs/value-change"}',
                             '{$ref: "#/$defs/no-such-def"}')
    assert f"{stats}:{_line_of(stats, 'no-such-def')}: unknown $ref" in msg


def test_unknown_role_and_placeholder(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", "  auth: signed-in\n", "  auth: {superuser: 200}\n")
    assert f"{me}:{_line_of(me, 'superuser')}:" in msg
    _, msg = _spec_error(tmp_path / "2", "website-stats.yaml", "${website.id}", "${websit.id}")
    assert "unknown placeholder ${websit.id}" in msg


def test_bad_version_range(tmp_path: Path) -> None:
    _, msg = _spec_error(tmp_path, "me.yaml", 'versions: ">=2.0"', 'versions: "two or more"')
    assert "invalid version range 'two or more'" in msg


def test_query_is_only_for_requests_other_than_get(tmp_path: Path) -> None:
    me, msg = _spec_error(tmp_path, "me.yaml", "    method: GET\n", "    method: GET\n    query: true\n")
    assert msg == (f"{me}:{_line_of(me, 'query: true')}: `query` marks a request other than GET that stores "
                   "nothing; a GET only reads anyway")


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
    before = {c.name: c for c in coverage(bundled_specs(), SPEC_CACHE)}
    assert set(before) == {"v1", "v2", "v3", "umami-3.1.0"}
    assert before["v2"].total == 65 and before["v3"].total == 166 and before["v1"].total == 8
    assert "GET /me" not in before["v2"].missing
    specs = copy_specs(tmp_path)
    me = specs / "me.yaml"
    text = me.read_text()
    me.write_text(text.replace("    path: /me\n", "    path: /me-renamed\n", 1))
    after = {c.name: c for c in coverage(load_specs(specs, SPEC_CACHE), SPEC_CACHE)}
    assert after["v2"].specified == before["v2"].specified - 1 and "GET /me" in after["v2"].missing
    out = cli_in_process("coverage", "--missing")
    assert out.returncode == 0 and out.stdout.startswith("v1: ")
    assert "missing:" not in out.stdout and out.stdout.count("(100 %)") == 4, out.stdout


# --- Defaults, profiles, templates, constants, families: a small spec directory of their own.

PROFILES = """\
auth:
  reader: {admin: 200, user: 200, anonymous: 401}
  owner: {admin: 200, anonymous: 401}
templates:
  team-website:
    name: team-website
    description: on the team website
    roles: [user]
    status: 200
    rebind: {website: team_website}
constants:
  nobody: 00000000-0000-0000-0000-000000000000
  limit: 5
"""

AREA = """\
area: things
title: Things
defaults:
  auth: reader
  path: {websiteId: "${website.id}"}
  responses:
    "400": {description: default bad request}
    "401": {description: default unauthorized}
endpoints:
  - id: things/stats
    method: GET
    path: /websites/{websiteId}/stats
    source: test
    cases:
      - name: last-7-days
        query: {startAt: "${now-7d}", endAt: "${now+1h}"}
      - {template: team-website, extends: last-7-days}
      - {template: team-website, extends: last-7-days, name: team-refused, status: 401}
      - roles: [admin]
        query: {startAt: "${now-1d}"}
        each:
          - {name: filter-os, query: {os: Linux}}
          - {name: filter-none, query: {startAt: "${now-7d}", os: Plan9}, status: 400}
    responses:
      "200": {schema: {type: object}}
      "401": {description: own unauthorized}
  - id: things/get
    method: GET
    path: /things/{thingId}
    source: test
    auth: owner
    cases:
      - name: unknown
        path: {thingId: "${const.nobody}"}
        query: {limit: "${const.limit}", label: "n-${const.limit}"}
    responses:
      "200": {schema: {type: object}}
      "400": null
  - id: things/put
    method: PUT
    path: /things
    source: test
    auth: {admin: 204}
    responses:
      "204": {description: no content}
"""


def _mini_specs(tmp_path: Path, area: str = AREA, profiles: str = PROFILES) -> Path:
    root = tmp_path / "specs"
    (root / "schemas").mkdir(parents=True)
    (root / "meta-schema.yaml").write_text((DEFAULT_SPECS / "meta-schema.yaml").read_text())
    (root / "profiles.yaml").write_text(profiles)
    (root / "things.yaml").write_text(area)
    return root


def _mini_error(tmp_path: Path, old: str, new: str, rel: str = "things.yaml") -> tuple[Path, str]:
    root = _mini_specs(tmp_path)
    _edit(root / rel, old, new)
    with pytest.raises(SpecError) as exc:
        load_specs(root)
    return root / rel, str(exc.value)


def test_auth_profiles_and_area_default(tmp_path: Path) -> None:
    eps = {e.id: e for e in load_specs(_mini_specs(tmp_path)).endpoints}
    assert eps["things/stats"].auth == {"admin": 200, "user": 200, "anonymous": 401}, "the area default"
    assert eps["things/get"].auth == {"admin": 200, "anonymous": 401}, "a named profile"
    assert eps["things/put"].auth == {"admin": 204}, "an own map wins"


def test_default_responses_merge_under_the_endpoints(tmp_path: Path) -> None:
    eps = {e.id: e for e in load_specs(_mini_specs(tmp_path)).endpoints}
    stats = {r.status: r.description for r in eps["things/stats"].responses}
    assert stats == {200: "", 400: "default bad request", 401: "own unauthorized"}, "own status wins"
    assert list(stats) == [200, 400, 401], "in status order"
    assert {r.status for r in eps["things/get"].responses} == {200, 401}, "null drops a default"
    assert {r.status for r in eps["things/put"].responses} == {204, 400, 401}


def test_template_extends_and_rebinds_the_website(tmp_path: Path) -> None:
    cases = {c.name: c for c in load_specs(_mini_specs(tmp_path)).endpoints[0].cases}
    base, team = cases["last-7-days"], cases["team-website"]
    assert base.path_params == {"websiteId": "${website.id}"}, "the default path parameter"
    assert team.path_params == {"websiteId": "${team_website.id}"} and team.query == base.query
    assert (team.roles, team.status, team.description) == (["user"], 200, "on the team website")
    refused = cases["team-refused"]
    assert refused.status == 401 and refused.path_params == team.path_params, "own keys win over the template"


def test_each_unrolls_a_family(tmp_path: Path) -> None:
    root = _mini_specs(tmp_path)
    cases = {c.name: c for c in load_specs(root).endpoints[0].cases}
    os_case, none = cases["filter-os"], cases["filter-none"]
    assert os_case.query == {"startAt": "${now-1d}", "os": "Linux"} and os_case.roles == ["admin"]
    assert os_case.status is None and os_case.path_params == {"websiteId": "${website.id}"}
    assert none.query == {"startAt": "${now-7d}", "os": "Plan9"} and none.status == 400, "entries win"
    assert os_case.line == _line_of(root / "things.yaml", "filter-os"), "an item points at its entry"


def test_constants_and_unused_path_defaults(tmp_path: Path) -> None:
    case = load_specs(_mini_specs(tmp_path)).endpoints[1].cases[0]
    assert case.path_params == {"thingId": "00000000-0000-0000-0000-000000000000"}, "no websiteId in /things/{thingId}"
    assert case.query == {"limit": 5, "label": "n-5"}, "a whole placeholder keeps the constant's type"


@pytest.mark.parametrize(("old", "new", "needle", "message"), [
    ("    auth: owner\n", "    auth: ownr\n", "auth: ownr", "unknown auth profile 'ownr' (known: owner, reader"),
    ("  auth: reader\n", "  auth: raeder\n", "auth: raeder", "unknown auth profile 'raeder'"),
    ("{template: team-website, extends: last-7-days}", "{template: team-site, extends: last-7-days}",
     "team-site", "unknown case template 'team-site' (known: team-website"),
    ("{template: team-website, extends: last-7-days}", "{template: team-website, extends: last-8-days}",
     "last-8-days", "extends 'last-8-days': no earlier case of that name in things/stats"),
    ('"${const.nobody}"', '"${const.noone}"', "const.noone", "unknown constant ${const.noone}"),
    ("name: filter-os,", "name: last-7-days,", "name: last-7-days,", "duplicate case name 'last-7-days'"),
    ("{name: filter-os, ", "{", "{query: {os: Linux}}", "a case needs a name"),
    ("{name: filter-os, query: {os: Linux}}", "{name: filter-os, each: [{name: x}]}", "each: [{name: x}]",
     "cases/3/each/0: False schema does not allow"),
])
def test_shorthand_errors_name_file_and_line(tmp_path: Path, old: str, new: str, needle: str,
                                             message: str) -> None:
    path, msg = _mini_error(tmp_path, old, new)
    assert msg.startswith(f"{path}:{_line_of(path, needle)}: "), msg
    assert message in msg, msg


def test_bad_profiles_file_names_file_and_line(tmp_path: Path) -> None:
    path, msg = _mini_error(tmp_path, "    status: 200\n", "    status: 200\n    extends: x\n", "profiles.yaml")
    assert msg.startswith(f"{path}:"), msg
    path, msg = _mini_error(tmp_path / "2", "  reader: {admin: 200,", "  reader: {root: 200,", "profiles.yaml")
    assert msg.startswith(f"{path}:{_line_of(path, 'root: 200')}:") and "root" in msg, msg


def test_bundled_team_website_cases_follow_their_base() -> None:
    """The template keeps what the copies said: the base case's request, on the team website."""
    specs = bundled_specs()
    found = 0
    for ep in specs.endpoints:
        for case in ep.cases:
            if case.description.startswith("the team website; its owner (user) and the view-only member"):
                found += 1
                assert case.roles == ["user", "view-only"] and case.status == 200, ep.id
                assert "${team_website.id}" in str([case.path_params, case.query, case.body]), ep.id
                assert "${website.id}" not in str([case.path_params, case.query, case.body]), ep.id
    assert found >= 70
    assert "${const." not in str([(c.path_params, c.query, c.body) for e in specs.endpoints for c in e.cases])


def test_the_validation_cache_keeps_only_successes_by_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second process skips the meta-schema checks of what passed before (same content), and still finds an
    error in anything changed; a malformed cache file is ignored."""
    root = _mini_specs(tmp_path)
    path = root / "schemas" / "common.yaml"
    path.write_text((DEFAULT_SPECS / "schemas" / "common.yaml").read_text())
    cache_file = tmp_path / "cache" / "valid.txt"
    load_specs(root, ValidationCache(cache_file))
    keys = cache_file.read_text().split()
    assert len(keys) >= 5 and all(len(k) == 64 for k in keys), "meta-schema, schema, profiles, area, inline schema"
    checked: list[object] = []
    real_check = Draft202012Validator.check_schema
    monkeypatch.setattr(Draft202012Validator, "check_schema",
                        lambda schema: checked.append(schema) or real_check(schema))
    load_specs(root, ValidationCache(cache_file))  # a new process
    assert checked == []  # every schema passed before, with this content
    path.write_text(path.read_text().replace("  count:\n    type: integer", "  count:\n    type: 5", 1))
    with pytest.raises(SpecError, match=r"common.yaml:\d+: invalid JSON Schema"):
        load_specs(root, ValidationCache(cache_file))
    assert checked  # the changed schema was checked again
    cache_file.write_text("not a hash\n")
    checked.clear()
    path.write_text(path.read_text().replace("  count:\n    type: 5", "  count:\n    type: integer", 1))
    load_specs(root, ValidationCache(cache_file))
    assert len(checked) >= 3  # a malformed cache is no cache: the meta-schema, common.yaml, the inline schema


def test_a_new_process_reads_the_parses_back_and_parses_only_what_changed(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The parses of the spec files are kept beside the validation cache, as JSON: a new process parses no file
    it has seen, with the same lines in its errors; a changed file is parsed again; a file of another format or a
    broken one is no cache."""
    specs = copy_specs(tmp_path)
    cache_file = tmp_path / "cache" / "valid.txt"
    first = load_specs(specs, ValidationCache(cache_file))
    kept = cache_file.with_name("valid.parsed.json")
    assert kept.read_text().startswith('{"format":')
    parsed: list[str] = []
    real = yamlfile._parsed.__wrapped__
    monkeypatch.setattr(yamlfile, "_parsed", lambda text: parsed.append(text) or real(text))  # a new process
    again = load_specs(specs, ValidationCache(cache_file))
    assert parsed == []
    assert [(e.id, e.line, [c.line for c in e.cases]) for e in again.endpoints] == \
           [(e.id, e.line, [c.line for c in e.cases]) for e in first.endpoints]
    me = specs / "me.yaml"
    me.write_text(me.read_text().replace("    method: GET\n", "    method: FETCH\n", 1))
    with pytest.raises(SpecError) as error:
        load_specs(specs, ValidationCache(cache_file))
    assert len(parsed) == 1 and f"{me}:{_line_of(me, 'method: FETCH')}:" in str(error.value)
    me.write_text(me.read_text().replace("    method: FETCH\n", "    method: GET\n", 1))
    for text in ('{"format": "another", "files": {}}', "not json", '{"format": 1}'):
        kept.write_text(text)
        parsed.clear()
        load_specs(specs, ValidationCache(cache_file))
        assert len(parsed) > 50, text  # every file parsed again, and kept again
        assert kept.read_text().startswith('{"format":') and kept.read_text() != text


def test_loading_without_a_cache_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only an entry point chooses the cache in the user's home; a load without one leaves no file anywhere."""
    root = _mini_specs(tmp_path / "specs")
    home = tmp_path / "home"
    for name in ("HOME", "XDG_CACHE_HOME", "UMAMI_CONFORMANCE_HOME"):
        monkeypatch.setenv(name, str(home))
    monkeypatch.delenv("UMAMI_CONFORMANCE_SPEC_CACHE")
    load_specs(root)
    assert not home.exists() and not list(tmp_path.rglob("*.parsed.json"))
    assert ValidationCache.default().path.parent == home  # where the entry points would keep it


def test_the_validation_cache_can_be_turned_off_or_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UMAMI_CONFORMANCE_SPEC_CACHE", "off")
    assert ValidationCache.default().path is None
    monkeypatch.setenv("UMAMI_CONFORMANCE_SPEC_CACHE", "/tmp/ci/valid.txt")
    assert ValidationCache.default().path == Path("/tmp/ci/valid.txt")
    monkeypatch.delenv("UMAMI_CONFORMANCE_SPEC_CACHE")
    monkeypatch.setenv("UMAMI_CONFORMANCE_HOME", "/somewhere")
    assert str(ValidationCache.default().path).startswith("/somewhere/valid-specs-jsonschema-")

"""`umami-conformance docs --markers`, offline on the shared 2.20.2 recheck: status and table markers in other
Markdown files are filled in place, and a broken marker, or one naming nothing of the results, is named and left
as it was, never allowed to swallow the text after it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from conftest import ROOT, cli_in_process

NOTES = """# My notes

Login: <!--status:auth/login-->old<!--status-end--> keep this.

<!--table:me-->
old table
<!--table-end-->

Broken: <!--status:me/get-->its end was deleted, and this text must stay.
Unknown: <!--status:nope/nothing-->x<!--status-end-->
<!--table:nope-->
y
<!--table-end-->
Tail text.
"""


def test_markers_are_filled_and_a_broken_or_unknown_one_is_named(recheck_2_20_2: tuple[Any, Path],
                                                                 tmp_path: Path) -> None:
    _, reports = recheck_2_20_2
    notes, readme = tmp_path / "notes.md", tmp_path / "README.md"
    notes.write_text(NOTES)
    shutil.copy(ROOT / "README.md", readme)  # the project's README, as the conformance workflow updates it
    proc: subprocess.CompletedProcess = cli_in_process("docs", str(reports / "results.json"), "--out",
                                                       str(tmp_path / "docs"), "--markers", str(notes), str(readme))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{notes}: 2 marker block(s) updated" in proc.stdout and f"{readme}: 0 marker block(s)" in proc.stdout
    assert proc.stderr.splitlines() == [
        f"umami-conformance: warning: {notes}:9: <!--status:me/get--> has no <!--status-end--> of its own",
        f"umami-conformance: warning: {notes}:10: <!--status:nope/nothing--> names no endpoint of the results",
        f"umami-conformance: warning: {notes}:11: <!--table:nope--> names no area of the results"]
    after = notes.read_text()
    assert after.startswith("# My notes\n\nLogin: <!--status:auth/login-->✅<!--status-end--> keep this.\n\n"
                            "<!--table:me-->\n")
    assert "old table" not in after and "| [me/get](docs/endpoints/me/get.md) |" in after
    assert after.endswith(NOTES[NOTES.index("Broken:"):]), "the broken and unknown markers and the text stay"
    assert readme.read_text() == (ROOT / "README.md").read_text()

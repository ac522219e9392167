"""`umami-conformance upgrade-check --to V`: the suite against the user's server, as `run`, then the upgrade diff of
that run against the shipped results of release V (umami_results.releases), so no server of V is needed.

The run is the CLI's own (`cli._run`, passed in): the same suite, sandbox, cleanup, `--read-only` and exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance import options
from conformance.errors import ExitCode, UsageError
from docgen.diff import diff_results
from docgen.upgrade_report import diff_json, first_screen, render_diff
from umami_results.releases import load_release

Run = Callable[[argparse.Namespace], tuple[int, dict[str, Any] | None]]  # cli._run: exit code, results published


def add_parser(sub: Any) -> None:
    """The `upgrade-check` command: `--to`, every flag of `run`, where the run's reports and the diff go."""
    p = sub.add_parser("upgrade-check", help="run the suite against your server and diff it against the shipped "
                       "results of a recorded release (no server of that release needed)")
    p.add_argument("--to", required=True, metavar="VERSION",
                   help="the release to upgrade to; one with shipped results (a wrong one lists them)")
    options.add_to_cli(p, "run")
    p.add_argument("--reports", type=Path, default=Path("reports/upgrade-check"),
                   help="where the run's reports go (default reports/upgrade-check/)")
    p.add_argument("--out", type=Path, default=None, help="the report goes here (the terminal: its first screen)")
    p.add_argument("--json", type=Path, default=None, help="write the changes as JSON here (for machines)")
    p.add_argument("-k", dest="keyword", default=None, help="select items as `run -k` does")
    p.add_argument("-m", dest="marker", default=None, help="select items as `run -m` does")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="the run's summary lists every known difference (default: a count per finding class)")
    p.add_argument("--max-time", type=float, default=None,
                   help="stop the run after this many seconds (the sandbox is still cleaned up)")


def check(args: argparse.Namespace, run: Run) -> int:
    """`run` against the user's server, then the diff of that run against the shipped results of `--to`. Exit 1
    also when something breaking changed; a run that did not finish is not diffed (its exit code)."""
    target = load_release(args.to)  # before any request: a release without data lists those with data
    for path in (args.out, args.json):  # a report that cannot be written fails before the run, not after it
        if path:
            _writable(path)
    code, results = run(argparse.Namespace(**{**vars(args), "out": args.reports, "docs": None, "history": None,
                                              "no_docs": True}))
    if results is None or code not in (ExitCode.OK, ExitCode.DRIFT, ExitCode.UNAVAILABLE):
        print(f"umami-conformance: no upgrade check: the run against your server did not finish (exit {int(code)})",
              file=sys.stderr)
        return code
    diff = diff_results(results, target)
    text = render_diff(results, target, diff)
    print(first_screen(text, args.out) if args.out else text, end="")  # the whole report goes to --out
    for path, content in ((args.out, text), (args.json, diff_json(results, target, diff) if args.json else "")):
        if path:
            _writable(path).write_text(content, encoding="utf-8")
    print(f"upgrade check: {len(diff.changes)} change(s), {len(diff.breaking)} breaking, against the shipped "
          f"recording of Umami {target['server']['version']}", file=sys.stderr)
    return ExitCode.DRIFT if diff.breaking else code


def _writable(path: Path) -> Path:
    """`path`, its directory made; UsageError (exit 2) when it cannot be written there."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir() or not os.access(path.parent, os.W_OK):
            raise OSError(f"{path} is a directory" if path.is_dir() else "not writable")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the upgrade report there ({exc.strerror or exc})") from None
    return path

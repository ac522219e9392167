"""`umami-conformance`: run | recheck | validate | coverage | openapi | reference | docs | diff | upgrade-check |
cleanup | server

The composition root: it drives the runner (`conformance`) and the docs (`docgen`), which meet only in
results.json (`umami_results`) and never import each other."""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import umami_results
from conformance import __version__, options, server
from conformance.errors import ConformanceError, ExitCode, ServerSetupError, UsageError
from conformance.options import cli_flags
from umami_conformance import upgrade

if TYPE_CHECKING:
    from conformance.cli_adapter import Suite
    from conformance.validation import ValidationCache

INTERRUPTED = 130
PARTIAL = "partial"  # where the reports of a run that did not finish go, beside the last complete ones


def _report_args(p: argparse.ArgumentParser, out: str) -> None:
    """Where reports and docs go, and which items run (-k/-m, as pytest's)."""
    p.add_argument("--out", type=Path, default=Path(out), help=f"report directory (default {out}/)")
    p.add_argument("--docs", type=Path, default=None, help="docs directory (default <out>/docs)")
    p.add_argument("--no-docs", action="store_true", help="do not render docs")
    p.add_argument("--history", type=Path, default=None,
                   help="archive the run here and show history in the docs (default <out>/history)")
    p.add_argument("-k", dest="keyword", default=None,
                   help="select items whose id, spec file or marker contains a word (pytest's -k expressions)")
    p.add_argument("-m", dest="marker", default=None,
                   help="select items by marker (pytest's -m expressions): the areas, negative, discovery")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="the summary lists every known difference (default: a count per finding class)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="umami-conformance",
                                     description="Conformance tests and docs for the Umami REST API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance suite and write reports (+ docs)")
    options.add_to_cli(run, "run")
    _report_args(run, "reports")
    run.add_argument("--max-time", type=float, default=None,
                     help="stop the run after this many seconds (the sandbox is still cleaned up)")

    recheck = sub.add_parser("recheck", help="check recordings (run --record) against the current specs, offline")
    recheck.add_argument("replay", type=Path, nargs="+", metavar="FILE.har",
                         help="HAR recordings; later files answer what earlier ones lack (by route and role)")
    options.add_to_cli(recheck, "recheck")
    _report_args(recheck, "reports/recheck")

    validate = sub.add_parser("validate", help="check the spec files alone (no server)")
    validate.add_argument("--specs", type=Path, default=None)

    cov = sub.add_parser("coverage", help="specified/total per reference (v1 doc, v2 doc, v3 contract)")
    cov.add_argument("--specs", type=Path, default=None)
    cov.add_argument("--missing", action="store_true", help="list every operation without a spec")

    oas = sub.add_parser("openapi", help="an OpenAPI 3.1 document of one Umami release, built from the specs")
    oas.add_argument("--umami-version", dest="version", default=None, metavar="V",
                     help="the Umami release (default: the newest of the route inventory)")
    oas.add_argument("--specs", type=Path, default=None)
    oas.add_argument("--out", type=Path, default=None,
                     help="write it here (YAML when the name ends in .yaml or .yml; default: standard output)")

    ref = sub.add_parser("reference", help="the cross-release API reference (Markdown) from the specs and the "
                         "rechecks of recordings of real servers")
    ref.add_argument("recordings", type=Path, nargs="*", metavar="FILE.har",
                     help="recordings of real servers, one release each (run --record), rechecked in turn")
    ref.add_argument("--results", type=Path, nargs="*", default=[], metavar="results.json",
                     help="results files of observed releases, beside (or instead of) recordings")
    ref.add_argument("--out", type=Path, default=Path("docs/api"), help="the reference's directory (docs/api/)")
    ref.add_argument("--json", type=Path, default=None, help="also write the specs' part (reference.json) here")
    ref.add_argument("--specs", type=Path, default=None)

    docs = sub.add_parser("docs", help="render Markdown docs from results.json")
    docs.add_argument("results", type=Path, nargs="?", default=Path("reports/results.json"))
    docs.add_argument("--out", type=Path, default=Path("docs"))
    docs.add_argument("--history", type=Path, default=None,
                      help="archive of earlier runs (default: history/ beside the results file)")
    docs.add_argument("--markers", type=Path, nargs="*", default=[],
                      help="Markdown files whose <!--status:...--> and <!--table:...--> blocks are updated")

    diff = sub.add_parser("diff", help="upgrade check: compare two results.json files")
    diff.add_argument("old", type=Path)
    diff.add_argument("new", type=Path)
    diff.add_argument("--out", type=Path, default=None, help="write the whole Markdown report here (the terminal then gets its first screen)")
    diff.add_argument("--json", type=Path, default=None, help="write the changes as JSON here (for machines)")

    upgrade.add_parser(sub)

    cleanup = sub.add_parser("cleanup", help="remove leftovers of killed runs (objects named with a run prefix)")
    options.add_to_cli(cleanup, "cleanup")
    cleanup.add_argument("--prefix", default=None, help="only this run prefix (default: every ucf-<time>- prefix)")
    cleanup.add_argument("--out", type=Path, default=Path("reports"), help="where runs left their ledgers")

    srv = sub.add_parser("server", help="the local real Umami + PostgreSQL")
    srv_sub = srv.add_subparsers(dest="action", required=True)
    start = srv_sub.add_parser("start", help="install if needed, start, print the URL")
    start.add_argument("--fresh", action="store_true", help="restart with a new empty database")
    srv_sub.add_parser("stop", help="stop Umami and PostgreSQL")
    srv_sub.add_parser("status", help="print URL, version and memory of the running server")
    return parser


def main(argv: list[str] | None = None, load: Callable[[Path], Any] | None = None,
         cache: ValidationCache | None = None) -> int:
    """`load`: how spec directories are loaded (default `conformance.loader.load_specs` with `cache`; a caller that
    runs many commands in one process may pass one that keeps what it loaded). `cache`: what passed validation
    (default `ValidationCache.default()`, kept across runs)."""
    from conformance.loader import load_specs
    from conformance.validation import ValidationCache
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # an environment variable the parser reads for a default
        print(f"umami-conformance: error: {exc}", file=sys.stderr)
        return int(ExitCode.USAGE)
    args.cache = cache if cache is not None else ValidationCache.default()
    args.load_specs = load or functools.partial(load_specs, cache=args.cache)
    try:
        return int(COMMANDS[args.command](args))
    except umami_results.ResultsError as exc:
        print(f"umami-conformance: error: {exc}", file=sys.stderr)
        return int(ExitCode.USAGE)
    except ConformanceError as exc:
        print(f"umami-conformance: error: {exc}", file=sys.stderr)
        if isinstance(exc, ServerSetupError):
            print("hint: point --url at a running Umami server instead (and --username/--password)",
                  file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("umami-conformance: interrupted", file=sys.stderr)
        return INTERRUPTED


def _specs_dir(args: argparse.Namespace) -> Path:
    from conformance.loader import DEFAULT_SPECS
    return (args.specs or DEFAULT_SPECS).resolve()


def cmd_validate(args: argparse.Namespace) -> int:
    from conformance.known import load_known
    specs = args.load_specs(_specs_dir(args))
    known = load_known(specs.root, args.cache)
    n = len(specs.endpoints)
    cases = sum(len(e.cases) for e in specs.endpoints)
    print(f"{specs.root}: {len(specs.areas)} areas, {n} endpoints, {cases} cases, "
          f"{len(known)} known differences: valid")
    return ExitCode.OK


def cmd_coverage(args: argparse.Namespace) -> int:
    from conformance.coverage import coverage
    for c in coverage(args.load_specs(_specs_dir(args)), args.cache):
        print(f"{c.name}: {c.specified}/{c.total} ({c.percent:.0f} %) {c.title}")
        if args.missing:
            for op in c.missing:
                print(f"  missing: {op}")
    return ExitCode.OK


def cmd_openapi(args: argparse.Namespace) -> int:
    from conformance import openapi
    from conformance.known import load_known
    specs = args.load_specs(_specs_dir(args))
    version = args.version or openapi.default_version(specs)
    doc = openapi.build(specs, version, load_known(specs.root, args.cache))
    text = openapi.dumps(doc, yaml_format=bool(args.out and args.out.suffix in (".yaml", ".yml")))
    if args.out is None:
        print(text, end="")
        return ExitCode.OK
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: OpenAPI 3.1 for Umami {version}, {len(doc['paths'])} paths, "
          f"{sum(len(item) for item in doc['paths'].values())} operations", file=sys.stderr)
    return ExitCode.OK


def _local_server() -> server.ServerInfo:
    info = server.status()
    if info:
        return info
    print("no --url given: starting the local real Umami (umami-conformance server start)", file=sys.stderr)
    return server.start()


def cmd_run(args: argparse.Namespace) -> int:
    return _run(args)[0]


def _run(args: argparse.Namespace) -> tuple[int, dict[str, Any] | None]:
    """`run`: against `--url`, or the local server; the exit code and the results published (None: none)."""
    values = vars(args)
    if not args.url:
        local = _local_server()
        values = {**values, "url": local.url, "user_username": local.user_username,
                  "user_password": local.user_password, "viewer_username": local.viewer_username,
                  "viewer_password": local.viewer_password}
    return _suite(args, values)


def cmd_recheck(args: argparse.Namespace) -> int:
    """The checks of the current specs against recordings, offline: the same engine and artefacts as `run`."""
    for path in args.replay:
        if not path.is_file():
            raise UsageError(f"{path}: no such recording")
    args.max_time = None
    return _suite(args, vars(args))[0]


def _suite(args: argparse.Namespace, values: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """Run the suite into a staging directory; only a run that produced results replaces the reports in `--out`
    (and the docs, and the history). The exit code, and the results published (None: none)."""
    from conformance.known import load_known
    from conformance.loader import DEFAULT_SPECS
    from conformance.options import Options
    from conformance.cli_adapter import run_suite
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    try:
        run_options = Options.from_values({**values, "results": staging / "results.json", "ledger_dir": out},
                                          DEFAULT_SPECS)
        specs = args.load_specs(run_options.specs_dir)
        load_known(specs.root, args.cache)  # spec errors stop the run before any request
        gc.freeze()  # the specs live as long as the run: the collector need not walk them again and again
        if run_options.contract:
            from conformance.contract import Contract
            Contract.load(run_options.contract)
        if run_options.target.read_only and not run_options.website_id:
            print("note: --read-only without --website-id: write endpoints are not checked (no writes are sent), "
                  "and items that read one website are skipped (there is no sandbox website to read); pass "
                  "--website-id ID of an existing website to check those", file=sys.stderr)
        with Deadline(args.max_time) as deadline:
            suite = run_suite(run_options, specs, args.keyword, args.marker, args.quiet, staging / "junit.xml",
                              verbose=args.verbose, cache=args.cache)
        return _outcome(args, suite, deadline, out, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _outcome(args: argparse.Namespace, suite: Suite, deadline: Deadline, out: Path,
             staging: Path) -> tuple[int, dict[str, Any] | None]:
    """Publish what the run produced, say how it ended; the exit code and the results published."""
    outcome = suite.outcome
    cleanup = f"; {outcome.cleanup}" if outcome.cleanup else ""
    published = outcome.not_written is None and (staging / "results.json").exists()
    complete = not deadline.expired and not suite.interrupted and outcome.stopped is None
    # A run that did not finish never replaces the last complete reports: its own go to <out>/partial/.
    target = out if complete else out / PARTIAL
    results = _publish(args, target, staging, docs=complete and not outcome.empty) if published else None
    if results is not None and complete:
        shutil.rmtree(out / PARTIAL, ignore_errors=True)  # an older partial run's reports are history now
    result, message = ExitCode.DRIFT if suite.failed else ExitCode.OK, ""
    if not suite.selected:
        result, message = ExitCode.USAGE, "error: no spec items selected (check -k/-m)"
    elif deadline.expired:
        result, message = ExitCode.TIMED_OUT, (f"error: the run exceeded --max-time {args.max_time:g}s and was "
                                               f"stopped{cleanup}")
    elif outcome.stopped is not None:
        result, message = outcome.stopped.exit_code, f"error: {cli_flags(str(outcome.stopped))}{cleanup}"
    elif suite.interrupted:
        result, message = INTERRUPTED, f"interrupted{cleanup}"
    elif outcome.empty:
        result, message = ExitCode.USAGE, f"error: {cli_flags(outcome.empty)}"
    elif result == ExitCode.OK and results and results["summary"]["outcomes"].get("unavailable"):
        result = ExitCode.UNAVAILABLE  # no drift, but transient failures left items unchecked
    if message:
        print(f"umami-conformance: {message}", file=sys.stderr)
    if not published:
        print(f"umami-conformance: the reports in {out} are left as they were: this run produced no results",
              file=sys.stderr)
    elif not complete:
        print(f"umami-conformance: the run did not finish: its reports are in {out / PARTIAL}; the reports of the "
              f"last complete run in {out} are left as they were", file=sys.stderr)
    if suite.selected:
        sys.stderr.flush()
        print(f"umami-conformance: {_verdict(results, suite, deadline.expired)}", flush=True)
    return result, results


def _verdict(results: dict[str, Any] | None, suite: Suite, expired: bool) -> str:
    """The run's verdict, said last: results.json's, or for a run that wrote none, what stopped it."""
    if results is not None:
        return results["verdict"]["text"]
    if suite.outcome.stopped is not None or suite.interrupted or expired:
        why = "the run exceeded --max-time" if expired else "interrupted" if suite.interrupted else "stopped"
        return f"incomplete: {why} before any item ran"
    return f"nothing tested: {suite.outcome.empty or 'no item ran'}"


def _publish(args: argparse.Namespace, out: Path, staging: Path, docs: bool) -> dict[str, Any]:
    """Move the staged reports into `out`; for a complete run also archive it and render the docs. The docs
    are rendered beside their directory first, then moved in, so a failure leaves the old ones whole.
    Returns the results published."""
    from docgen.history import archive
    from docgen.render import EXAMPLES, render_docs
    from docgen.report import render_report
    results = _load(staging / "results.json")
    render_report(results, staging / "report.html")
    rendered: list[tuple[Path, Path]] = []
    docs_dir = args.docs or out / "docs"
    history = args.history or out / "history"
    docs_tmp = None
    if docs:
        archive(results, history)
    if docs and not args.no_docs:
        docs_dir.parent.mkdir(parents=True, exist_ok=True)
        docs_tmp = Path(tempfile.mkdtemp(prefix=f".{docs_dir.name}-", dir=docs_dir.parent))
    try:
        if docs_tmp is not None:
            rendered = [(path, docs_dir / path.relative_to(docs_tmp))
                        for path in render_docs(results, docs_tmp, history, docs_dir / EXAMPLES)]
        out.mkdir(parents=True, exist_ok=True)  # <out>/partial/ for a run that did not finish
        for name in ("results.json", "junit.xml", "report.html"):
            if (staging / name).exists():
                os.replace(staging / name, out / name)
        for new, target in rendered:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new, target)
    finally:
        if docs_tmp is not None:
            shutil.rmtree(docs_tmp, ignore_errors=True)
    print(f"reports: {out}/results.json, junit.xml, report.html", file=sys.stderr)
    if rendered:
        print(f"docs: {docs_dir}/index.md", file=sys.stderr)
    elif not docs and not args.no_docs:
        print(f"docs: {docs_dir} not updated (the run did not finish)", file=sys.stderr)
    return results


class RunTimeout(KeyboardInterrupt):
    """Raised by the --max-time alarm; pytest treats it like Ctrl-C, so cleanup still runs."""


class Deadline:
    """Context manager: raise RunTimeout in the main thread after `seconds` (None: never); `expired` tells."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds, self.expired = seconds, False

    def _fire(self, signum: int, frame: object) -> None:
        self.expired = True
        raise RunTimeout

    def __enter__(self) -> Deadline:
        if self.seconds:
            signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seconds:
            signal.setitimer(signal.ITIMER_REAL, 0)


def _load(path: Path, strict: bool = True) -> dict[str, Any]:
    return umami_results.load(path, strict=strict)


def _results_file(path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"{path} not found (run `umami-conformance run` first)")
    return path


def cmd_reference(args: argparse.Namespace) -> int:
    from umami_conformance.reference import make_reference
    return make_reference(args, lambda argv: main(argv, load=args.load_specs, cache=args.cache))


def cmd_docs(args: argparse.Namespace) -> int:
    from docgen.render import render_docs, update_markers
    results = _results_file(args.results)
    history = args.history or results.parent / "history"
    written = render_docs(results, args.out, history)
    print(f"{args.out}: {len(written)} files")
    for markdown in args.markers:
        link = os.path.relpath(args.out, markdown.parent) + "/"
        updated, problems = update_markers(markdown, results, link)
        print(f"{markdown}: {updated} marker block(s) updated")
        for problem in problems:
            print(f"umami-conformance: warning: {problem}", file=sys.stderr)
    return ExitCode.OK


def cmd_diff(args: argparse.Namespace) -> int:
    from docgen.diff import diff_results
    from docgen.upgrade_report import diff_json, first_screen, render_diff
    old, new = _load(_results_file(args.old), strict=False), _load(_results_file(args.new), strict=False)
    diff = diff_results(old, new)
    text = render_diff(old, new, diff)
    print(first_screen(text, args.out) if args.out else text, end="")  # the whole report goes to --out
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(diff_json(old, new, diff), encoding="utf-8")
    return ExitCode.DRIFT if diff.breaking else ExitCode.OK


def cmd_upgrade_check(args: argparse.Namespace) -> int:
    """`run` (this module's), then the diff against the shipped results of `--to` (upgrade.py)."""
    return upgrade.check(args, _run)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from conformance.cleanup import find_leftovers, remove, remove_kept, write_ledger
    from conformance.client import Target, UmamiClient
    from conformance.objects import Created
    local = None if args.url else server.status()
    url = args.url or (local.url if local else None)
    if not url:
        print("umami-conformance: error: no --url given and no local server running", file=sys.stderr)
        return ExitCode.USAGE
    password = args.password
    client = UmamiClient(Target(url=url, username=args.username, password=password, timeout=args.timeout,
                                retries=args.retries, retry_wait=args.retry_wait))
    try:
        client.probe()
        admin = client.login(args.username, password)
        ledgers = {}
        for ledger in sorted(args.out.glob("sandbox-ledger-*.json")):
            try:
                data = json.loads(ledger.read_text())
            except (OSError, ValueError) as exc:
                print(f"umami-conformance: warning: ledger {ledger} is unreadable ({exc.__class__.__name__}); "
                      "its objects are found by their run prefix", file=sys.stderr)
                continue
            if data.get("url") == url and (not args.prefix or data.get("prefix") == args.prefix):
                ledgers[ledger] = data
        # The ledgers' objects are asked by id: an orphaned website (no user, no team) is in no list.
        found = find_leftovers(client, admin, args.prefix,
                               [Created(**o) for data in ledgers.values() for o in data["created"]])
        objects = [o for o in found if not o.kept]
        residue = remove(client, admin, objects)
        unkept, kept = remove_kept(client, admin, [o for o in found if o.kept])
        remaining = {r["id"] for r in residue}
        for ledger, data in ledgers.items():  # a ledger lists only what remains
            remains = [Created(**o) for o in data["created"] if o["id"] in remaining]
            if remains:
                write_ledger(ledger, data["prefix"], url, remains)
            else:
                ledger.unlink()
    finally:
        client.close()
    print(f"found {len(objects)} object(s) with a run prefix; removed {len(objects) - len(residue)}")
    if unkept:
        print(f"removed {len(unkept)} object(s) of the kept set (ucf-keep-*): the server can delete them now")
    if kept:
        print(f"kept {len(kept)} object(s) of the kept set (ucf-keep-*), which this server cannot delete; "
              "every run reuses them:")
    for r in kept:
        print(f"  kept {r['kind']} {r['name']} ({r['id']}): {r['reason']}")
    for r in residue:
        print(f"  could not remove {r['kind']} {r['name']} ({r['id']}): {r['reason']}")
    return ExitCode.DRIFT if residue else ExitCode.OK


def cmd_server(args: argparse.Namespace) -> int:
    if args.action == "start":
        info = server.start(fresh=args.fresh)
        print(info.url)
        return ExitCode.OK
    if args.action == "stop":
        print("stopped" if server.stop() else "not running")
        return ExitCode.OK
    info = server.status()
    if not info:
        print("not running")
        return ExitCode.SERVER
    print(f"{info.url} umami {info.version} pid {info.pid} database {info.database} "
          f"memory {server.memory_rss_mb(info.pid):.0f} MiB (Umami process tree)")
    return ExitCode.OK


COMMANDS = {"run": cmd_run, "recheck": cmd_recheck,
            "validate": cmd_validate, "openapi": cmd_openapi, "coverage": cmd_coverage, "docs": cmd_docs,
            "reference": cmd_reference, "diff": cmd_diff, "upgrade-check": cmd_upgrade_check,
            "cleanup": cmd_cleanup, "server": cmd_server}

if __name__ == "__main__":
    sys.exit(main())

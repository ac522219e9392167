"""What a run says on the terminal: the details of a failed item and the "Umami conformance" summary, which the
CLI's adapter (cli_adapter.py) and the pytest plugin (plugin.py) print the same; and the CLI's console, a handler
of the session's events: a line of marks per spec file as items finish, then the failures and the summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from conformance import __version__
from conformance.checks import class_rank
from conformance.events import Event, ItemFinished, ItemsDone, SessionFinished, SessionOutcome
from conformance.execute import READ_ONLY_NO_WEBSITE, skip_group
from conformance.items import ItemResult
from conformance.known import stale
from conformance.session import Session
from umami_results.vocabulary import FINDING_CLASSES, Kind, Outcome, SkipCode

ROLE_ENV = {"user": "UMAMI_USER", "view-only": "UMAMI_VIEWER"}  # existing users for the roles (options.py)
Line = tuple[str, str]  # text, style: "" or any of "red", "yellow", "bold" joined by spaces
# How each outcome counts: passed (.), failed (F: open findings or a tool error), skipped (s: also unavailable).
MARK = {Outcome.PASSED: ".", Outcome.PASSED_NO_SCHEMA: ".", Outcome.KNOWN: ".", Outcome.FAILED: "F",
        Outcome.ERROR: "F", Outcome.SKIPPED: "s", Outcome.UNAVAILABLE: "s"}
PROGRESS_WIDTH = 80


def failure_lines(result: ItemResult) -> list[str]:
    """A failed item: its findings that are not known differences, the request, and the case in its spec file;
    or, for a tool error, what failed."""
    check = result.item
    ep, case = check.endpoint, check.case
    where = f"{ep.id} as {check.role}, case {case.name!r}"
    if result.outcome is Outcome.ERROR:
        return [f"{where}: the tool failed: {result.reason}"]
    findings = result.open_findings
    lines = [f"{where} ({ep.file.name}:{case.line})"]
    for f in findings:
        lines.append(f"  [{f.cls}] {f.json_path}{f' ({f.count} items)' if f.count > 1 else ''}: "
                     f"expected {f.expected!r}, actual {f.actual!r}"
                     f" - {f.message}" + (f" (contract: {f.contract})" if f.contract else ""))
    if findings:
        lines.append(f"  request: {findings[0].curl}")
    lines.extend(_source_lines(ep.file, case.line))
    return lines


def _source_lines(path: Path, line: int, count: int = 6) -> list[str]:
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [f"  {path.name}:{n:>4} | {lines[n - 1]}" for n in range(line, min(line + count, len(lines) + 1))]


def summary_lines(session: Session, outcome: SessionOutcome, say: Callable[[str], str] = str,
                  verbose: bool = False) -> Iterator[Line]:
    """The summary after the items: server and version, outcomes, transient failures, tool errors, skips by
    reason, findings by class (security first), known differences (a count per class; `verbose`: each one),
    stale entries, the kept set, residue and the cleanup. `say` rewrites option names (the CLI's flags instead
    of pytest's --umami-* options)."""
    results: list[ItemResult] = session.results
    findings = [(r, f) for r in results for f in r.findings]
    detected = session.detected
    yield (f"server {session.options.target.url} - Umami {detected.release if detected else 'unknown'} "
           f"({detected.source if detected else 'not detected'}); tool {__version__}"), ""
    for part, why in (session.sandbox.seeded.get("skipped", {}) if session.sandbox else {}).items():
        yield f"seeded without {part}: {why}", "yellow"
    outcomes = Counter(r.outcome.value for r in results)
    yield "items: " + (", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "none ran"), ""
    unavailable = [r for r in results if r.outcome is Outcome.UNAVAILABLE]
    if session.client.retries or unavailable:
        yield (f"transient failures (502/503/504, dropped connections, timeouts; not drift): "
               f"{session.client.retries} request(s) retried, {len(unavailable)} item(s) unavailable after "
               f"{session.options.target.retries} retries"), "yellow"
        for r in unavailable:
            yield f"  {r.id}: {r.reason}", ""
    for r in (r for r in results if r.outcome is Outcome.ERROR):
        yield f"  error {r.id}: {r.reason}", "red"
    skips = [r.skip for r in results if r.skip]
    for reason, n in sorted(Counter(map(skip_group, skips)).items(), key=lambda kv: (-kv[1], kv[0])):
        yield f"  skipped {n}: {say(reason)}", ""
    given = {"user": "user" in session.options.existing_users, "view-only": "viewer" in session.options.existing_users}
    lacking = sorted({r.item.role for r in results if r.skip and (r.skip.code is SkipCode.NO_CREDENTIAL or (
        r.skip.code is SkipCode.ROLE_UNAVAILABLE and r.item.role in ROLE_ENV and not given[r.item.role]))})
    if lacking:  # a server that cannot create users has these roles only through existing users
        how = [f"{ROLE_ENV[role]}_USERNAME and {ROLE_ENV[role]}_PASSWORD" for role in lacking if role in ROLE_ENV]
        yield ("roles without credentials in this run: " + ", ".join(lacking)
               + (f"; give existing users with {' and '.join(how)}" if how else "")), "yellow"
    no_website = sum(skip.code is SkipCode.NO_WEBSITE for skip in skips)
    if session.read_only and not session.options.website_id and no_website:
        yield say(f"{READ_ONLY_NO_WEBSITE}: {no_website} items that read one website were "
                  "skipped; pass --umami-website-id with the id of an existing website to check them"), "yellow"
    for cls in FINDING_CLASSES:
        # Security comes first, known ones included (marked as known): a reviewed leak is still a leak.
        group = [(r, f) for r, f in findings if f.cls == cls and (cls == "security" or not f.known)]
        if group:
            opened = sum(1 for _, f in group if not f.known)
            yield (f"{cls} ({opened}{f', known {len(group) - opened}' if opened < len(group) else ''}): "
                   f"{FINDING_CLASSES[cls]}"), "red bold" if opened else "yellow bold"
            for r, f in group:
                verdict = f" ({f.contract})" if f.contract else ""
                times = f" ({f.count} items)" if f.count > 1 else ""
                known = " [known]" if f.known else ""
                yield (f"  {r.id} {f.json_path}{times}: expected {f.expected!r}, actual {f.actual!r}"
                       f"{verdict}{known}"), ""
    known = Counter((r.item.endpoint.id, f.cls, f.known) for r, f in findings if f.known)
    if known and verbose:
        yield (f"known differences ({sum(known.values())} findings), accepted in "
               "specs/known-differences.yaml:"), "yellow"
        for (endpoint, cls, reason), n in sorted(known.items(), key=lambda kv: (class_rank(kv[0][1]), kv[0])):
            yield f"  {endpoint} [{cls}] x{n}: {reason}", ""
    elif known:
        by_class = Counter(cls for (_, cls, _), n in known.items() for _ in range(n))
        yield (f"known differences: {sum(known.values())} findings accepted in specs/known-differences.yaml ("
               + ", ".join(f"{cls} {n}" for cls, n in sorted(by_class.items(), key=lambda kv: class_rank(kv[0])))
               + "); -v lists them"), "yellow"
    for entry in stale(session.known, [r.as_dict() for r in results], session.read_only, session.server_versions):
        yield f"stale known difference ({entry.describe()}, line {entry.line}): matched nothing", "yellow"
    kept = list(session.sandbox.kept.values()) if session.sandbox else []
    if kept:
        yield (f"kept set on this server, which cannot delete websites ({len(kept)} object(s), reused by every "
               "run whoever runs it, one per owner at most):"), "yellow"
        for k in kept:
            traffic = f", traffic {k['traffic']}" if "traffic" in k else ""
            note = f" ({k['note']})" if "note" in k else ""
            yield (f"  {k['kind']} {k['name']} ({k['id']}): {'reused' if k['reused'] else 'created'}{traffic}"
                   f"{note}"), ""
    if session.residue:
        yield f"could not remove {len(session.residue)} object(s) the run created:", "red"
        for r in session.residue:
            yield f"  {r['kind']} {r['name']} ({r['id']}): {r['reason']}", ""
    if outcome.cleanup:
        yield outcome.cleanup, "yellow" if session.residue else ""


def marks(results: list[ItemResult]) -> Counter[str]:
    """How many items failed (F), passed (.) and were skipped (s), as MARK tells them apart."""
    return Counter(MARK[r.outcome] for r in results)


class Progress:
    """One line per spec file, a mark per item (. passed, F failed, s skipped), the share done at the end."""

    def __init__(self, total: int, out: TextIO, quiet: bool) -> None:
        self.total, self.out, self.quiet = total, out, quiet
        self.done, self.file, self.width = 0, "", 0

    def add(self, result: ItemResult) -> None:
        self.done += 1
        if self.quiet:
            return
        name = result.item.endpoint.file.name
        if name != self.file or self.width >= PROGRESS_WIDTH:
            self.end_line()
            self.file = name
            self.out.write(name + " ")
            self.width = len(name) + 1
        self.out.write(MARK[result.outcome])
        self.width += 1

    def end_line(self) -> None:
        if self.width:
            self.out.write(" " * max(1, PROGRESS_WIDTH - self.width) + f"[{100 * self.done // self.total:>3}%]\n")
            self.out.flush()
        self.width = 0


class Console:
    """The CLI's terminal: the progress as items finish, then the failures, the summary and a line of counts.
    `say` rewrites option names (the CLI's flags)."""

    def __init__(self, total: int, out: TextIO, quiet: bool, say: Callable[[str], str] = str,
                 verbose: bool = False) -> None:
        self.progress, self.out, self.say, self.verbose = Progress(total, out, quiet), out, say, verbose

    def handle(self, event: Event) -> None:
        if isinstance(event, ItemFinished):
            self.progress.add(event.result)
        elif isinstance(event, ItemsDone):
            self.progress.end_line()
        elif isinstance(event, SessionFinished):
            self.report(event)

    def report(self, event: SessionFinished) -> None:
        out = self.out
        results = [r for r in event.session.results if r.item.kind is not Kind.SETUP]
        failures = [r for r in results if MARK[r.outcome] == "F"]
        if failures:
            print(" FAILURES ".center(PROGRESS_WIDTH, "="), file=out)
            for r in failures:
                print(f" {r.id} ".center(PROGRESS_WIDTH, "_"), file=out)
                print("\n".join(failure_lines(r)), file=out)
        print(" Umami conformance ".center(PROGRESS_WIDTH, "="), file=out)
        for text, _ in summary_lines(event.session, event.outcome, self.say, self.verbose):
            print(text, file=out)
        counted = Counter(r.outcome for r in results)  # the outcomes as results.json counts them
        shown = ", ".join(f"{counted[o]} {o.value}" for o in Outcome if counted[o]) or "no items"
        print(f" {shown} in {event.seconds:.2f}s ".center(PROGRESS_WIDTH, "="), file=out)
        out.flush()

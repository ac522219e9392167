"""The session's files, each a handler of its events (events.py): the HAR recording (--record), results.json, and
junit.xml (the CLI; under pytest, pytest's own --junitxml)."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from conformance.console import MARK, failure_lines, marks
from conformance.events import Event, SessionFinished, SessionStarted
from conformance.items import ItemResult
from conformance.results import write_results
from umami_results.vocabulary import OUT_OF_RELEASE, Kind, Outcome


class HarWriter:
    """Every exchange of the session as HAR 1.2, secrets redacted, once it finished (when it records)."""

    def handle(self, event: Event) -> None:
        if isinstance(event, SessionFinished) and event.session.client.recorder is not None:
            event.session.client.recorder.write(event.session.client.redactor)


class ResultsWriter:
    """results.json, when the session produced results (else the last good one stays as it was)."""

    def handle(self, event: Event) -> None:
        if isinstance(event, SessionFinished) and event.outcome.not_written is None:
            stopped = str(event.outcome.stopped) if event.outcome.stopped else None
            write_results(event.session, event.interrupted, stopped, event.selected)


class JUnitWriter:
    """junit.xml of the items (the set-up's drift is none), when any item ran."""

    def __init__(self, path: Path) -> None:
        self.path, self.timestamp = path, ""

    def handle(self, event: Event) -> None:
        if isinstance(event, SessionStarted):
            self.timestamp = event.timestamp
        elif isinstance(event, SessionFinished):
            # only this server's release: an item of another release is no test case here
            checked = [r for r in event.session.results if r.item.kind is not Kind.SETUP
                       and not (r.skip and r.skip.code in OUT_OF_RELEASE)]
            if checked:
                write_junit(self.path, checked, event.seconds, self.timestamp)


def write_junit(path: Path, results: list[ItemResult], wall: float, stamp: str) -> None:
    """JUnit XML as CI systems read it: one testcase per item (classname: its spec file), a failure with its
    findings, a skip with its reason, and the known differences of a passed item as properties."""
    counts = marks(results)
    root = ET.Element("testsuites", name="umami-conformance")
    suite = ET.SubElement(root, "testsuite", name="umami-conformance", errors="0", failures=str(counts["F"]),
                          skipped=str(counts["s"]), tests=str(len(results)), time=f"{wall:.3f}", timestamp=stamp,
                          hostname=socket.gethostname())
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.item.endpoint.file.name, name=r.id,
                             time=f"{r.duration:.3f}")
        if r.outcome is Outcome.KNOWN:
            properties = ET.SubElement(case, "properties")
            ET.SubElement(properties, "property", name="outcome", value="known")
            for f in r.findings:
                for name, value in (("finding_class", f.cls), ("json_path", f.json_path),
                                    ("known_reason", f.known)):
                    ET.SubElement(properties, "property", name=name, value=str(value))
        elif MARK[r.outcome] == "F":
            message = "the tool failed" if r.outcome is Outcome.ERROR else f"{len(r.open_findings)} finding(s)"
            ET.SubElement(case, "failure", message=message).text = "\n".join(failure_lines(r))
        elif MARK[r.outcome] == "s":
            reason = r.reason or "skipped"
            reason = f"unavailable: {reason}" if r.outcome is Outcome.UNAVAILABLE else reason
            ET.SubElement(case, "skipped", type="skipped", message=reason).text = reason
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)

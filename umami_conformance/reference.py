"""`umami-conformance reference`: the cross-release API reference, composed of the specs' part (conformance.reference),
the rechecks of recordings of real servers (one results.json per observed release) and the Markdown (docgen.reference).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from packaging.version import Version

import umami_results
from conformance import reference
from conformance.errors import ExitCode, UsageError
from conformance.known import load_known
from conformance.loader import DEFAULT_SPECS
from docgen.reference import render_reference


def make_reference(args: argparse.Namespace, cli: Callable[[list[str]], int]) -> int:
    """Write the reference into `args.out`. `cli`: the command line in this process, for `recheck FILE --out DIR
    --no-docs` of each recording (what it says is shown only when it does not exit 0)."""
    specs = args.load_specs((args.specs or DEFAULT_SPECS).resolve())
    doc = reference.build(specs, load_known(specs.root, args.cache))
    umami_results.validate_reference(doc)
    for path in args.results:
        if not path.is_file():
            raise UsageError(f"{path} not found")
    observed = [umami_results.load(path) for path in args.results]
    with tempfile.TemporaryDirectory(prefix="umami-reference-") as tmp:
        for i, recording in enumerate(args.recordings):
            out = Path(tmp) / str(i)
            said = io.StringIO()
            with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
                code = cli(["recheck", str(recording), "--out", str(out), "--no-docs", "-q",
                            *(["--specs", str(args.specs)] if args.specs else [])])
            if code != ExitCode.OK:  # drift, or no results: what the recheck said tells why
                print(said.getvalue(), end="", file=sys.stderr)
            if not (out / "results.json").exists():
                raise UsageError(f"{recording}: its recheck wrote no results (exit {code})")
            observed.append(umami_results.load(out / "results.json"))
            print(f"{recording}: Umami {observed[-1]['server']['version']}, recheck exit {code}", file=sys.stderr)
    versions = [r["server"]["version"] for r in observed]
    if len(set(versions)) != len(versions):
        raise UsageError(f"two observed runs of one release ({', '.join(sorted(versions))}): give one per release")
    written = render_reference(doc, observed, args.out)
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(written)} pages ({len(doc['endpoints'])} endpoints, {len(doc['releases'])} releases; "
          f"observed {', '.join(sorted(versions, key=Version)) or 'none'})", file=sys.stderr)
    return ExitCode.OK

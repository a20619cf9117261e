"""`kinesis bench`: performance of every layer against baselines measured in the same run.

Each section lives in its own module of this package and runs in its own child process (so that
thread settings, imported libraries and peak memory of one section do not leak into the next). A
section module exposes::

    measure(quick: bool) -> dict      # the section's figures (JSON-able), medians over repeats
    tables(results: dict) -> list     # rich Tables of those figures for the console

Every ratio divides two numbers of the same run. The results are written to ``bench/results.json``
(see docs/performance.md for the shape and the targets); ``--only`` re-runs some sections and keeps
the others of an existing file.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

#: Section name (the key in results.json) -> module, in the order they run.
SECTIONS = {
    "imitation_env": "kinesis.bench.imitation_env",
    "batched": "kinesis.bench.batched",
    "policy_latency_ms": "kinesis.bench.policy_latency",
    "ros": "kinesis.bench.ros",
    "training": "kinesis.bench.training",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="measure throughput; print a table and write JSON", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"), help="JSON output (default bench/results.json)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (for smoke tests)")
    parser.add_argument("--only", default=None, metavar="SECTIONS",
                        help=f"comma-separated sections to run, keeping the others of --out ({', '.join(SECTIONS)})")
    parser.set_defaults(func=run)


def selected_sections(only: str | None) -> list[str]:
    """Section names of ``--only`` (all when None); ValueError naming unknown ones."""
    if only is None:
        return list(SECTIONS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise ValueError(f"--only: unknown sections {unknown}; known: {list(SECTIONS)}")
    return names


def run(args: argparse.Namespace) -> int:
    from kinesis.bench.common import machine_info, versions

    names = selected_sections(args.only)
    results: dict = {}
    if args.only is not None and args.out.is_file():
        results = json.loads(args.out.read_text())
    results.update({"machine": machine_info(), "versions": versions()})
    for name in names:
        print(f"== bench section {name} ==", flush=True)
        section_json = args.out.with_name(f".{args.out.stem}.{name}.json")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "kinesis.bench.section", name, str(section_json)] + (["--quick"] if args.quick else [])
        completed = subprocess.run(command)
        if completed.returncode != 0:
            print(f"kinesis bench: section {name} failed (exit {completed.returncode})", file=sys.stderr)
            return completed.returncode
        results[name] = json.loads(section_json.read_text())
        section_json.unlink()
        partial = args.out.with_suffix(".partial")
        partial.write_text(json.dumps(results, indent=2))
        partial.replace(args.out)
    print(f"results: {args.out}")
    return 0

"""Run one bench section in this process: ``python -m kinesis.bench.section NAME OUT.json [--quick]``."""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path


def main() -> None:
    from rich.console import Console

    from kinesis.bench import SECTIONS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(SECTIONS))
    parser.add_argument("out", type=Path)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    module = importlib.import_module(SECTIONS[args.name])
    results = module.measure(args.quick)
    console = Console(width=150)
    for table in module.tables(results):
        console.print(table)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

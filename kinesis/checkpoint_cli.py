"""`kinesis checkpoint info PATH`: what a KINESIS `model.pth` holds."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("checkpoint", help="inspect policy checkpoints (model.pth)")
    commands = parser.add_subparsers(dest="checkpoint_command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="print kind (Gaussian, Lattice, MoE), sizes, epoch and samples of a checkpoint")
    info.add_argument("path", type=Path, help="a model.pth in the original KINESIS layout, or kinesis:NAME (kinesis assets fetch)")
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from kinesis_tasks.assets import resolve_checkpoint
    from kinesis_training import describe

    args.path = resolve_checkpoint(args.path)  # kinesis:NAME -> the file of `kinesis assets fetch`
    if not args.path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {args.path}")
    print(describe(args.path))
    return 0

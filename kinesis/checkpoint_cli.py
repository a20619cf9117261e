"""`kinesis checkpoint info PATH`: what a KINESIS `model.pth` holds; `kinesis checkpoint widen`: more hidden units."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("checkpoint", help="inspect policy checkpoints (model.pth)")
    commands = parser.add_subparsers(dest="checkpoint_command", metavar="COMMAND", required=True)
    info = commands.add_parser("info", help="print kind (Gaussian, Lattice, MoE), sizes, epoch and samples of a checkpoint")
    info.add_argument("path", type=Path, help="a model.pth in the original KINESIS layout, or kinesis:NAME (kinesis assets fetch)")
    info.set_defaults(func=run_info)
    widen = commands.add_parser(
        "widen", help="widen a checkpoint's hidden layers without changing what it computes",
        description="Write SOURCE with hidden widths --units (policy and critic, each at least the source's): the new "
                    "units get fresh incoming and zero outgoing weights, so the mean action, the value and the "
                    "exploration noise are unchanged, and a fine-tune (kinesis train expert --init-from OUTPUT) "
                    "starts from the source's behaviour with more capacity (docs/training.md).")
    widen.add_argument("source", type=Path, help="a Gaussian or Lattice model.pth")
    widen.add_argument("output", type=Path, help="the widened model.pth to write")
    widen.add_argument("--units", required=True, type=_widths,
                       help="hidden widths, comma-separated, as many as the source has (e.g. 512,512)")
    widen.add_argument("--seed", type=int, default=0, help="seed of the new units' incoming weights (default 0)")
    widen.set_defaults(func=run_widen)


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(u) for u in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers expected, got {text!r}") from None


def run_info(args: argparse.Namespace) -> int:
    from kinesis_tasks.assets import resolve_checkpoint
    from kinesis_training import describe

    args.path = resolve_checkpoint(args.path)  # kinesis:NAME -> the file of `kinesis assets fetch`
    if not args.path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {args.path}")
    print(describe(args.path))
    return 0


def run_widen(args: argparse.Namespace) -> int:
    from kinesis_training.widening import widen_checkpoint

    widen_checkpoint(args.source, args.output, args.units, seed=args.seed)
    print(f"wrote {args.output}: hidden widths {list(args.units)}, the same policy and value as {args.source}")
    return 0

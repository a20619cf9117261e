"""The `kinesis` command line.

Each subcommand lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with
the parsed arguments, returns an exit status). Modules import heavy packages
(torch, mujoco, rclpy) inside their functions so that ``kinesis --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in the order `--help` lists them.
SUBCOMMAND_MODULES = (
    "kinesis.demo_cli",
    "kinesis.motions_cli",
    "kinesis.eval_cli",
    "kinesis.view_cli",
    "kinesis.train_cli",
    "kinesis.checkpoint_cli",
    "kinesis.emg_cli",
    "kinesis.launch_cli",
    "kinesis.teleop",
    "kinesis.assets_cli",
    "kinesis.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kinesis",
        description="KINESIS: muscle-driven motor control learned by RL, as a ROS 2 stack.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError) as error:
        print(f"kinesis {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

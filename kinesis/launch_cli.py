"""`kinesis launch`: run a ROS 2 YAML launch file (the supported format: kinesis/launch_file.py).

NAME is a file of the repository's launch/ folder without `.launch.yaml` (locomotion,
text_to_motion, target_reach, directional, ball_kick), or a path. Arguments are name:=value;
the demo launch files take headless:=true|false, duration:=SECONDS (0 = until Ctrl-C) and
record:=FILE.mcap. Options go before NAME_OR_PATH. Ctrl-C stops every node (SIGINT, then
SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import argparse
import shlex
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("launch", help="run a ROS 2 YAML launch file (launch/*.launch.yaml)", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("launch_file", metavar="NAME_OR_PATH", help="launch file name (from launch/) or path")
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments")
    parser.add_argument("--show-args", action="store_true", help="list the launch arguments and exit")
    parser.add_argument("--print", dest="print_only", action="store_true", help="print the commands instead of running them")
    parser.add_argument("--sigint-timeout", type=float, default=5.0, help="seconds between SIGINT and SIGTERM when stopping (default 5)")
    parser.add_argument("--sigterm-timeout", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL when stopping (default 5)")


def run(args: argparse.Namespace) -> int:
    from kinesis import launch, launch_file

    path = launch_file.resolve_launch_file(args.launch_file)
    plan = launch_file.load_launch(path, launch_file.parse_launch_arguments(args.arguments))
    if args.show_args:
        for argument in plan.arguments.values():
            print(f"{argument.name}:={argument.value!r}  {argument.description}")
        return 0
    if args.print_only:
        for process in plan.processes:
            print(f"[{process.name}] {shlex.join(process.cmd)}")
        return 0
    return launch.run(plan, sigint_timeout=args.sigint_timeout, sigterm_timeout=args.sigterm_timeout)


def main(argv: list[str] | None = None) -> int:
    """``python -m kinesis.launch_cli NAME [name:=value ...]``: the subcommand on its own."""
    parser = argparse.ArgumentParser(prog="kinesis launch", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"kinesis launch: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

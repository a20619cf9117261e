"""Component container: several KINESIS nodes in one process, spun by one executor (ROS 2 composition).

    python -m kinesis_sim_node.component_container \\
        --load kinesis_sim_node.sim_node.SimNode -p clock:=lockstep \\
        --load kinesis_policy_node.policy_node.PolicyNode -r __node:=policy -p checkpoint:=model.pth \\
        [--ros-args ...]

Each ``--load PLUGIN`` names a node class (``module.Class``, an ``rclpy.node.Node`` taking ``cli_args``); the
arguments after it, up to the next ``--load`` or ``--ros-args``, are that node's own ROS arguments (``-p``,
``-r``, ``--params-file``), as the ``NodeOptions`` arguments of an rclcpp component are. A final
``--ros-args`` section applies to every node. The launch files' ``node_container`` and
``load_composable_node`` actions write this command line (``kinesis.launch_file``).

The nodes talk over their topics and services exactly as separate processes do; composition only drops
the process hop (no other process to wake for each message, warm caches): in lockstep the sim and policy
nodes run about 1.4x faster composed than as two processes (docs/performance.md, "ROS 2").
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable

from rclpy.node import Node

from kinesis_sim_node.spin import spin_nodes

LOAD = "--load"
ROS_ARGS = "--ros-args"


def parse_components(argv: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """``argv`` (without the program) -> ([(plugin, node ROS arguments)], ROS arguments for every node)."""
    split = argv.index(ROS_ARGS) if ROS_ARGS in argv else len(argv)
    own, shared = argv[:split], argv[split:]
    if not own or own[0] != LOAD:
        raise ValueError(f"expected {LOAD} PLUGIN [ROS ARGUMENTS] ... first, got {own[:1] or 'nothing'}")
    components: list[tuple[str, list[str]]] = []
    for item in own:
        if item == LOAD:
            components.append(("", []))
        elif not components[-1][0]:
            components[-1] = (item, [])
        else:
            components[-1][1].append(item)
    if not all(plugin for plugin, _ in components):
        raise ValueError(f"each {LOAD} needs a plugin (module.Class)")
    return components, shared


def load_plugin(path: str) -> type[Node]:
    """The node class ``module.Class`` names."""
    module_name, _, class_name = path.rpartition(".")
    try:
        plugin = getattr(importlib.import_module(module_name), class_name) if module_name else None
    except (ImportError, AttributeError):
        plugin = None
    if not (isinstance(plugin, type) and issubclass(plugin, Node)):
        raise ValueError(f"plugin {path!r} is not an rclpy Node class (module.Class, e.g. kinesis_sim_node.sim_node.SimNode)")
    return plugin


def main(args: list[str] | None = None) -> int:
    argv = sys.argv[1:] if args is None else args
    if {"-h", "--help"} & set(argv[: argv.index(ROS_ARGS) if ROS_ARGS in argv else len(argv)]):
        print(__doc__)
        return 0
    try:
        components, shared = parse_components(argv)
        makers: list[Callable[[], Node]] = [
            functools.partial(load_plugin(plugin), cli_args=[ROS_ARGS, *node_args]) for plugin, node_args in components
        ]
    except ValueError as error:
        print(f"component_container: error: {error}", file=sys.stderr)
        return 2
    return spin_nodes(makers, "component_container", ["component_container", *shared])


if __name__ == "__main__":
    raise SystemExit(main())

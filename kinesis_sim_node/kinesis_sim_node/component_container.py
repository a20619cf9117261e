"""Component container: several KINESIS nodes in one process, spun by one executor (ROS 2 composition).

    python -m kinesis_sim_node.component_container \\
        --load kinesis_sim_node.sim_node.SimNode -p clock:=lockstep \\
        --load kinesis_policy_node.policy_node.PolicyNode -r __node:=policy -p checkpoint:=model.pth \\
        [--ros-args -r __node:=control_container]

The container is a node itself (default name ``component_container``; the final ``--ros-args`` section is
its own) serving the ROS 2 container services ``~/_container/load_node``, ``~/_container/unload_node`` and
``~/_container/list_nodes`` (composition_interfaces), as rclcpp's ``component_container`` does, so
launch_ros (``node_container``, ``load_composable_node``) and ``ros2 component load`` can fill it.
``kinesis launch`` passes a launch file's nodes on the command line instead: each ``--load PLUGIN``
followed by that node's own ROS arguments (``-p``, ``-r``, ``--params-file``) up to the next ``--load``
or ``--ros-args`` (``kinesis.launch_file`` writes them).

A plugin is a node class written ``module.Class`` (an ``rclpy.node.Node`` that passes ``cli_args``,
``use_global_arguments`` and ``parameter_overrides`` on to ``Node``), and a load request's plugin must lie
in its package. As in rclcpp, components do not see the container's own arguments.

The nodes talk over their topics and services exactly as separate processes do; composition only drops
the process hop (no other process to wake for each message, warm caches): in lockstep the sim and policy
nodes run about 1.4x faster composed than as two processes (docs/performance.md, "ROS 2").
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from composition_interfaces.srv import ListNodes, LoadNode, UnloadNode
from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.parameter import Parameter

from kinesis_sim_node.spin import close_nodes, spin_nodes

LOAD = "--load"
ROS_ARGS = "--ros-args"


def parse_components(argv: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """``argv`` (without the program) -> ([(plugin, node ROS arguments)], the container's ROS arguments)."""
    split = argv.index(ROS_ARGS) if ROS_ARGS in argv else len(argv)
    own, shared = argv[:split], argv[split:]
    if own and own[0] != LOAD:
        raise ValueError(f"expected {LOAD} PLUGIN [ROS ARGUMENTS] ..., got {own[0]!r}")
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


class ContainerNode(Node):
    """Holds the component nodes, adds them to ``executor`` and serves the container services."""

    def __init__(self, executor: Executor, components: Sequence[tuple[str, list[str]]] = (), **kwargs) -> None:
        super().__init__("component_container", **kwargs)
        self.spinner = executor
        self.components: dict[int, Node] = {}
        self.last_id = 0
        try:
            for plugin, node_args in components:
                self.load(plugin, node_args)
        except Exception:
            self.close()
            raise
        self.create_service(LoadNode, "~/_container/load_node", self.on_load_node)
        self.create_service(UnloadNode, "~/_container/unload_node", self.on_unload_node)
        self.create_service(ListNodes, "~/_container/list_nodes", self.on_list_nodes)

    def load(self, plugin: str, node_args: list[str], parameters: Sequence[Parameter] = ()) -> tuple[int, Node]:
        """Build the node ``plugin`` with its ROS arguments and parameters, spin it: (unique id, node)."""
        node = load_plugin(plugin)(cli_args=[ROS_ARGS, *node_args], use_global_arguments=False,
                                   parameter_overrides=list(parameters))
        self.last_id += 1
        self.components[self.last_id] = node
        self.spinner.add_node(node)
        return self.last_id, node

    def on_load_node(self, request: LoadNode.Request, response: LoadNode.Response) -> LoadNode.Response:
        node_args = ["-r", f"__node:={request.node_name}"] if request.node_name else []
        if request.node_namespace:
            node_args += ["-r", f"__ns:=/{request.node_namespace.lstrip('/')}"]
        for rule in request.remap_rules:
            node_args += ["-r", rule]
        try:
            if not request.plugin_name.startswith(f"{request.package_name}."):
                raise ValueError(f"plugin {request.plugin_name!r} is not a class of package {request.package_name!r}"
                                 f" (write module.Class, e.g. {request.package_name}.module.Class)")
            parameters = [Parameter.from_parameter_msg(p) for p in request.parameters]
            unique_id, node = self.load(request.plugin_name, node_args, parameters)
        except Exception as error:  # a bad request is answered, never fatal to the container
            response.success, response.error_message = False, f"{type(error).__name__}: {error}"
            self.get_logger().error(f"could not load {request.plugin_name!r}: {response.error_message}")
            return response
        if request.log_level:
            node.get_logger().set_level(request.log_level)
        response.success, response.full_node_name, response.unique_id = True, node.get_fully_qualified_name(), unique_id
        self.get_logger().info(f"loaded {node.get_fully_qualified_name()} ({request.plugin_name}) as {unique_id}")
        return response

    def on_unload_node(self, request: UnloadNode.Request, response: UnloadNode.Response) -> UnloadNode.Response:
        node = self.components.pop(request.unique_id, None)
        if node is None:
            response.success, response.error_message = False, f"no node with unique id {request.unique_id}"
            return response
        self.spinner.remove_node(node)
        close_nodes([node])
        node.destroy_node()
        response.success = True
        return response

    def on_list_nodes(self, request: ListNodes.Request, response: ListNodes.Response) -> ListNodes.Response:
        response.unique_ids = list(self.components)
        response.full_node_names = [node.get_fully_qualified_name() for node in self.components.values()]
        return response

    def close(self) -> None:
        """Close every component (stops their threads)."""
        close_nodes(list(self.components.values()))


def main(args: list[str] | None = None) -> int:
    argv = sys.argv[1:] if args is None else args
    if {"-h", "--help"} & set(argv[: argv.index(ROS_ARGS) if ROS_ARGS in argv else len(argv)]):
        print(__doc__)
        return 0
    try:
        components, own = parse_components(argv)
        for plugin, _ in components:
            load_plugin(plugin)
    except ValueError as error:
        print(f"component_container: error: {error}", file=sys.stderr)
        return 2
    return spin_nodes(lambda executor: [ContainerNode(executor, components)], "component_container",
                      ["component_container", *own])


if __name__ == "__main__":
    raise SystemExit(main())

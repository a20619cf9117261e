"""The uniform `main` of every KINESIS node: init, build, spin, shut down quietly.

Executor: rclpy's ``EventsExecutor`` (a C++ event queue: about 80 us per message callback on the
2-core bench machine, against about 260 us for the ``SingleThreadedExecutor``, which rebuilds its
wait set in Python for every callback; docs/performance.md, "ROS 2"). ``KINESIS_ROS_EXECUTOR=single``
in the environment selects the SingleThreadedExecutor instead.

The node spins with ``spin_once(timeout)`` in a loop rather than ``spin()``: with rclpy 9.1.2 (Kilted
wheels) ``EventsExecutor.spin()`` was seen to keep the GIL and never return, and a shutdown requested
from inside a callback waits for the spin that runs it. So SIGINT and SIGTERM only set a flag, which
the loop reads between spins (at most SPIN_TIMEOUT_S later); then the executor is shut down and the node closed.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

EXECUTORS = {"events": EventsExecutor, "single": SingleThreadedExecutor}
SPIN_TIMEOUT_S = 0.1


def executor_name() -> str:
    """The executor ``spin_node`` runs the nodes with: environment KINESIS_ROS_EXECUTOR, default ``events``."""
    name = os.environ.get("KINESIS_ROS_EXECUTOR", "events")
    if name not in EXECUTORS:
        raise ValueError(f"KINESIS_ROS_EXECUTOR must be one of {sorted(EXECUTORS)}, got {name!r}")
    return name


def spin_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run a node until SIGINT, SIGTERM or shutdown; a bad parameter or file is one error line and status 2."""
    return spin_nodes(lambda executor: [make_node()], name, args)


def spin_nodes(build: Callable[[Executor], Sequence[Node]], name: str, args: list[str] | None = None) -> int:
    """Run the nodes ``build(executor)`` returns in this process with one executor, as ``spin_node``
    (a component container builds more nodes into that executor later)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    nodes: list[Node] = []
    try:
        with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
            try:
                executor = EXECUTORS[executor_name()]()
                nodes.extend(build(executor))
            except (ValueError, OSError) as error:  # say what is wrong, without a traceback
                print(f"{name}: error: {error}", file=sys.stderr)
                close_nodes(nodes)
                return 2
            gc.freeze()  # the start-up objects never die: later collections skip them (no long pauses)
            try:
                for node in nodes:
                    executor.add_node(node)
                while not stop.is_set() and rclpy.ok():
                    executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
            finally:
                executor.shutdown()
                close_nodes(nodes)
    except ExternalShutdownException:
        pass
    return 0


def close_nodes(nodes: Sequence[Node]) -> None:
    """Call each node's ``close`` (if it has one: nodes with threads stop them there)."""
    for node in nodes:
        getattr(node, "close", lambda: None)()

"""The uniform `main` of every KINESIS node: init, build, spin, shut down quietly."""

from __future__ import annotations

import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_node(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run a node until Ctrl-C or shutdown; a bad parameter or file is one error line and status 2."""
    try:
        with rclpy.init(args=args):
            try:
                node = make_node()
            except (ValueError, OSError) as error:  # say what is wrong, without a traceback
                print(f"{name}: error: {error}", file=sys.stderr)
                return 2
            try:
                rclpy.spin(node)
            finally:
                getattr(node, "close", lambda: None)()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0

"""Foxglove channels that carry ROS 2 messages as they travel on the wire (CDR, ``ros2msg`` schema).

Messages logged to these channels go to every foxglove-sdk sink (MCAP file, WebSocket server)
unchanged: Foxglove opens them as the ROS types they are, like a rosbag2 MCAP. The schema is the
message's ``.msg`` text followed by the text of every nested type, rosbag2-style:
``\\n====...====\\nMSG: pkg/Type\\n<text>``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import foxglove
from rosidl_parser.definition import AbstractNestedType, NamespacedType

_SEPARATOR = "=" * 80


def ros2msg_channel(topic: str, msg_type: type) -> foxglove.Channel:
    """A channel on ``topic`` for serialized (CDR) messages of the rclpy type ``msg_type``."""
    schema = foxglove.Schema(name=type_name(msg_type), encoding="ros2msg", data=ros2msg_definition(msg_type).encode())
    return foxglove.Channel(topic, schema=schema, message_encoding="cdr")


def type_name(msg_type: type) -> str:
    """Full ROS type name, e.g. ``kinesis_msgs/msg/SimState``."""
    package = msg_type.__module__.split(".")[0]
    return f"{package}/msg/{msg_type.__name__}"


def ros2msg_definition(msg_type: type) -> str:
    """The ``.msg`` text of ``msg_type`` with the definitions of all nested types appended.

    Raises:
        FileNotFoundError: a ``.msg`` file is in no install prefix (sys.prefix, AMENT_PREFIX_PATH).
    """
    package = msg_type.__module__.split(".")[0]
    parts = [_msg_text(package, msg_type.__name__)]
    for dep_package, dep_name in _nested_types(msg_type):
        parts.append(f"{_SEPARATOR}\nMSG: {dep_package}/{dep_name}\n{_msg_text(dep_package, dep_name)}")
    return "\n".join(parts)


def _nested_types(msg_type: type) -> list[tuple[str, str]]:
    """(package, name) of every message type nested in ``msg_type``, depth first, without repeats."""
    found: list[tuple[str, str]] = []

    def visit(cls: type) -> None:
        for slot in cls.SLOT_TYPES:
            if isinstance(slot, AbstractNestedType):
                slot = slot.value_type
            if isinstance(slot, NamespacedType):
                key = (slot.namespaces[0], slot.name)
                if key not in found:
                    found.append(key)
                    module = __import__(".".join(slot.namespaces), fromlist=[slot.name])
                    visit(getattr(module, slot.name))

    visit(msg_type)
    return found


def _msg_text(package: str, name: str) -> str:
    prefixes = [sys.prefix, *filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]
    for prefix in prefixes:
        path = Path(prefix) / "share" / package / "msg" / f"{name}.msg"
        if path.is_file():
            return path.read_text().rstrip("\n") + "\n"
    raise FileNotFoundError(f"{package}/msg/{name}.msg not found under {prefixes}")

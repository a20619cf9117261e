"""`kinesis teleop`: drive the directional task from the keyboard (geometry_msgs/Twist on /cmd_vel).

Numpad-style keys (8/2 faster forward/backward, 4/6 turn left/right, 7/9 sideways,
5 stop), arrows and WASD by default; the keymap, steps and limits live in
``config/teleop.yaml`` (or ``--config``). Works in a plain terminal: the terminal is
put in raw mode (termios) while the command runs and restored on exit. Ctrl-C or the
``quit`` key stops; a zero Twist is published on the way out.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

ACTIONS = ("forward", "backward", "turn_left", "turn_right", "strafe_left", "strafe_right", "stop", "quit")
ARROWS = {"\x1b[A": "up", "\x1b[B": "down", "\x1b[C": "right", "\x1b[D": "left", " ": "space"}
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "teleop.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("teleop", help="keyboard -> geometry_msgs/Twist on /cmd_vel", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="keymap and limits (YAML)")
    parser.add_argument("--topic", default=None, help="override the topic of the config (default /cmd_vel)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class TeleopConfig:
    """Keymap (key name -> action), per-press steps and limits; see config/teleop.yaml."""

    keys: dict[str, str]
    topic: str = "/cmd_vel"
    rate_hz: float = 10.0
    linear_step: float = 0.1
    angular_step: float = 0.1
    max_linear: float = 2.0
    max_angular: float = 1.5

    @classmethod
    def load(cls, path: Path) -> TeleopConfig:
        if not Path(path).is_file():
            raise FileNotFoundError(f"teleop config not found: {path}")
        table = yaml.safe_load(Path(path).read_text()) or {}
        keys = {str(key): str(action) for key, action in (table.pop("keys", None) or {}).items()}
        unknown = sorted({action for action in keys.values() if action not in ACTIONS})
        if unknown:
            raise ValueError(f"{path}: unknown teleop actions {unknown}; use {list(ACTIONS)}")
        if not keys:
            raise ValueError(f"{path}: 'keys' is empty")
        return cls(keys=keys, **table)


@dataclass(frozen=True)
class Command:
    """The commanded Twist: linear x, y (m/s, heading frame) and angular z (rad/s)."""

    linear_x: float = 0.0
    linear_y: float = 0.0
    angular_z: float = 0.0


def apply(command: Command, action: str, config: TeleopConfig) -> Command:
    """The command after one key action, clipped to the limits (``stop`` -> zero)."""
    lin, ang = config.linear_step, config.angular_step
    changes = {"forward": ("linear_x", lin), "backward": ("linear_x", -lin), "strafe_left": ("linear_y", lin),
               "strafe_right": ("linear_y", -lin), "turn_left": ("angular_z", ang), "turn_right": ("angular_z", -ang)}
    if action == "stop":
        return Command()
    if action not in changes:
        return command
    field, delta = changes[action]
    limit = config.max_angular if field == "angular_z" else config.max_linear
    value = round(getattr(command, field) + delta, 9)
    return replace(command, **{field: max(-limit, min(limit, value))})


def key_name(chars: str) -> str:
    """Name of a key read from the terminal: arrows -> up/down/left/right, space -> space, else the char."""
    return ARROWS.get(chars, chars)


def read_key(stream, timeout: float) -> str | None:
    """One key (arrow escape sequences read whole) from a raw-mode terminal, or None after ``timeout`` s."""
    import os
    import select

    fd = stream.fileno()
    if not select.select([fd], [], [], timeout)[0]:
        return None
    chars = os.read(fd, 1).decode(errors="ignore")
    if chars == "\x1b":
        while select.select([fd], [], [], 0.01)[0] and len(chars) < 3:
            chars += os.read(fd, 1).decode(errors="ignore")
    return key_name(chars)


def run(args: argparse.Namespace) -> int:
    import termios
    import tty

    import rclpy
    from geometry_msgs.msg import Twist

    config = TeleopConfig.load(args.config)
    topic = args.topic or config.topic
    if not sys.stdin.isatty():
        raise ValueError("kinesis teleop needs an interactive terminal (stdin is not a TTY)")
    rclpy.init()
    node = rclpy.create_node("kinesis_teleop")
    publisher = node.create_publisher(Twist, topic, 10)

    def publish(command: Command) -> None:
        msg = Twist()
        msg.linear.x, msg.linear.y, msg.angular.z = command.linear_x, command.linear_y, command.angular_z
        publisher.publish(msg)

    help_line = ", ".join(f"{key}={action}" for key, action in config.keys.items())
    print(f"publishing geometry_msgs/Twist on {topic}; keys: {help_line}; Ctrl-C quits\r")
    saved = termios.tcgetattr(sys.stdin)
    command = Command()
    try:
        tty.setraw(sys.stdin.fileno())
        while True:
            key = read_key(sys.stdin, 1.0 / config.rate_hz)
            if key == "\x03":  # Ctrl-C arrives as a character in raw mode
                break
            action = config.keys.get(key) if key is not None else None
            if action == "quit":
                break
            if action is not None:
                command = apply(command, action, config)
                print(f"\rlinear.x {command.linear_x:+.2f} m/s  linear.y {command.linear_y:+.2f} m/s  "
                      f"angular.z {command.angular_z:+.2f} rad/s   ", end="", flush=True)
            publish(command)
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
        publish(Command())
        print()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0

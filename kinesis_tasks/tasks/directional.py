"""Directional control: follow a geometry_msgs/Twist-like velocity command.

``linear.x`` / ``linear.y`` give the walking velocity in the robot's heading frame
(x forward, y left), ``angular.z`` the turn rate (rad/s, positive = left); all zero
means stop. ``twist_to_goal`` turns a command into a moving goal: the commanded
heading integrates ``angular.z`` over one control step, and the goal is the point
``speed * horizon`` ahead of the root along the commanded direction. The reference
is then the point-goal reference of the reach task (root at the goal, others where
they are), with the commanded velocity as the root reference velocity; a zero
command keeps the root where it is.

Reward terms: ``velocity`` exp(-k_velocity |v - v_cmd|^2) with v the root's
horizontal displacement over the step / dt, ``heading`` exp(-k_heading dpsi^2) to
the commanded heading, ``imitation`` as in reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from kinesis_tasks.tasks import base
from kinesis_tasks.tasks.base import TaskState
from kinesis_tasks.tasks.gait import GaitCommand, GaitReferenced, check_reference


@dataclass(frozen=True)
class Twist:
    """The planar part of a geometry_msgs/Twist: linear x, y (m/s, heading frame) and angular z (rad/s)."""

    linear_x: float = 0.0
    linear_y: float = 0.0
    angular_z: float = 0.0

    def __post_init__(self) -> None:
        for name in ("linear_x", "linear_y", "angular_z"):
            value = float(getattr(self, name))
            if not np.isfinite(value):
                raise ValueError(f"Twist.{name} must be finite, got {value}")
            object.__setattr__(self, name, value)

    @classmethod
    def from_msg(cls, msg) -> Twist:
        """From anything shaped like geometry_msgs/Twist (``msg.linear.x``, ``msg.linear.y``, ``msg.angular.z``)."""
        return cls(msg.linear.x, msg.linear.y, msg.angular.z)


@dataclass(frozen=True)
class DirectionalGoal:
    """A command turned into a goal: ``point`` [3] on the floor, commanded ``heading`` (rad),
    world ``velocity`` [2] (m/s)."""

    point: np.ndarray
    heading: float
    velocity: np.ndarray


@dataclass(frozen=True)
class DirectionalConfig:
    """Directional parameters (``directional`` section of config/tasks.yaml)."""

    horizon: float = 0.5
    max_speed: float = 2.0
    max_turn_rate: float = 1.5
    k_velocity: float = 2.0
    k_heading: float = 2.0
    velocity_tolerance: float = 0.3
    velocity_window: float = 1.0
    """s, the episode metric compares the command with the root velocity averaged over this window (a stride)."""
    max_time: float = 20.0
    reference: str = "gait"
    """gait: a walk composed from the library's clips (``kinesis_tasks.tasks.gait``); point: the KINESIS
    point-goal reference (root at the moving goal, the other keypoints where they are)."""
    paced_start: bool = False
    """gait: the start clip time-warped to the commanded speed (False: at its own pace; ``GaitPlanner``)."""
    gait_library: str | None = None
    """gait: the library the planner composes walks from (None: ``gait.library``, shared by the tasks)."""
    fall_height: float = 0.5
    k_pos: float = 200.0
    weights: Mapping[str, float] = field(default_factory=lambda: {"velocity": 1.0, "heading": 0.3, "imitation": 0.2})

    @classmethod
    def from_config(cls) -> DirectionalConfig:
        return cls(**base.task_config("directional"))

    def __post_init__(self) -> None:
        check_reference("directional", self.reference)


def twist_to_goal(root_pos: np.ndarray, heading: float, twist: Twist, dt: float, *, horizon: float = 0.5,
                  max_speed: float = np.inf, max_turn_rate: float = np.inf) -> DirectionalGoal:
    """Moving goal of a velocity command.

    Args:
        root_pos: [3] (or [2]) current root position, m.
        heading: current facing yaw, rad.
        twist: the command; speed is clipped to ``max_speed``, turn rate to ``max_turn_rate``.
        dt: control step, s (> 0).
        horizon: look-ahead time, s: the goal is speed * horizon ahead of the root.

    Returns:
        DirectionalGoal with heading = heading + angular_z dt (wrapped), the world velocity
        R(heading') (linear_x, linear_y) and the point root + velocity * horizon at z = 0.
    """
    if not dt > 0:
        raise ValueError(f"dt must be > 0 s, got {dt}")
    root = np.asarray(root_pos, dtype=np.float64)
    if root.shape not in ((2,), (3,)):
        raise ValueError(f"root_pos must be [x, y] or [x, y, z], got shape {root.shape}")
    new_heading = base.wrap_angle(heading + np.clip(twist.angular_z, -max_turn_rate, max_turn_rate) * dt)
    local = np.array([twist.linear_x, twist.linear_y])
    speed = np.linalg.norm(local)
    if speed > max_speed:
        local *= max_speed / speed
    cos, sin = np.cos(new_heading), np.sin(new_heading)
    velocity = np.array([cos * local[0] - sin * local[1], sin * local[0] + cos * local[1]])
    point = np.append(root[:2] + velocity * horizon, 0.0)
    return DirectionalGoal(point=point, heading=new_heading, velocity=velocity)


class DirectionalTask(GaitReferenced):
    """Directional control; the goal is a ``Twist`` in the robot's heading frame."""

    name = "directional"

    def __init__(self, config: DirectionalConfig | None = None, dt: float | None = None) -> None:
        self.config = config or DirectionalConfig.from_config()
        self.dt = base.control_dt() if dt is None else float(dt)

    def goal(self, state: TaskState, twist: Twist) -> DirectionalGoal:
        """The moving goal of ``twist`` at ``state`` (one control step ahead)."""
        cfg = self.config
        return twist_to_goal(state.root_pos, state.heading, twist, self.dt, horizon=cfg.horizon,
                             max_speed=cfg.max_speed, max_turn_rate=cfg.max_turn_rate)

    def reference(self, state: TaskState, twist: Twist) -> tuple[np.ndarray, np.ndarray]:
        """(ref_pos, ref_vel) [K, 3] for the next control step: the planned walk (``reference: gait``), or the
        root at the moving goal with the commanded velocity and the others where they are (``point``)."""
        if self.config.reference == "gait":
            return self.planner.reference(state, self.gait_command(twist))
        goal = self.goal(state, twist)
        return base.root_goal_reference(state, goal.point[:2], goal.velocity)

    def gait_command(self, twist: Twist) -> GaitCommand:
        """Forward speed and turn rate of ``twist`` (clipped); walking has no sidestep or backward gait, so
        ``linear_y`` and a negative ``linear_x`` are not followed."""
        cfg = self.config
        return GaitCommand(speed=float(np.clip(twist.linear_x, 0.0, cfg.max_speed)),
                           turn_rate=float(np.clip(twist.angular_z, -cfg.max_turn_rate, cfg.max_turn_rate)))

    def reward(self, previous: TaskState, state: TaskState, twist: Twist) -> dict[str, float]:
        """{"velocity", "heading", "imitation"} of the step previous -> state (command taken at ``previous``)."""
        cfg = self.config
        dt = base.step_dt(previous, state)
        goal = self.goal(previous, twist)
        velocity = (state.root_pos[:2] - previous.root_pos[:2]) / dt
        turn = base.wrap_angle(state.heading - (previous.heading + twist.angular_z * dt))
        ref_pos, _ = self.reference(previous, twist)
        return {
            "velocity": float(np.exp(-cfg.k_velocity * np.sum(np.square(velocity - goal.velocity)))),
            "heading": float(np.exp(-cfg.k_heading * turn * turn)),
            "imitation": base.imitation_term(state.body_pos, ref_pos, cfg.k_pos),
        }

    def total(self, terms: Mapping[str, float]) -> float:
        return base.weighted_total(terms, self.config.weights)

    def success(self, state: TaskState, twist: Twist) -> bool:
        """Root velocity (body sensor) within ``velocity_tolerance`` of the commanded world velocity."""
        goal = self.goal(state, twist)
        return bool(np.linalg.norm(state.body_vel[base.ROOT, :2] - goal.velocity) <= self.config.velocity_tolerance)

    def done(self, state: TaskState, twist: Twist) -> bool:
        """A fall or the time limit (a velocity command has no end)."""
        return base.fallen(state, self.config.fall_height) or state.time >= self.config.max_time

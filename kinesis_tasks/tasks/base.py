"""What every downstream task shares: the task state, the Task protocol and small goal helpers.

A task turns a goal into a reference for the imitation policy (KINESIS reuses the
tracker unchanged: only the reference keypoints come from the goal). States are
plain arrays, not MjData, so tasks unit-test with constructed states;
``state_from_data`` reads one from a simulation.

Conventions: world frame z-up, floor at z = 0, metres, seconds, radians.
Keypoints follow ``kinesis_tasks.embodiment.TRACKED_BODIES`` (index 0 is the root).
``heading`` is the facing yaw: 0 faces +x, pi/2 faces +y. The MyoLegs root body's
forward axis is its local -y, so ``facing_heading(q) = heading_angle(q) - pi/2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Mapping, Protocol, TypeVar

import mujoco
import numpy as np

from kinesis_tasks import rewards, rotations
from kinesis_tasks.config import load_config
from kinesis_tasks.embodiment import TRACKED_BODIES, physics_defaults
from kinesis_tasks.observations import BodyLayout, data_state

ROOT = 0
NUM_KEYPOINTS = len(TRACKED_BODIES)


@dataclass(frozen=True)
class TaskState:
    """Kinematic state a task needs at one control step.

    Attributes:
        body_pos: [K, 3] tracked body positions (world, m), K = len(TRACKED_BODIES).
        body_vel: [K, 3] tracked body velocities (world, m/s).
        heading: facing yaw of the root, rad (0 = +x).
        time: simulation time, s.
        ball_pos: optional [3] ball centre (kick task), m.
        ball_vel: optional [3] ball velocity, m/s.
    """

    body_pos: np.ndarray
    body_vel: np.ndarray
    heading: float
    time: float
    ball_pos: np.ndarray | None = None
    ball_vel: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("body_pos", "body_vel"):
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape != (NUM_KEYPOINTS, 3):
                raise ValueError(f"TaskState.{name} must have shape [{NUM_KEYPOINTS}, 3], got {value.shape}")
            object.__setattr__(self, name, value)
        for name in ("ball_pos", "ball_vel"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=np.float64)
                if value.shape != (3,):
                    raise ValueError(f"TaskState.{name} must have shape [3], got {value.shape}")
                object.__setattr__(self, name, value)
        object.__setattr__(self, "heading", float(self.heading))
        object.__setattr__(self, "time", float(self.time))

    @property
    def root_pos(self) -> np.ndarray:
        """[3] root (pelvis) position, m."""
        return self.body_pos[ROOT]


G = TypeVar("G", contravariant=True)


class Task(Protocol, Generic[G]):
    """A downstream task: goal -> reference for the tracker, plus reward, termination and success."""

    name: str

    def reference(self, state: TaskState, goal: G) -> tuple[np.ndarray, np.ndarray]:
        """(ref_pos [K, 3], ref_vel [K, 3]) for the next control step."""

    def reward(self, previous: TaskState, state: TaskState, goal: G) -> dict[str, float]:
        """Named reward terms of the step previous -> state (reference taken at ``previous``)."""

    def done(self, state: TaskState, goal: G) -> bool:
        """Whether the episode ends at ``state`` (success, fall or time limit)."""

    def success(self, state: TaskState, goal: G) -> bool:
        """Whether ``state`` achieves the goal."""


def task_config(name: str) -> dict[str, Any]:
    """Section ``name`` of ``config/tasks.yaml`` merged over its ``common`` section (a fresh dict)."""
    table = load_config("tasks")
    if name not in table:
        raise ValueError(f"config/tasks.yaml has no section {name!r}; it has {sorted(table)}")
    return {**table.get("common", {}), **table[name]}


def control_dt() -> float:
    """Seconds per control step (physics timestep x substeps of config/embodiments.yaml)."""
    timestep, substeps = physics_defaults()
    return timestep * substeps


def weighted_total(terms: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Sum of ``weights[k] * terms[k]``; ValueError if a term has no weight."""
    missing = sorted(set(terms) - set(weights))
    if missing:
        raise ValueError(f"weights: no weight for reward terms {missing}")
    return float(sum(weights[name] * value for name, value in terms.items()))


def wrap_angle(angle: np.ndarray | float) -> np.ndarray | float:
    """Angle(s) wrapped to [-pi, pi), rad."""
    wrapped = np.mod(np.asarray(angle, dtype=np.float64) + np.pi, 2 * np.pi) - np.pi
    return wrapped if wrapped.ndim else float(wrapped)


def facing_heading(root_quat: np.ndarray) -> np.ndarray:
    """Facing yaw [...] of MyoLegs root orientations [..., 4] (w, x, y, z): the yaw of the local -y axis."""
    return wrap_angle(rotations.heading_angle(root_quat) - np.pi / 2)


def capped_step(start: np.ndarray, goal: np.ndarray, max_step: float | None) -> np.ndarray:
    """``goal`` [..., 2], or the point ``max_step`` m from ``start`` toward it if farther (None: no cap)."""
    delta = np.asarray(goal, dtype=np.float64) - start
    if max_step is None:
        return start + delta
    distance = np.linalg.norm(delta, axis=-1, keepdims=True)
    return start + delta * np.minimum(1.0, max_step / np.maximum(distance, 1e-12))


def approach_velocity(delta: np.ndarray, speed: float, slowdown_radius: float) -> np.ndarray:
    """Velocity [..., 2] along ``delta`` [..., 2]: ``speed``, falling linearly to 0 inside ``slowdown_radius``."""
    distance = np.linalg.norm(delta, axis=-1, keepdims=True)
    scale = speed * np.minimum(1.0, distance / slowdown_radius) / np.maximum(distance, 1e-12)
    return delta * scale


def root_goal_reference(state: TaskState, root_xy: np.ndarray, root_vel_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KINESIS point-goal reference: root keypoint at ``root_xy`` (height kept), others where they are.

    Returns ref_pos [K, 3] (the other keypoints at their current positions) and
    ref_vel [K, 3] (root: ``root_vel_xy`` horizontally, others and vertical: 0).
    """
    ref_pos = state.body_pos.copy()
    ref_pos[ROOT, :2] = root_xy
    ref_vel = np.zeros_like(ref_pos)
    ref_vel[ROOT, :2] = root_vel_xy
    return ref_pos, ref_vel


def imitation_term(body_pos: np.ndarray, ref_pos: np.ndarray, k_pos: float) -> float:
    """exp(-k_pos * mean squared keypoint error) in [0, 1] (KINESIS body-position reward)."""
    return float(rewards.body_pos_term(body_pos, np.asarray(ref_pos), k_pos))


def step_dt(previous: TaskState, state: TaskState) -> float:
    """state.time - previous.time, s (ValueError unless > 0)."""
    dt = state.time - previous.time
    if not dt > 0:
        raise ValueError(f"state.time must be after previous.time, got dt = {dt} s")
    return dt


def fallen(state: TaskState, fall_height: float) -> bool:
    """Whether the root is below ``fall_height`` m."""
    return bool(state.root_pos[2] < fall_height)


def state_from_data(layout: BodyLayout, data: mujoco.MjData, *, ball_pos: np.ndarray | None = None,
                    ball_vel: np.ndarray | None = None) -> TaskState:
    """The TaskState of one MjData after ``mj_kinematics`` (tracked bodies of ``layout``).

    Velocities are those of the body frame origins (the points ``body_pos`` holds), from the body
    sensors: v_origin = v_com - w x (xipos - xpos). The sensors measure at the centre of mass, which
    for the massless MyoLegs root body sits 1 m above the pelvis, so its raw value mixes pitching into
    the walking velocity.
    """
    state = data_state(layout, data)
    tracked = layout.tracked
    com_offset = data.xipos[layout.body_ids[tracked]] - state.xpos[tracked]
    body_vel = state.linvel[tracked] - np.cross(state.angvel[tracked], com_offset)
    return TaskState(body_pos=state.xpos[tracked], body_vel=body_vel,
                     heading=float(facing_heading(state.root_quat)), time=data.time,
                     ball_pos=ball_pos, ball_vel=ball_vel)

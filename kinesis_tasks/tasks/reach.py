"""Target reach: walk the root (pelvis) to a point on the floor.

Goal -> reference (KINESIS point-goal): the root keypoint is set toward the goal
and the other tracked keypoints to their current positions. Unlike KINESIS, which
puts the root keypoint at the goal itself, the step is capped at
``max_reference_step`` (config) so the reference stays within reach of the tracker;
``max_reference_step: null`` restores the KINESIS behaviour. The reference root keeps
its current height; the goal's z is ignored. The root reference velocity points at
the goal with the cruise ``speed``, slowing linearly inside ``slowdown_radius``.

Reward terms: ``progress`` (decrease of the horizontal root-goal distance over the
step, divided by speed * dt and clipped to [-1, 1]), ``imitation`` (KINESIS body
position term against the reference taken at the previous state) and ``success``.

With ``reference: gait`` (the default) the reference is instead a walk toward the goal composed from the
motion library's clips (``kinesis_tasks.tasks.gait``) along the arc from the current heading through the goal
(pure pursuit: turn rate = speed x 2 sin(bearing) / distance), at ``speed``, slower where that arc needs more
than ``max_turn_rate``; it stands once the goal is reached and on while the goal stays within
``settle_radius`` (stopping carries the body past the success radius; without this it would walk a loop back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from kinesis_tasks.tasks import base
from kinesis_tasks.tasks.base import TaskState
from kinesis_tasks.tasks.gait import GaitCommand, GaitReferenced, check_reference

#: Quantum of the gait command's speed (m/s) and turn rate (rad/s): a new walk is planned only when they change
#: this much.
COMMAND_STEP = 0.1


@dataclass(frozen=True)
class ReachConfig:
    """Reach parameters (``reach`` section of config/tasks.yaml)."""

    success_radius: float = 0.3
    max_reference_step: float | None = 0.5
    speed: float = 1.2
    slowdown_radius: float = 1.0
    max_time: float = 20.0
    reference: str = "gait"
    """gait: a walk toward the goal composed from the library's clips; point: the (capped) point-goal reference."""
    max_turn_rate: float = 0.8
    min_speed: float = 0.5
    """gait: the slowest walk, m/s (for the tightest turns)."""
    settle_radius: float = 1.5
    """gait: once reached, the body stands while the goal is within this distance (m)."""
    paced_start: bool = True
    """gait: the start clip time-warped to the commanded speed (False: at its own pace; ``GaitPlanner``)."""
    gait_library: str | None = None
    """gait: the library the planner composes walks from (None: ``gait.library``, shared by the tasks)."""
    fall_height: float = 0.5
    k_pos: float = 200.0
    weights: Mapping[str, float] = field(default_factory=lambda: {"progress": 1.0, "imitation": 0.2, "success": 1.0})

    @classmethod
    def from_config(cls) -> ReachConfig:
        return cls(**base.task_config("reach"))

    def __post_init__(self) -> None:
        check_reference("reach", self.reference)


def goal_xy(goal: np.ndarray) -> np.ndarray:
    """[2] horizontal part of a goal point [2] or [3] (ValueError otherwise)."""
    goal = np.asarray(goal, dtype=np.float64)
    if goal.shape not in ((2,), (3,)) or not np.all(np.isfinite(goal)):
        raise ValueError(f"goal must be a finite point [x, y] or [x, y, z] in m, got {goal!r}")
    return goal[:2]


def goal_distance(state: TaskState, goal: np.ndarray) -> float:
    """Horizontal root-to-goal distance, m."""
    return float(np.linalg.norm(goal_xy(goal) - state.root_pos[:2]))


class ReachTask(GaitReferenced):
    """Target reach; the goal is a point [x, y(, z)] on the floor, m."""

    name = "reach"

    def __init__(self, config: ReachConfig | None = None, dt: float | None = None) -> None:
        self.config = config or ReachConfig.from_config()
        self.dt = base.control_dt() if dt is None else float(dt)
        self._settled_at: np.ndarray | None = None  # the goal the body stands at
        self._last_time = -np.inf

    def reference(self, state: TaskState, goal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ref_pos, ref_vel) [K, 3] for the next control step: the planned walk toward the goal (``gait``), or
        the root toward the goal (capped step) and the others at their current positions (``point``)."""
        cfg = self.config
        if cfg.reference == "gait":
            return self.planner.reference(state, self.gait_command(state, goal))
        target, root = goal_xy(goal), state.root_pos[:2]
        root_ref = base.capped_step(root, target, cfg.max_reference_step)
        velocity = base.approach_velocity(target - root, cfg.speed, cfg.slowdown_radius)
        return base.root_goal_reference(state, root_ref, velocity)

    def gait_command(self, state: TaskState, goal: np.ndarray) -> GaitCommand:
        """Walk toward ``goal``: stand once within ``success_radius`` (and on while within ``settle_radius``);
        else along the arc through it (pure pursuit), at ``speed`` or slower where the arc needs more than
        ``max_turn_rate`` (down to ``min_speed``); speed and turn rate in ``COMMAND_STEP`` steps."""
        cfg = self.config
        target = goal_xy(goal)
        delta = target - state.root_pos[:2]
        if state.time < self._last_time:  # a new episode
            self._settled_at = None
        self._last_time = state.time
        settled = self._settled_at is not None and np.array_equal(self._settled_at, target)
        distance = float(np.linalg.norm(delta))
        if distance <= (cfg.settle_radius if settled else cfg.success_radius):
            self._settled_at = target
            return GaitCommand(0.0)
        self._settled_at = None
        bearing = float(base.wrap_angle(np.arctan2(delta[1], delta[0]) - state.heading))
        # Pure pursuit: the arc from the current heading through the goal has curvature 2 sin(bearing) / distance;
        # slower where that arc needs more than max_turn_rate (a goal behind: the tightest turn, slowly).
        curvature = 2.0 * np.sin(bearing) / distance if abs(bearing) < np.pi / 2 else np.sign(bearing) * np.inf
        speed = float(np.clip(cfg.max_turn_rate / max(abs(curvature), 1e-9), cfg.min_speed, cfg.speed))
        turn = float(np.clip(speed * curvature, -cfg.max_turn_rate, cfg.max_turn_rate))
        return GaitCommand(speed=COMMAND_STEP * round(speed / COMMAND_STEP), turn_rate=COMMAND_STEP * round(turn / COMMAND_STEP))

    def reward(self, previous: TaskState, state: TaskState, goal: np.ndarray) -> dict[str, float]:
        """{"progress", "imitation", "success"} of the step previous -> state."""
        cfg = self.config
        dt = base.step_dt(previous, state)
        progress = (goal_distance(previous, goal) - goal_distance(state, goal)) / (cfg.speed * dt)
        ref_pos, _ = self.reference(previous, goal)
        return {
            "progress": float(np.clip(progress, -1.0, 1.0)),
            "imitation": base.imitation_term(state.body_pos, ref_pos, cfg.k_pos),
            "success": float(self.success(state, goal)),
        }

    def total(self, terms: Mapping[str, float]) -> float:
        return base.weighted_total(terms, self.config.weights)

    def success(self, state: TaskState, goal: np.ndarray) -> bool:
        """Root within ``success_radius`` (horizontal distance) of the goal."""
        return goal_distance(state, goal) <= self.config.success_radius

    def done(self, state: TaskState, goal: np.ndarray) -> bool:
        """Success, a fall (root below ``fall_height``) or the time limit."""
        cfg = self.config
        return self.success(state, goal) or base.fallen(state, cfg.fall_height) or state.time >= cfg.max_time

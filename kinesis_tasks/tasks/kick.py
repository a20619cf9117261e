"""Football penalty kick (MyoChallenge 2025 style): kick the ball into the goal, toward a target point.

Scoring rule (MyoChallenge 2025 soccer, reimplemented): the ball centre is past the
goal line (x >= line) with |y - centre| <= half width and 0 <= z <= height, where
the challenge uses the conservative box 2 x 3.3 m wide, 2.2 m high inside the
posts (~3.67 m) and crossbar (~2.26-2.50 m) of its goal asset.

Goal -> reference, with u the unit vector from the ball to the target (horizontal)
and n its left normal; the pelvis keeps to the standing-foot side of the
ball -> target line by ``lateral_offset`` (left of it for a right-foot kick):

* ``approach``: root toward the run-up point ball - u approach_distance (+ side n
  lateral_offset), capped step, others where they are;
* ``kick`` (root within ``kick_radius`` of the run-up point): root toward the plant
  point ball - u plant_back (+ side n lateral_offset); the kicking toe keypoint
  ``follow_through`` past the ball centre along u, at ball-centre height, with
  reference velocity ``kick_speed`` u: the foot is aimed through the ball at the target;
* ``after`` (ball faster than ``kicked_speed``): hold the current pose.

Reward terms: ``reach_ball`` exp(-k_reach |toe - ball|), ``ball_progress`` (decrease of
the ball-target distance per second / ball_speed_scale, clipped to [-1, 1]),
``goal`` (1 when scored) and ``imitation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping

import numpy as np

from kinesis_tasks.embodiment import TRACKED_BODIES
from kinesis_tasks.tasks import base
from kinesis_tasks.tasks.base import TaskState

Phase = Literal["approach", "kick", "after"]


@dataclass(frozen=True)
class GoalMouth:
    """Scoring box: goal line x (m), centre y (m), half width (m) and height (m)."""

    line_x: float
    centre_y: float = 0.0
    half_width: float = 3.3
    height: float = 2.2

    @classmethod
    def from_config(cls) -> GoalMouth:
        """The scene's scoring box from the ``soccer`` section of config/tasks.yaml."""
        cfg = base.task_config("soccer")
        spot = cfg["penalty_spot"]
        return cls(line_x=float(spot[0] + cfg["penalty_distance"]), centre_y=float(spot[1]),
                   half_width=float(cfg["scoring_half_width"]), height=float(cfg["scoring_height"]))


def ball_in_goal(ball_pos: np.ndarray, mouth: GoalMouth) -> np.ndarray | bool:
    """Whether ball centres [..., 3] are past the line, between the posts and under the bar."""
    ball = np.asarray(ball_pos, dtype=np.float64)
    x, y, z = ball[..., 0], ball[..., 1], ball[..., 2]
    inside = (x >= mouth.line_x) & (np.abs(y - mouth.centre_y) <= mouth.half_width) & (z >= 0.0) & (z <= mouth.height)
    return inside if inside.ndim else bool(inside)


@dataclass(frozen=True)
class KickConfig:
    """Kick parameters (``kick`` section of config/tasks.yaml)."""

    kicking_foot: Literal["right", "left"] = "right"
    approach_distance: float = 0.6
    lateral_offset: float = 0.12
    kick_radius: float = 0.25
    plant_back: float = 0.1
    max_reference_step: float | None = 0.5
    speed: float = 1.0
    slowdown_radius: float = 0.5
    follow_through: float = 0.3
    kick_speed: float = 6.0
    kicked_speed: float = 0.5
    k_reach: float = 2.0
    ball_speed_scale: float = 10.0
    max_time: float = 10.0
    fall_height: float = 0.5
    k_pos: float = 200.0
    weights: Mapping[str, float] = field(
        default_factory=lambda: {"reach_ball": 0.3, "ball_progress": 1.0, "goal": 10.0, "imitation": 0.1})

    def __post_init__(self) -> None:
        if self.kicking_foot not in ("right", "left"):
            raise ValueError(f"kicking_foot must be 'right' or 'left', got {self.kicking_foot!r}")

    @classmethod
    def from_config(cls) -> KickConfig:
        return cls(**base.task_config("kick"))


def _ball(state: TaskState) -> tuple[np.ndarray, np.ndarray]:
    if state.ball_pos is None or state.ball_vel is None:
        raise ValueError("the kick task needs TaskState.ball_pos and ball_vel")
    return state.ball_pos, state.ball_vel


def _target(target: np.ndarray) -> np.ndarray:
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (3,) or not np.all(np.isfinite(target)):
        raise ValueError(f"kick target must be a finite point [x, y, z] in m, got {target!r}")
    return target


class KickTask:
    """Penalty kick; the goal is the target point [3] in the goal (m), e.g. from /kick_target."""

    name = "kick"

    def __init__(self, config: KickConfig | None = None, mouth: GoalMouth | None = None) -> None:
        self.config = config or KickConfig.from_config()
        self.mouth = mouth or GoalMouth.from_config()
        self.toe = TRACKED_BODIES.index(f"toes_{self.config.kicking_foot[0]}")
        self.side = 1.0 if self.config.kicking_foot == "right" else -1.0  # +1: pelvis left of the line

    def aim(self, ball_xy: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, n): unit ball -> target direction [2] and its left normal [2]."""
        delta = _target(target)[:2] - ball_xy
        distance = np.linalg.norm(delta)
        if distance < 1e-9:
            raise ValueError("kick target is directly above the ball: no direction to kick in")
        u = delta / distance
        return u, np.array([-u[1], u[0]])

    def run_up_point(self, ball_xy: np.ndarray, target: np.ndarray) -> np.ndarray:
        """[2] where the pelvis goes before the kick, m."""
        u, n = self.aim(ball_xy, target)
        return ball_xy - u * self.config.approach_distance + self.side * self.config.lateral_offset * n

    def phase(self, state: TaskState, target: np.ndarray) -> Phase:
        """"after" once the ball moves, "kick" near the run-up point, else "approach"."""
        ball, ball_vel = _ball(state)
        if np.linalg.norm(ball_vel) > self.config.kicked_speed:
            return "after"
        distance = np.linalg.norm(state.root_pos[:2] - self.run_up_point(ball[:2], target))
        return "kick" if distance <= self.config.kick_radius else "approach"

    def reference(self, state: TaskState, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ref_pos, ref_vel) [K, 3] of the current phase (see the module docstring)."""
        cfg = self.config
        ball, _ = _ball(state)
        root = state.root_pos[:2]
        phase = self.phase(state, target)
        if phase == "after":
            return base.root_goal_reference(state, root, np.zeros(2))
        u, n = self.aim(ball[:2], target)
        if phase == "approach":
            point = self.run_up_point(ball[:2], target)
        else:
            point = ball[:2] - u * cfg.plant_back + self.side * cfg.lateral_offset * n
        root_ref = base.capped_step(root, point, cfg.max_reference_step)
        ref_pos, ref_vel = base.root_goal_reference(
            state, root_ref, base.approach_velocity(point - root, cfg.speed, cfg.slowdown_radius))
        if phase == "kick":
            ref_pos[self.toe] = (*(ball[:2] + u * cfg.follow_through), ball[2])
            ref_vel[self.toe] = (*(u * cfg.kick_speed), 0.0)
        return ref_pos, ref_vel

    def reward(self, previous: TaskState, state: TaskState, target: np.ndarray) -> dict[str, float]:
        """{"reach_ball", "ball_progress", "goal", "imitation"} of the step previous -> state."""
        cfg = self.config
        dt = base.step_dt(previous, state)
        target = _target(target)
        ball, previous_ball = _ball(state)[0], _ball(previous)[0]
        approach = (np.linalg.norm(target - previous_ball) - np.linalg.norm(target - ball)) / dt
        ref_pos, _ = self.reference(previous, target)
        return {
            "reach_ball": float(np.exp(-cfg.k_reach * np.linalg.norm(state.body_pos[self.toe] - ball))),
            "ball_progress": float(np.clip(approach / cfg.ball_speed_scale, -1.0, 1.0)),
            "goal": float(self.success(state, target)),
            "imitation": base.imitation_term(state.body_pos, ref_pos, cfg.k_pos),
        }

    def total(self, terms: Mapping[str, float]) -> float:
        return base.weighted_total(terms, self.config.weights)

    def success(self, state: TaskState, target: np.ndarray) -> bool:
        """The ball is in the goal (MyoChallenge rule, ``ball_in_goal``)."""
        return bool(ball_in_goal(_ball(state)[0], self.mouth))

    def done(self, state: TaskState, target: np.ndarray) -> bool:
        """The ball crossed the goal line (in or wide), a fall, or the time limit."""
        ball, _ = _ball(state)
        cfg = self.config
        return bool(ball[0] >= self.mouth.line_x) or base.fallen(state, cfg.fall_height) or state.time >= cfg.max_time

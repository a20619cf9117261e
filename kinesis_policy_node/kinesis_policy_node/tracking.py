"""ROS-free core of the policy node: SimState arrays -> observation, reference and tracking metrics.

``GoalTracker`` holds the running task (imitation of a motion, or a downstream task with its goal) and
turns each simulation state into the policy input exactly as ``kinesis_tasks.imitation.ImitationEnv``
does offline: qpos and the (one sub-step stale) sensor vector are written into a kinematic copy of the
model, ``mj_kinematics`` gives the body poses, and the ``kinesis_tasks.observations`` functions build
[proprioception | imitation] with the reference of the next control step.

Imitation time: a motion started at simulation step s0 is at fractional frame (k - s0) fps dt at step k
(linear interpolation, as ImitationEnv). When it ends, the next motion of the list starts at frame 0.
Downstream tasks (reach, directional, kick) compute their reference from the current TaskState.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import mujoco
import numpy as np

from kinesis_tasks import observations, rewards
from kinesis_tasks.embodiment import load_embodiment, physics_defaults
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.motions import ReferenceMotion
from kinesis_tasks.tasks import DirectionalTask, KickTask, ReachTask, TaskState, Twist, state_from_data

_EPS = 1e-9
_MOTION_ROOT = "root"
#: Tasks the node runs: imitation follows motions (a library or /kinesis/reference_motion), the others a goal.
TASKS = ("imitation", "reach", "directional", "kick")
#: Launch-file spellings of the task parameter.
TASK_ALIASES = {"target_reach": "reach", "text": "imitation", "text_to_motion": "imitation"}


def canonical_task(name: str) -> str:
    """The task a parameter value names (aliases resolved); ValueError for unknown names."""
    task = TASK_ALIASES.get(name, name)
    if task not in TASKS:
        raise ValueError(f"parameter task must be one of {TASKS + tuple(TASK_ALIASES)}, got {name!r}")
    return task


@dataclass(frozen=True, eq=False)
class MotionTrack:
    """A motion's tracked keypoints [T, K, 3] and velocities [T, K, 3] in layout order, stepped at ``dt``."""

    motion: ReferenceMotion
    keypoints: np.ndarray
    velocities: np.ndarray
    frames_per_step: float

    @classmethod
    def prepare(cls, motion: ReferenceMotion, motion_bodies: Sequence[str], dt: float) -> MotionTrack:
        missing = [body for body in motion_bodies if body not in motion.body_names]
        if missing:
            raise ValueError(f"motion {motion.name!r} has no keypoints for {missing}; it has {list(motion.body_names)}")
        index = [motion.body_names.index(body) for body in motion_bodies]
        return cls(motion, np.ascontiguousarray(motion.keypoints[:, index]),
                   np.ascontiguousarray(motion.velocities[:, index]), dt * motion.fps)

    @property
    def steps(self) -> int:
        """Control steps the motion covers from frame 0."""
        return int(np.floor((self.keypoints.shape[0] - 1) / self.frames_per_step + _EPS))

    def at(self, position: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions [K, 3], velocities [K, 3]) at fractional frame ``position`` (clamped)."""
        last = self.keypoints.shape[0] - 1.0
        position = min(max(position, 0.0), last)
        low = min(int(position), self.keypoints.shape[0] - 2)
        alpha = position - low
        pos = self.keypoints[low] + alpha * (self.keypoints[low + 1] - self.keypoints[low])
        vel = self.velocities[low] + alpha * (self.velocities[low + 1] - self.velocities[low])
        return pos, vel


@dataclass(frozen=True)
class StepResult:
    """Policy input ``obs`` [D] float32 and the metrics of the state (TrackingStatus fields)."""

    obs: np.ndarray
    motion: str
    frame: int
    mpjpe_mm: float
    reward: float
    terminated: bool
    success: bool
    task: str


class GoalTracker:
    """The running task and its goal; ``observe`` turns one simulation state into a StepResult.

    ``motions``: the imitation playlist (played in turn). Goals: ``track`` (a motion),
    ``set_goal(task, goal)`` (reach: point [3]; directional: Twist; kick: target point [3]).
    """

    def __init__(self, embodiment: str, task: str, motions: Sequence[ReferenceMotion], goals: dict[str, Any],
                 *, ball: np.ndarray | None = None) -> None:
        self.config = ImitationConfig.default(embodiment=embodiment)
        self.model = model = load_embodiment(embodiment)
        self.data = mujoco.MjData(model)
        tracked = observations.tracked_bodies(model, include_head=self.config.tracks_head())
        self.layout = observations.body_layout(model, tracked)
        self.motion_bodies = (_MOTION_ROOT, *tracked[1:])
        self.dt = model.opt.timestep * physics_defaults()[1]
        self.tasks = {"reach": ReachTask(), "directional": DirectionalTask(dt=self.dt), "kick": KickTask()}
        self.goals = dict(goals)
        self.ball = ball
        self.playlist = list(motions)
        self.task = canonical_task(task)
        self.track: MotionTrack | None = None
        self.start_step: int | None = None
        self.previous: TaskState | None = None
        self.last_reference: tuple[np.ndarray, np.ndarray] | None = None
        self.changed = True  # the reference changed since the last ``take_changed``
        self.eval_distance = self.config.eval_termination_distance
        if self.task == "imitation" and self.playlist:
            self.track = MotionTrack.prepare(self.playlist[0], self.motion_bodies, self.dt)

    def track_motion(self, motion: ReferenceMotion) -> None:
        """Switch to imitation of ``motion`` from its first frame at the next state (ValueError if unusable)."""
        self.track = MotionTrack.prepare(motion, self.motion_bodies, self.dt)
        self.task, self.start_step, self.changed = "imitation", None, True

    def set_goal(self, task: str, goal: Any) -> None:
        """Run downstream ``task`` with ``goal`` from the next state."""
        self.task, self.goals[task], self.previous, self.changed = task, goal, None, True

    def take_changed(self) -> bool:
        changed, self.changed = self.changed, False
        return changed

    def observe(self, qpos: np.ndarray, sensordata: np.ndarray, sim_time: float, step: int) -> StepResult:
        """StepResult of the state at simulation step ``step`` (ValueError for arrays of the wrong size)."""
        for name, value, size in (("qpos", qpos, self.model.nq), ("sensordata", sensordata, self.model.nsensordata)):
            if np.shape(value) != (size,):
                raise ValueError(f"{name}: expected {size} values for this embodiment, got {np.shape(value)}")
        data = self.data
        data.qpos[:], data.sensordata[:], data.time = qpos, sensordata, sim_time
        mujoco.mj_kinematics(self.model, data)
        state = observations.body_state(self.layout, data.xpos, data.xquat, data.qpos, data.sensordata)
        body_pos = state.xpos[self.layout.tracked]
        if self.task == "imitation" and self.track is not None:
            ref_now, ref_next, metrics = self._imitation(state, step)
        else:
            ref_now, ref_next, metrics = self._downstream(state, body_pos)
        self.last_reference = ref_next
        obs = np.concatenate((observations.proprioception_from_state(self.layout, state),
                              observations.imitation_from_state(self.layout, state, *ref_next)))
        mpjpe = 1000.0 * float(rewards.tracking_distance(body_pos, ref_now[0], "mean"))
        return StepResult(obs=obs, mpjpe_mm=mpjpe, task=self.task, **metrics)

    def reference_motion(self) -> ReferenceMotion | None:
        """The motion being tracked (None for downstream tasks)."""
        return self.track.motion if self.task == "imitation" and self.track is not None else None

    def goal_reference_motion(self) -> ReferenceMotion:
        """The last downstream-task reference as a two-frame motion (positions now and one step later)."""
        pos, vel = self.last_reference
        return ReferenceMotion(name=f"{self.task}_goal", fps=1.0 / self.dt, keypoints=np.stack((pos, pos + vel * self.dt)),
                               body_names=self.motion_bodies, text=f"{self.task} goal")

    def _imitation(self, state: observations.BodyState, step: int):
        if self.start_step is None:
            self.start_step = step
        t = step - self.start_step
        if t >= self.track.steps:  # motion over: the next one of the playlist from its first frame
            names = [m.name for m in self.playlist]
            name = self.track.motion.name
            following = self.playlist[(names.index(name) + 1) % len(names)] if name in names else self.track.motion
            self.track_motion(following)
            self.start_step, t = step, 0
        ref_now, ref_next = self.track.at(t * self.track.frames_per_step), self.track.at((t + 1) * self.track.frames_per_step)
        terms = rewards.imitation_terms_from_state(self.layout, state, *ref_now, self.config.reward)
        terms["upright"] = rewards.upright_term(state.root_quat)
        reward = float(sum(self.config.reward.scales[name] * float(value) for name, value in terms.items()))
        distance = float(rewards.tracking_distance(state.xpos[self.layout.tracked], ref_now[0], "mean"))
        terminated = distance > self.eval_distance
        return ref_now, ref_next, dict(motion=self.track.motion.name, frame=int(round(t * self.track.frames_per_step)),
                                       reward=reward, terminated=terminated, success=not terminated)

    def _downstream(self, state: observations.BodyState, body_pos: np.ndarray):
        if self.task == "imitation":  # no motion yet: hold the current pose
            ref = (body_pos.copy(), np.zeros_like(body_pos))
            return ref, ref, dict(motion="", frame=0, reward=0.0, terminated=False, success=True)
        task, goal = self.tasks[self.task], self.goals[self.task]
        ball = (self.ball, np.zeros(3)) if self.task == "kick" else (None, None)
        current = state_from_data(self.layout, self.data, ball_pos=ball[0], ball_vel=ball[1])
        reward = task.total(task.reward(self.previous, current, goal)) if self.previous is not None else 0.0
        ref_now = task.reference(self.previous, goal) if self.previous is not None else (body_pos, np.zeros_like(body_pos))
        ref_next = task.reference(current, goal)
        self.previous = current
        return ref_now, ref_next, dict(motion=f"{self.task}_goal", frame=0, reward=float(reward),
                                       terminated=bool(task.done(current, goal)), success=bool(task.success(current, goal)))

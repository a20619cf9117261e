"""ROS-free core of the policy node: SimState arrays -> observation, reference and tracking metrics.

``GoalTracker`` holds the running task (imitation of a motion, or a downstream task with its goal) and
turns each simulation state into the policy input exactly as ``kinesis_tasks.imitation.ImitationEnv``
does offline: qpos and the (one sub-step stale) sensor vector are written into a kinematic copy of the
model, ``mj_kinematics`` gives the body poses, and the ``kinesis_tasks.observations`` functions build
[proprioception | imitation] with the reference of the next control step.

Imitation time: a motion started at simulation step s0 is at fractional frame (k - s0) fps dt at step k
(``kinesis_tasks.imitation.MotionTrack``, linear interpolation, as ImitationEnv). An attempt at a motion
ends, as an episode of ``kinesis eval`` does (``kinesis_tasks.evaluation``), at the first state after its
start whose mean tracked-body distance exceeds the evaluation threshold (0.5 m: ``terminated``, not a
success) or at the state of its last frame (a success unless terminated there); that state's StepResult
has ``finished`` set. The next state starts the next motion of the playlist (after the last: the first;
a motion received as a goal starts over) at frame 0, whether or not the simulation was reset in between
(``advance`` does it at once). ``initial_state`` is the simulation state a motion starts from offline
(``kinesis_tasks.initial_pose.InitialStates``, as ImitationEnv), which the policy node resets the
simulation to. Downstream tasks (reach, directional, kick) compute their reference from the current TaskState.

The ball (kick): a state of a scene with a ball (sim_node ``scene: soccer``) carries the ball's free
joint after the embodiment, qpos [nq + 7] and qvel [nv + 6]; the tracker then reads the ball position and
velocity from it. A state of the embodiment alone (qpos [nq]) gets the static ball given at construction.
The kinematic model stays the embodiment: only the first nq entries of qpos pose it.

A state whose step is not after the last one observed (a reset of the simulation) starts over: the
motion restarts from its first frame and the downstream task forgets its previous state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import mujoco
import numpy as np

from kinesis_tasks import observations, rewards
from kinesis_tasks.embodiment import load_embodiment, physics_defaults
from kinesis_tasks.imitation import ImitationConfig, MotionTrack
from kinesis_tasks.initial_pose import InitialStates
from kinesis_tasks.motions import ReferenceMotion
from kinesis_tasks.task_env import ReferenceMap
from kinesis_tasks.tasks import DirectionalTask, KickTask, ReachTask, TaskState, state_from_data

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


@dataclass(frozen=True)
class StepResult:
    """Policy input ``obs`` [D] float32 and the metrics of the state (TrackingStatus fields); ``finished``:
    the attempt at the motion ended at this state (imitation: terminated or the motion's last frame)."""

    obs: np.ndarray
    motion: str
    frame: int
    mpjpe_mm: float
    reward: float
    terminated: bool
    success: bool
    task: str
    finished: bool = False


class GoalTracker:
    """The running task and its goal; ``observe`` turns one simulation state into a StepResult.

    ``motions``: the imitation playlist (played in turn). Goals: ``track`` (a motion),
    ``set_goal(task, goal)`` (reach: point [3]; directional: Twist; kick: target point [3]).
    ``ball``: the static ball centre [3] for states that carry none.
    """

    def __init__(self, embodiment: str, task: str, motions: Sequence[ReferenceMotion], goals: dict[str, Any],
                 *, ball: np.ndarray | None = None) -> None:
        self.config = ImitationConfig.default(embodiment=embodiment)
        self.model = model = load_embodiment(embodiment)
        self.data = mujoco.MjData(model)
        tracked = observations.tracked_bodies(model, include_head=self.config.tracks_head())
        self.layout = observations.body_layout(model, tracked)
        self.motion_bodies = (_MOTION_ROOT, *tracked[1:])
        # Downstream tasks see the 7 leg keypoints (kinesis_tasks.tasks), mapped into the tracked layout as
        # the task envs do (the head stays where it is, at rest):
        self.task_layout = observations.body_layout(model, observations.tracked_bodies(model, include_head=False))
        self.reference_map = ReferenceMap.of(self.layout, self.task_layout)
        self.dt = model.opt.timestep * physics_defaults()[1]
        self.tasks = {"reach": ReachTask(dt=self.dt), "directional": DirectionalTask(dt=self.dt), "kick": KickTask()}
        self.goals = dict(goals)
        self.ball = ball
        self.playlist = list(motions)
        self.task = canonical_task(task)
        self.track: MotionTrack | None = None
        self.motion: ReferenceMotion | None = None  # the motion of ``track``
        self.start_step: int | None = None
        self.previous: TaskState | None = None
        self.last_reference: tuple[np.ndarray, np.ndarray] | None = None
        self.changed = True  # the reference changed since the last ``take_changed``
        self.last_step: int | None = None
        self.finished = False  # the attempt at ``motion`` ended at the last state observed
        self.eval_distance = self.config.eval_termination_distance
        self.embodiment = embodiment
        self.initial_states = InitialStates(model, self.layout.tracked_names)
        if self.task == "imitation" and self.playlist:
            self.track, self.motion = self._prepare(self.playlist[0]), self.playlist[0]

    def _prepare(self, motion: ReferenceMotion) -> MotionTrack:
        return MotionTrack.prepare(motion, self.motion_bodies, self.dt, embodiment=self.embodiment, nq=self.model.nq)

    def track_motion(self, motion: ReferenceMotion) -> None:
        """Switch to imitation of ``motion`` from its first frame at the next state (ValueError if unusable)."""
        self.track, self.motion = self._prepare(motion), motion
        self.task, self.start_step, self.changed, self.finished = "imitation", None, True, False

    def advance(self) -> None:
        """Start the next motion of the playlist (a motion that is not in it: the same again) at the next state."""
        names = [m.name for m in self.playlist]
        name = self.motion.name
        self.track_motion(self.playlist[(names.index(name) + 1) % len(names)] if name in names else self.motion)

    def in_playlist(self) -> bool:
        """Imitation of a motion of the playlist (not a downstream task, not a motion received as a goal)."""
        return self.task == "imitation" and self.motion is not None and any(m is self.motion for m in self.playlist)

    def initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        """(qpos [nq], qvel [nv]) at the first frame of the motion being tracked, as ImitationEnv starts it."""
        return self.initial_states(self.track, 0)

    def set_goal(self, task: str, goal: Any) -> None:
        """Run downstream ``task`` with ``goal`` from the next state."""
        self.task, self.goals[task], self.previous, self.changed = task, goal, None, True

    def take_changed(self) -> bool:
        changed, self.changed = self.changed, False
        return changed

    def observe(self, qpos: np.ndarray, sensordata: np.ndarray, sim_time: float, step: int,
                qvel: np.ndarray | None = None) -> StepResult:
        """StepResult of the state at simulation step ``step``: qpos [nq] or, with a ball, qpos [nq + 7] and
        qvel [nv + 6]; sensordata [nsensordata] (ValueError for arrays of the wrong size)."""
        ball = self._ball_state(qpos, qvel)
        if np.shape(sensordata) != (self.model.nsensordata,):
            raise ValueError(f"sensordata: expected {self.model.nsensordata} values for this embodiment, "
                             f"got {np.shape(sensordata)}")
        if self.last_step is not None and step <= self.last_step:
            self.start_step, self.previous = None, None
        self.last_step = step
        data = self.data
        data.qpos[:], data.sensordata[:], data.time = qpos[:self.model.nq], sensordata, sim_time
        mujoco.mj_kinematics(self.model, data)
        state = observations.data_state(self.layout, data)
        body_pos = state.xpos[self.layout.tracked]
        if self.task == "imitation" and self.track is not None:
            ref_now, ref_next, metrics = self._imitation(state, step)
        else:
            ref_now, ref_next, metrics = self._downstream(state, body_pos, ball)
        self.last_reference = ref_next
        obs = np.concatenate((observations.proprioception_from_state(self.layout, state),
                              observations.imitation_from_state(self.layout, state, *ref_next)))
        mpjpe = 1000.0 * float(rewards.tracking_distance(body_pos, ref_now[0], "mean"))
        return StepResult(obs=obs, mpjpe_mm=mpjpe, task=self.task, **metrics)

    def reference_motion(self) -> ReferenceMotion | None:
        """The motion being tracked (None for downstream tasks)."""
        return self.motion if self.task == "imitation" and self.track is not None else None

    def goal_reference_motion(self) -> ReferenceMotion:
        """The last downstream-task reference as a two-frame motion (positions now and one step later)."""
        pos, vel = self.last_reference
        return ReferenceMotion(name=f"{self.task}_goal", fps=1.0 / self.dt, keypoints=np.stack((pos, pos + vel * self.dt)),
                               body_names=self.motion_bodies, text=f"{self.task} goal")

    def _imitation(self, state: observations.BodyState, step: int):
        if self.finished:  # the last attempt ended: the next motion starts here
            self.advance()
        if self.start_step is None:
            self.start_step = step
        t = step - self.start_step
        ref_now, ref_next = self.track.at(t * self.track.frames_per_step), self.track.at((t + 1) * self.track.frames_per_step)
        terms = rewards.imitation_terms_from_state(self.layout, state, *ref_now, self.config.reward)
        terms["upright"] = rewards.upright_term(state.root_quat)
        reward = float(sum(self.config.reward.scales[name] * float(value) for name, value in terms.items()))
        distance = float(rewards.tracking_distance(state.xpos[self.layout.tracked], ref_now[0], "mean"))
        terminated = t > 0 and distance > self.eval_distance  # as kinesis eval: checked after each step
        self.finished = terminated or t >= self.track.steps_from(0)
        return ref_now, ref_next, dict(motion=self.motion.name, frame=int(round(t * self.track.frames_per_step)),
                                       reward=reward, terminated=terminated, success=not terminated,
                                       finished=self.finished)

    def _ball_state(self, qpos: np.ndarray, qvel: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(position [3], velocity [3]) of the ball the state carries, else of the static ball (velocity 0)."""
        nq, nv = self.model.nq, self.model.nv
        if np.shape(qpos) == (nq,):
            return self.ball, None if self.ball is None else np.zeros(3)
        if np.shape(qpos) != (nq + 7,):
            raise ValueError(f"qpos: expected {nq} values for this embodiment (or {nq + 7} with a ball), got {np.shape(qpos)}")
        if np.shape(qvel) != (nv + 6,):
            raise ValueError(f"qvel: a state with a ball needs {nv + 6} values, got {np.shape(qvel)}")
        return np.asarray(qpos[nq:nq + 3], dtype=np.float64), np.asarray(qvel[nv:nv + 3], dtype=np.float64)

    def _downstream(self, state: observations.BodyState, body_pos: np.ndarray, ball: tuple):
        if self.task == "imitation":  # no motion yet: hold the current pose
            ref = (body_pos.copy(), np.zeros_like(body_pos))
            return ref, ref, dict(motion="", frame=0, reward=0.0, terminated=False, success=True)
        self.changed = True  # the reference follows the state
        task, goal = self.tasks[self.task], self.goals[self.task]
        ball = ball if self.task == "kick" else (None, None)
        current = state_from_data(self.task_layout, self.data, ball_pos=ball[0], ball_vel=ball[1])
        reward = task.total(task.reward(self.previous, current, goal)) if self.previous is not None else 0.0
        still = (body_pos, np.zeros_like(body_pos))
        ref_now = self.reference_map(body_pos, *task.reference(self.previous, goal)) if self.previous is not None else still
        ref_next = self.reference_map(body_pos, *task.reference(current, goal))
        self.previous = current
        return ref_now, ref_next, dict(motion=f"{self.task}_goal", frame=0, reward=float(reward),
                                       terminated=bool(task.done(current, goal)), success=bool(task.success(current, goal)))

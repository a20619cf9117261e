"""What `kinesis view` shows, without any window: a policy acting on the imitation env (or a task env) and
the reference it tracks, as points to draw as ghost spheres.

``ViewSession`` steps the env with the policy one control step at a time, starts the next motion (or goal)
when an episode ends, and handles the viewer keys (``KEYS``: next/previous motion, reset, pause) so that
a window (``kinesis/view_cli.py``, MuJoCo's passive viewer) only forwards key codes and draws.
``add_spheres`` appends spheres to any ``mujoco.MjvScene`` (the viewer's ``user_scn`` or an offscreen
renderer's scene).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mujoco
import numpy as np

from kinesis_tasks import observations
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv, MotionTrack
from kinesis_tasks.motions import ReferenceMotion
from kinesis_tasks.task_env import TaskEnv, goal_to_dict

PolicyFactory = Callable[[int, int], Callable[[np.ndarray], np.ndarray]]

#: GLFW / MuJoCo key codes -> ViewSession actions. The arrows and Backspace do nothing else in MuJoCo's passive
#: viewer; N, P and R also toggle its Island, Contact Split and Reflection render flags (its own shortcuts).
KEYS: dict[int, str] = {
    262: "next", ord("N"): "next",            # Right arrow, N
    263: "previous", ord("P"): "previous",    # Left arrow, P
    259: "reset", ord("R"): "reset",          # Backspace, R
    32: "pause",                              # Space
}
REFERENCE_RGBA = (1.0, 0.55, 0.0, 0.45)   # ghost spheres: the reference keypoints (orange, translucent)
GOAL_RGBA = (0.9, 0.1, 0.9, 0.8)          # task goal marker
REFERENCE_RADIUS = 0.04
GOAL_RADIUS = 0.08


def add_spheres(scene: mujoco.MjvScene, points: np.ndarray, radius: float, rgba: Sequence[float]) -> int:
    """Append one sphere per point [N, 3] to ``scene`` (as many as fit); returns the number added."""
    added = 0
    size = np.array([radius, radius, radius])
    eye = np.eye(3).ravel()
    color = np.asarray(rgba, dtype=np.float32)
    for point in np.asarray(points, dtype=np.float64).reshape(-1, 3):
        if scene.ngeom >= scene.maxgeom:
            break
        mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, size, point, eye, color)
        scene.geoms[scene.ngeom].category = mujoco.mjtCatBit.mjCAT_DECOR
        scene.ngeom += 1
        added += 1
    return added


@dataclass
class Ghosts:
    """Points to draw: the reference keypoints and (tasks) the goal."""

    reference: np.ndarray
    goal: np.ndarray | None = None

    def draw(self, scene: mujoco.MjvScene) -> None:
        add_spheres(scene, self.reference, REFERENCE_RADIUS, REFERENCE_RGBA)
        if self.goal is not None:
            add_spheres(scene, self.goal, GOAL_RADIUS, GOAL_RGBA)


class ViewSession:
    """A policy on an imitation env (every motion from frame 0, evaluation mode) or a task env (seeded goals)."""

    def __init__(self, env: ImitationEnv | TaskEnv, policy: Callable[[np.ndarray], np.ndarray], items: Sequence[Any],
                 *, motions: Mapping[str, ReferenceMotion] | None = None, start: int = 0, seed: int = 0) -> None:
        """``items``: motion names of ``motions`` (imitation) or goals (task)."""
        if not items:
            raise ValueError("nothing to view: the motion set or goal list is empty")
        self.env, self.policy, self.items, self.seed = env, policy, list(items), seed
        self.motions = dict(motions or {})
        self.index = start % len(self.items)
        self.paused = False
        self.steps = 0
        self.episodes = 0
        self.info: dict[str, Any] = {}
        self._obs: np.ndarray | None = None
        self._tracks: dict[str, MotionTrack] = {}
        self.reset()

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def for_motions(cls, config: ImitationConfig, motions: Mapping[str, ReferenceMotion] | Sequence[ReferenceMotion],
                    factory: PolicyFactory, *, motion: str | None = None, seed: int = 0) -> ViewSession:
        from kinesis_tasks.evaluation import evaluation_config

        motion_list = list(motions.values()) if isinstance(motions, Mapping) else list(motions)
        env = ImitationEnv(evaluation_config(config), motion_list)
        names = list(env.motion_names)
        if motion is not None and motion not in names:
            shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            raise ValueError(f"--motion {motion}: not in the motion set ({len(names)} motions: {shown})")
        policy = factory(env.observation_space.shape[0], env.action_space.shape[0])
        return cls(env, policy, names, motions={m.name: m for m in motion_list},
                   start=names.index(motion) if motion else 0, seed=seed)

    @classmethod
    def for_task(cls, task: str, config: ImitationConfig, factory: PolicyFactory, *, goals: int = 10,
                 seed: int = 0) -> ViewSession:
        from kinesis_tasks.evaluation import goal_rng

        if goals < 1:
            raise ValueError(f"--goals must be >= 1, got {goals}")
        env = TaskEnv(task, config)
        items = [env.sample_goal(goal_rng(seed, i)) for i in range(goals)]
        policy = factory(env.observation_space.shape[0], env.action_space.shape[0])
        return cls(env, policy, items, seed=seed)

    # --- state ------------------------------------------------------------------------------------

    @property
    def model(self) -> mujoco.MjModel:
        return self.env.model

    @property
    def data(self) -> mujoco.MjData:
        return self.env.sim.data

    @property
    def is_task(self) -> bool:
        return isinstance(self.env, TaskEnv)

    @property
    def item_name(self) -> str:
        if self.is_task:
            return f"goal {self.index} {goal_to_dict(self.items[self.index])}"
        return str(self.items[self.index])

    def status(self) -> str:
        """One line for an overlay or a terminal."""
        head = f"{'goal' if self.is_task else 'motion'} {self.index + 1}/{len(self.items)}: {self.item_name}"
        if self.is_task:
            outcome = self.info.get("outcome")
            detail = f"step {self.info.get('step', 0)}" + (f"  {outcome}" if outcome else "")
        else:
            detail = f"frame {self.info.get('frame', 0.0):.0f}  MPJPE {self.info.get('mpjpe_mm', 0.0):.0f} mm"
        return f"{head}  {detail}{'  [paused]' if self.paused else ''}"

    # --- actions ----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Restart the current motion from frame 0 (task: the current goal from the standing start)."""
        if self.is_task:
            self._obs, info = self.env.reset(seed=self.seed, options={"goal": self.items[self.index]})
        else:
            self._obs, info = self.env.reset(seed=self.seed, options={"motion": self.items[self.index], "start": 0})
        self.info = dict(info)
        mujoco.mj_kinematics(self.model, self.data)

    def select(self, offset: int) -> None:
        self.index = (self.index + offset) % len(self.items)
        self.reset()

    def handle_key(self, keycode: int) -> str | None:
        """Apply the action of a key (``KEYS``); returns its name, None for other keys."""
        action = KEYS.get(int(keycode))
        if action == "next":
            self.select(1)
        elif action == "previous":
            self.select(-1)
        elif action == "reset":
            self.reset()
        elif action == "pause":
            self.paused = not self.paused
        return action

    def step(self) -> bool:
        """One control step (nothing while paused); an episode's end starts the next item. True if it stepped."""
        if self.paused:
            return False
        self._obs, _, terminated, truncated, info = self.env.step(self.policy(self._obs))
        self.info = dict(info)
        self.steps += 1
        if terminated or truncated:
            self.episodes += 1
            self.select(1)
        return True

    # --- drawing ----------------------------------------------------------------------------------

    def ghosts(self) -> Ghosts:
        """The reference keypoints at the current step (and the task goal)."""
        if self.is_task:
            return self._task_ghosts()
        name = self.items[self.index]
        track = self._tracks.get(name)
        if track is None:
            env = self.env
            tracked = observations.tracked_bodies(self.model, include_head=env.config.tracks_head())
            # The bodies and interpolation ImitationEnv tracks (as the policy node does).
            track = self._tracks[name] = MotionTrack.prepare(self.motions[name], ("root", *tracked[1:]), env.dt)
        return Ghosts(reference=track.at(float(self.info.get("frame", 0.0)))[0])

    def _task_ghosts(self) -> Ghosts:
        from kinesis_tasks.tasks import state_from_data

        env = self.env
        ball = (None, None)
        if env.scene.soccer is not None:
            from kinesis_tasks.soccer import ball_state

            ball = ball_state(env.scene.soccer, env.sim.data)
        state = state_from_data(env.task_layout, env.sim.data, ball_pos=ball[0], ball_vel=ball[1])
        command = env.goal.at(state.time) if env.task_name == "directional" else env.goal
        reference, _ = env.task.reference(state, command)
        goal = None
        if env.task_name in ("reach", "kick"):
            point = np.zeros(3)
            values = np.asarray(env.goal, dtype=np.float64).ravel()
            point[: min(3, values.size)] = values[:3]
            goal = point[None]
        return Ghosts(reference=np.asarray(reference), goal=goal)

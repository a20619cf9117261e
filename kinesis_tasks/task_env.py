"""Downstream tasks as gymnasium envs, for fine-tuning and evaluating an imitation policy.

``TaskEnv(task)`` runs target reach, directional control or the penalty kick with the imitation
policy's inputs and outputs: the same ``MuscleSim``, the same observation layout and size as
``ImitationEnv`` for the embodiment (504 for ``legs``, 513 for ``legs_back``), so an imitation
checkpoint plugs in unchanged. Only the reference comes from the task (``task.reference(state, goal)``,
see ``kinesis_tasks.tasks``), as in KINESIS and in the policy node.

Episode:

* start: standing at the model's rest pose (``embodiment.rest_qpos``: feet on the floor, at rest, activations 0), the
  state the simulation node starts from; the kick scene (``kinesis_tasks.soccer``, ``legs_back`` only)
  has the kicker at the origin facing the goal, the ball on the penalty spot and the keeper at the centre;
* goal: ``options["goal"]`` or drawn from the env's RNG (``reset(seed=)``) with the distribution of the
  ``goals`` section of config/tasks.yaml (``sample_goal``);
* step: reward = ``task.total(task.reward(previous, state, goal))``; terminated = ``task.done`` (success,
  fall, kick: the ball crossed the goal line); truncated = the time limit (``max_time``, default the
  task's ``max_time``). Directional goals are ``TwistSchedule``s: the command of a step is the one
  active at its start.

info of a step (same keys every step): ``success`` (the state achieves the goal), the task's metric
(``METRICS``: reach ``goal_distance_m``, directional ``velocity_error_mps``, kick
``ball_target_distance_m``; the velocity error is against the root velocity averaged over the last
``velocity_window`` s, a stride, since a walking pelvis speeds up and slows down by ~0.15 m/s within each
step), ``episode_success`` (1.0 on the last step of a successful episode, else
0.0), ``outcome`` ("" until the end, then "success", "fall", "wide" or "time limit"), ``step`` and the
reward terms as ``reward/<term>``. A reach or kick episode succeeds when it ends on success; a
directional episode (a command has no end) when it reaches the time limit without falling with a mean
velocity error at most ``velocity_tolerance``.

Tasks compute on the seven leg keypoints (``kinesis_tasks.TRACKED_BODIES``); embodiments with torso
muscles also track the head in the observation. ``ReferenceMap`` fills the observation reference: task
keypoints as the task gives them, any other tracked body (the head) where it is, at rest, as the
point-goal reference keeps every body but the root (the policy node does the same, so offline and ROS
observations agree).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping, Sequence

import gymnasium as gym
import mujoco
import numpy as np

from kinesis_tasks import observations
from kinesis_tasks.config import load_config
from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.observations import BodyLayout
from kinesis_tasks.sim import MuscleSim
from kinesis_tasks.tasks import DirectionalTask, KickTask, ReachTask, TaskState, Twist, base, state_from_data
from kinesis_tasks.tasks.directional import DirectionalConfig
from kinesis_tasks.tasks.kick import KickConfig
from kinesis_tasks.tasks.reach import ReachConfig, goal_distance
from kinesis_tasks.vector_env import BatchedEnv

TASKS: tuple[str, ...] = ("reach", "directional", "kick")
"""Downstream tasks with an env."""

METRICS: dict[str, str] = {"reach": "goal_distance_m", "directional": "velocity_error_mps",
                           "kick": "ball_target_distance_m"}
"""Per task, the info key of its metric (the episode's value: final for reach and kick, mean for directional)."""

KICK_EMBODIMENT = "legs_back"
"""The kick scene's embodiment (kinesis_tasks.soccer)."""


def check_task(task: str) -> str:
    """``task`` if it is one of ``TASKS`` (ValueError naming it otherwise)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return task


def time_limit(task: str, max_time: float | None = None) -> float:
    """Episode time limit in s: ``max_time`` (> 0), or the task's ``max_time`` of config/tasks.yaml."""
    limit = float(base.task_config(check_task(task))["max_time"] if max_time is None else max_time)
    if not limit > 0:
        raise ValueError(f"max_time must be > 0 s, got {max_time}")
    return limit


def default_embodiment(task: str) -> str:
    """The embodiment a task runs by default: legs_back for the kick, else config/imitation.yaml's."""
    return KICK_EMBODIMENT if check_task(task) == "kick" else load_config("imitation")["embodiment"]


# --- goals ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwistSchedule:
    """Directional goal: ``twists[i]`` is commanded from ``start_times[i]`` (s, increasing, first 0) on."""

    start_times: tuple[float, ...]
    twists: tuple[Twist, ...]

    def __post_init__(self) -> None:
        times = np.asarray(self.start_times, dtype=np.float64)
        if len(times) == 0 or len(times) != len(self.twists) or times[0] != 0.0 or np.any(np.diff(times) <= 0):
            raise ValueError(f"TwistSchedule: need one twist per start time, increasing from 0 s; got "
                             f"{len(self.twists)} twists at {list(self.start_times)}")

    @classmethod
    def constant(cls, twist: Twist) -> TwistSchedule:
        return cls((0.0,), (twist,))

    def at(self, time: float) -> Twist:
        """The command active at ``time`` s."""
        return self.twists[max(0, int(np.searchsorted(self.start_times, time, side="right")) - 1)]


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


@dataclass(frozen=True)
class ReachGoals:
    """Reach goals: a point on the floor at ``distance`` (m) and ``angle`` (rad, from the facing heading)."""

    distance: tuple[float, float] = (1.0, 4.0)
    angle: tuple[float, float] = (-np.pi / 2, np.pi / 2)

    def sample(self, rng: np.random.Generator, start: TaskState) -> np.ndarray:
        """[x, y, 0] relative to ``start``'s root and heading."""
        distance, bearing = _uniform(rng, self.distance), start.heading + _uniform(rng, self.angle)
        x, y = start.root_pos[:2] + distance * np.array([np.cos(bearing), np.sin(bearing)])
        return np.array([x, y, 0.0])


@dataclass(frozen=True)
class DirectionalGoals:
    """Directional goals: Twist schedules of commands holding ``segment_time`` s each (see config/tasks.yaml)."""

    speed: tuple[float, float] = (0.0, 1.5)
    direction: tuple[float, float] = (-0.5, 0.5)
    turn_rate: tuple[float, float] = (-0.5, 0.5)
    segment_time: tuple[float, float] = (2.0, 5.0)
    stop_probability: float = 0.1

    def sample(self, rng: np.random.Generator, max_time: float) -> TwistSchedule:
        """Commands covering [0, max_time): each all-zero with ``stop_probability``, else uniform in the ranges."""
        times, twists, time = [], [], 0.0
        while time < max_time:
            if rng.uniform() < self.stop_probability:
                twist = Twist()
            else:
                speed, direction = _uniform(rng, self.speed), _uniform(rng, self.direction)
                twist = Twist(speed * np.cos(direction), speed * np.sin(direction), _uniform(rng, self.turn_rate))
            times.append(time)
            twists.append(twist)
            time += _uniform(rng, self.segment_time)
        return TwistSchedule(tuple(times), tuple(twists))


@dataclass(frozen=True)
class KickGoals:
    """Kick goals: points on the goal line, ``target_y`` across (from the goal centre) and ``target_z`` up (m)."""

    target_y: tuple[float, float] = (-2.8, 2.8)
    target_z: tuple[float, float] = (0.2, 1.8)

    def sample(self, rng: np.random.Generator, mouth: Any) -> np.ndarray:
        """[line x, y, z] inside the goal mouth ``mouth`` (a ``GoalMouth``)."""
        return np.array([mouth.line_x, mouth.centre_y + _uniform(rng, self.target_y), _uniform(rng, self.target_z)])


_GOALS = {"reach": ReachGoals, "directional": DirectionalGoals, "kick": KickGoals}


def goal_distribution(task: str) -> ReachGoals | DirectionalGoals | KickGoals:
    """The ``goals.<task>`` distribution of config/tasks.yaml (ValueError for unknown keys or bad ranges)."""
    cls = _GOALS[check_task(task)]
    values = dict(load_config("tasks").get("goals", {}).get(task, {}))
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"config/tasks.yaml goals.{task}: unknown keys {unknown} (known: {sorted(known)})")
    for name, value in values.items():
        if name != "stop_probability":
            if len(value) != 2 or not value[0] <= value[1]:
                raise ValueError(f"config/tasks.yaml goals.{task}.{name}: expected [low, high], got {value}")
            values[name] = (float(value[0]), float(value[1]))
    return cls(**values)


def goal_to_dict(goal: Any) -> dict[str, Any]:
    """JSON-ready description of a goal (point [3] or TwistSchedule)."""
    if isinstance(goal, TwistSchedule):
        return {"commands": [{"start_s": round(float(t), 4), "linear_x": round(w.linear_x, 4),
                              "linear_y": round(w.linear_y, 4), "angular_z": round(w.angular_z, 4)}
                             for t, w in zip(goal.start_times, goal.twists)]}
    return {"point": [round(float(v), 4) for v in np.asarray(goal)]}


# --- scene and reference ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Scene:
    """A compiled model for a task (shared read-only by envs) and, for the kick, its soccer layout."""

    model: mujoco.MjModel
    soccer: Any = None  # kinesis_tasks.soccer.SoccerLayout for the kick

    @classmethod
    def load(cls, task: str, embodiment: str) -> Scene:
        """``embodiment`` for reach and directional; the soccer scene for the kick (ValueError unless legs_back)."""
        if check_task(task) != "kick":
            return cls(load_embodiment(embodiment))
        if embodiment != KICK_EMBODIMENT:
            raise ValueError(f"task kick runs the soccer scene with the {KICK_EMBODIMENT} embodiment (290 muscles); "
                             f"got embodiment {embodiment!r}")
        from kinesis_tasks.soccer import build_soccer_model

        return cls(*build_soccer_model())


@dataclass(frozen=True, eq=False)
class ReferenceMap:
    """Task reference (task keypoints) -> reference of the observation's tracked bodies (module docstring)."""

    source: np.ndarray
    """[K_obs] row of each observed tracked body in the task reference, -1 for bodies the task has not."""

    @classmethod
    def of(cls, layout: BodyLayout, task_layout: BodyLayout) -> ReferenceMap:
        names = task_layout.tracked_names
        return cls(np.array([names.index(n) if n in names else -1 for n in layout.tracked_names], dtype=np.intp))

    def __call__(self, tracked_pos: np.ndarray, ref_pos: np.ndarray,
                 ref_vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pos, vel) [K_obs, 3] from the current tracked positions [K_obs, 3] and the task reference [K, 3]."""
        pos, vel = np.array(tracked_pos, dtype=np.float64), np.zeros((len(self.source), 3))
        known = self.source >= 0
        pos[known], vel[known] = ref_pos[self.source[known]], ref_vel[self.source[known]]
        return pos, vel


def make_task(task: str, dt: float) -> ReachTask | DirectionalTask | KickTask:
    """The task object with config/tasks.yaml parameters and no time limit of its own (the env truncates)."""
    if check_task(task) == "reach":
        return ReachTask(replace(ReachConfig.from_config(), max_time=math.inf), dt=dt)
    if task == "directional":
        return DirectionalTask(replace(DirectionalConfig.from_config(), max_time=math.inf), dt=dt)
    return KickTask(replace(KickConfig.from_config(), max_time=math.inf))


# --- the env -------------------------------------------------------------------------------------


class TaskEnv(gym.Env):
    """A downstream task for the imitation policy: Box action [-1, 1]^nu, Box observation [D] float32.

    ``config`` supplies the embodiment, control mode, muscle condition and head tracking (its motion and
    reward settings are not used); default: config/imitation.yaml with ``default_embodiment(task)``.
    reset options: ``{"goal": goal}`` (reach: point [2|3]; directional: Twist or TwistSchedule; kick:
    target [3]); ``"qpos"``, ``"qvel"`` replace the standing start.
    """

    metadata = {"render_modes": []}

    def __init__(self, task: str, config: ImitationConfig | None = None, *, max_time: float | None = None,
                 scene: Scene | None = None) -> None:
        self.task_name = check_task(task)
        self.config = config if config is not None else ImitationConfig.default(embodiment=default_embodiment(task))
        self.scene = scene if scene is not None else Scene.load(task, self.config.embodiment)
        self.model = self.scene.model
        self.sim = MuscleSim(self.model, control_mode=self.config.control_mode,
                             muscle_condition=self.config.muscle_condition)
        self.dt = self.sim.control_dt
        self.layout = observations.body_layout(
            self.model, observations.tracked_bodies(self.model, include_head=self.config.tracks_head()))
        legs = observations.tracked_bodies(self.model, include_head=False)
        self.task_layout = observations.body_layout(self.model, legs)
        self.reference_map = ReferenceMap.of(self.layout, self.task_layout)
        self.task = make_task(task, self.dt)
        self.max_time = time_limit(task, max_time)
        self.max_steps = max(1, int(round(self.max_time / self.dt)))
        self.goals = goal_distribution(task)
        self.metric_name = METRICS[task]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.layout.full_size,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.model.nu,), np.float32)
        self.start_state = self._task_state()  # MuscleSim starts at rest_qpos
        self.goal: Any = None
        self.episode_metric = math.nan
        self._previous: TaskState | None = None
        self._t = 0
        self._metric_sum = 0.0
        self._roots: deque[np.ndarray] = deque(maxlen=self._window_steps() + 1)  # directional: recent root x-y

    def sample_goal(self, rng: np.random.Generator, start: TaskState | None = None) -> Any:
        """A goal of the task's distribution (``start`` default: the standing start state)."""
        start = start if start is not None else self.start_state
        if self.task_name == "reach":
            return self.goals.sample(rng, start)
        if self.task_name == "directional":
            return self.goals.sample(rng, self.max_time)
        return self.goals.sample(rng, self.task.mouth)

    # --- gymnasium API --------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - {"goal", "qpos", "qvel"})
        if unknown:
            raise ValueError(f"options: unknown keys {unknown}")
        self.sim.reset(options.get("qpos"), options.get("qvel"))
        state = self._task_state()
        goal = options.get("goal")
        if goal is None:
            goal = self.sample_goal(self.np_random, state)
        elif self.task_name == "directional" and isinstance(goal, Twist):
            goal = TwistSchedule.constant(goal)
        elif self.task_name == "directional" and not isinstance(goal, TwistSchedule):
            raise ValueError(f"options['goal']: a directional goal is a Twist or TwistSchedule, "
                             f"got {type(goal).__name__}")
        self.goal, self._previous, self._t = goal, state, 0
        self._metric_sum, self.episode_metric = 0.0, math.nan
        self._roots.clear()
        self._roots.append(state.root_pos[:2].copy())
        return self._observation(state), {"goal": goal_to_dict(goal)}

    def step(self, action: np.ndarray):
        if self._previous is None:
            raise RuntimeError("step() called before reset()")
        self.sim.step(action)
        mujoco.mj_kinematics(self.model, self.sim.data)
        self._t += 1
        previous, state = self._previous, self._task_state()
        command = self._command(previous)  # the goal the policy acted on during this step
        terms = self.task.reward(previous, state, command)
        reward = float(self.task.total(terms))
        success = bool(self.task.success(state, command))
        terminated = bool(self.task.done(state, command))
        truncated = not terminated and self._t >= self.max_steps
        metric = self._metric(state, command)
        self._metric_sum += metric
        self.episode_metric = self._metric_sum / self._t if self.task_name == "directional" else metric
        outcome = self._outcome(state, success, terminated, truncated)
        if self.task_name == "directional":
            episode_success = truncated and self.episode_metric <= self.task.config.velocity_tolerance
        else:
            episode_success = terminated and success
        self._previous = state
        info = {
            "success": success,
            self.metric_name: metric,
            "episode_success": float(episode_success),
            "outcome": outcome,
            "step": self._t,
            **{f"reward/{name}": float(value) for name, value in terms.items()},
        }
        return self._observation(state), reward, terminated, truncated, info

    # --- helpers --------------------------------------------------------------------------------

    def _task_state(self) -> TaskState:
        ball_pos = ball_vel = None
        if self.scene.soccer is not None:
            from kinesis_tasks.soccer import ball_state

            ball_pos, ball_vel = ball_state(self.scene.soccer, self.sim.data)
        return state_from_data(self.task_layout, self.sim.data, ball_pos=ball_pos, ball_vel=ball_vel)

    def _command(self, state: TaskState) -> Any:
        return self.goal.at(state.time) if self.task_name == "directional" else self.goal

    def _metric(self, state: TaskState, command: Any) -> float:
        if self.task_name == "reach":
            return goal_distance(state, command)
        if self.task_name == "directional":  # walking velocity: the root's mean over the last velocity_window
            self._roots.append(state.root_pos[:2].copy())
            velocity = (self._roots[-1] - self._roots[0]) / ((len(self._roots) - 1) * self.dt)
            return float(np.linalg.norm(velocity - self.task.goal(state, command).velocity))
        return float(np.linalg.norm(state.ball_pos - np.asarray(command, dtype=np.float64)))

    def _window_steps(self) -> int:
        window = getattr(self.task.config, "velocity_window", 0.0)
        return max(1, int(round(window / self.dt)))

    def _outcome(self, state: TaskState, success: bool, terminated: bool, truncated: bool) -> str:
        if truncated:
            return "time limit"
        if not terminated:
            return ""
        if success and self.task_name != "directional":  # a directional episode ends early only by a fall,
            return "success"                                # even one whose velocity matched at that step
        return "fall" if base.fallen(state, self.task.config.fall_height) else "wide"

    def _observation(self, state: TaskState) -> np.ndarray:
        """Policy input with the task's reference for the next control step."""
        ref_pos, ref_vel = self.task.reference(state, self._command(state))
        data = self.sim.data
        tracked = data.xpos[self.layout.body_ids[self.layout.tracked]]
        pos, vel = self.reference_map(tracked, ref_pos, ref_vel)
        return observations.full(self.model, data, pos, vel, layout=self.layout)


class VectorTaskEnv(BatchedEnv):
    """``num_envs`` TaskEnvs sharing one compiled scene, same-step autoreset (``kinesis_tasks.vector_env``).

    ``reset(seed=s)`` seeds env i with s + i; each env draws a new goal from its RNG at every reset.
    """

    def __init__(self, num_envs: int, task: str, config: ImitationConfig | None = None, *,
                 max_time: float | None = None) -> None:
        self.task = check_task(task)
        self.config = config if config is not None else ImitationConfig.default(embodiment=default_embodiment(task))
        scene = Scene.load(task, self.config.embodiment)  # compiled once, shared (read-only) by the envs
        super().__init__(lambda: TaskEnv(task, self.config, max_time=max_time, scene=scene), num_envs)

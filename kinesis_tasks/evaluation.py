"""Evaluate a policy: on a motion set (imitation) or on a seeded set of downstream-task goals.

``evaluate``: every motion once, from its first frame, deterministically. The env runs in evaluation mode
(``ImitationConfig.evaluation``: start at frame 0, terminate when the mean tracked-body distance exceeds
0.5 m). ``starts=K`` also starts each motion at K - 1 more frames spread over its first half
(``start_frames``): a motion entered mid-stride, as clips from other sources are, tests what frame 0 alone
does not.

``evaluate_task``: ``goals`` episodes of a ``TaskEnv`` (reach, directional, kick), each from the standing
start. Goal i of seed s is drawn from ``np.random.default_rng([s, i])`` (``goal_rng``) with the task's
distribution (``TaskEnv.sample_goal``), so a seed always gives the same goals and the first goals of a
larger set are those of a smaller one.

Policies are plain functions obs [D] -> action [nu]. For ``workers > 1`` the policy is built inside each
worker process by a picklable *policy factory* ``factory(obs_size, action_size) -> policy``; episodes
are handed out one at a time and the results come back in order, identical to ``workers=1``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any, TypeVar

import numpy as np

from kinesis_tasks.controllers import FALLBACKS, fallback_action
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.metrics import MotionResult
from kinesis_tasks.motions import ReferenceMotion
from kinesis_tasks.task_env import TaskEnv, check_task, default_embodiment, goal_to_dict

PolicyFn = Callable[[np.ndarray], np.ndarray]
"""obs [D] float32 -> action [nu] in [-1, 1] (clipped by the simulator)."""

PolicyFactory = Callable[[int, int], PolicyFn]
"""(observation size, action size) -> PolicyFn; must be picklable for workers > 1."""


@dataclass(frozen=True)
class ZeroPolicy:
    """The untrained baseline: action 0 for every muscle (target length mode: half its maximum length)."""

    description: str = FALLBACKS["zero-action"]

    def __call__(self, obs_size: int, action_size: int) -> PolicyFn:
        action = np.zeros(action_size, dtype=np.float32)
        return lambda obs: action


@dataclass(frozen=True)
class FallbackPolicy:
    """A fallback controller of ``controllers.FALLBACKS`` by name (``--checkpoint hold-pose``): the constant
    action ``controllers.fallback_action`` gives for the embodiment, as the policy node runs it."""

    name: str = "hold-pose"
    embodiment: str = "legs"
    control_mode: str = "target_length"
    description: str = ""
    """Default: the fallback's entry of ``FALLBACKS``."""

    def __post_init__(self) -> None:
        if not self.description:
            object.__setattr__(self, "description", FALLBACKS[self.name])

    def __call__(self, obs_size: int, action_size: int) -> PolicyFn:
        from kinesis_tasks.embodiment import load_embodiment

        action = fallback_action(self.name, load_embodiment(self.embodiment), self.control_mode).astype(np.float32)
        if action.size != action_size:
            raise ValueError(f"fallback {self.name} of {self.embodiment} has {action.size} actions, the env {action_size}")
        return lambda obs: action


def evaluate_motion(
    env: ImitationEnv,
    policy: PolicyFn,
    motion: str,
    *,
    seed: int | None = 0,
    initial_state: Mapping[str, np.ndarray] | None = None,
    start: int = 0,
) -> MotionResult:
    """Run ``motion`` once from frame ``start`` with ``policy`` until termination or its end.

    ``initial_state`` ({"qpos", "qvel"[, "act"]}) replaces the state derived from the reference.
    """
    obs, _ = env.reset(seed=seed, options={"motion": motion, "start": start, **(initial_state or {})})
    errors = []
    terminated = truncated = False
    while not (terminated or truncated):
        obs, _, terminated, truncated, info = env.step(policy(obs))
        errors.append(info["mpjpe_mm"])
    steps = len(errors)
    return MotionResult(
        motion=motion,
        success=not terminated,
        mpjpe_mm=float(np.mean(errors)),
        frames_tracked=steps - int(terminated),
        frames_total=env.max_episode_steps,
        start=start,
    )


def start_frames(motion: ReferenceMotion, starts: int) -> list[int]:
    """``starts`` start frames of ``motion``: 0 and evenly spread over its first half."""
    if starts < 1:
        raise ValueError(f"starts must be >= 1, got {starts}")
    return sorted({int(k * (motion.num_frames - 1) / (2 * starts)) for k in range(starts)})


def _evaluate_episode(env: ImitationEnv, policy: PolicyFn, item: tuple[str, int], *, seed: int) -> MotionResult:
    motion, start = item
    return evaluate_motion(env, policy, motion, seed=seed, start=start)


def evaluation_config(config: ImitationConfig | None = None, **overrides: Any) -> ImitationConfig:
    """``config`` (default: config/imitation.yaml) with ``overrides`` and evaluation mode on."""
    config = config if config is not None else ImitationConfig.default()
    return replace(config, **overrides, evaluation=True)


def evaluate(
    motions: Mapping[str, ReferenceMotion] | Sequence[ReferenceMotion],
    policy_factory: PolicyFactory,
    *,
    config: ImitationConfig | None = None,
    workers: int = 1,
    seed: int = 0,
    on_result: Callable[[MotionResult], None] | None = None,
    starts: int = 1,
) -> list[MotionResult]:
    """Evaluate every motion from each of its ``start_frames(motion, starts)``; results in motion order, then
    start frame. ``on_result`` is called as each episode finishes."""
    config = _picklable(evaluation_config(config))
    motion_list = list(motions.values()) if isinstance(motions, Mapping) else list(motions)
    items = [(motion.name, frame) for motion in motion_list for frame in start_frames(motion, starts)]
    return _run_episodes(partial(ImitationEnv, config, motion_list), policy_factory, items,
                         partial(_evaluate_episode, seed=seed), workers=workers, on_result=on_result)


# --- downstream tasks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskResult:
    """One evaluation episode of a downstream task.

    goal: JSON-ready goal (``task_env.goal_to_dict``). outcome: "success", "fall", "wide" (kick: the ball
    crossed the goal line outside the goal) or "time limit". time_to_success_s: time of the first state
    that achieves the goal (directional: root velocity within tolerance of the command), None if none.
    metric_name / metric: the task's metric (``task_env.METRICS``) for the episode: final root-goal
    distance (reach, m), final ball-target distance (kick, m), mean velocity error (directional, m/s).
    """

    index: int
    goal: dict[str, Any]
    success: bool
    outcome: str
    steps: int
    time_s: float
    time_to_success_s: float | None
    metric_name: str
    metric: float
    episode_return: float

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values[values.pop("metric_name")] = values.pop("metric")
        return values


def goal_rng(seed: int, index: int) -> np.random.Generator:
    """The generator goal ``index`` of evaluation seed ``seed`` is drawn from."""
    return np.random.default_rng([int(seed), int(index)])


def evaluate_goal(env: TaskEnv, policy: PolicyFn, goal: Any, *, index: int = 0) -> TaskResult:
    """Run one episode of ``env`` with ``goal`` from the standing start until it ends."""
    obs, _ = env.reset(options={"goal": goal})
    episode_return, first_success, terminated, truncated = 0.0, None, False, False
    while not (terminated or truncated):
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        episode_return += reward
        if first_success is None and info["success"]:
            first_success = info["step"] * env.dt
    steps = info["step"]
    return TaskResult(index=index, goal=goal_to_dict(env.goal), success=bool(info["episode_success"]),
                      outcome=info["outcome"], steps=steps, time_s=steps * env.dt, time_to_success_s=first_success,
                      metric_name=env.metric_name, metric=float(env.episode_metric), episode_return=episode_return)


def evaluate_goal_index(env: TaskEnv, policy: PolicyFn, index: int, *, seed: int) -> TaskResult:
    """``evaluate_goal`` with goal ``index`` of ``seed`` (see the module docstring)."""
    return evaluate_goal(env, policy, env.sample_goal(goal_rng(seed, index)), index=index)


def evaluate_task(
    task: str,
    policy_factory: PolicyFactory,
    *,
    goals: int = 10,
    seed: int = 0,
    config: ImitationConfig | None = None,
    max_time: float | None = None,
    workers: int = 1,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    """Evaluate ``goals`` seeded goals of ``task`` (reach, directional, kick); results in goal order.

    ``config`` gives the embodiment and muscle settings (default: ``default_embodiment(task)``);
    ``max_time`` overrides the task's episode time limit (s).
    """
    check_task(task)
    if int(goals) < 1:
        raise ValueError(f"goals must be >= 1, got {goals}")
    config = _picklable(config if config is not None else ImitationConfig.default(embodiment=default_embodiment(task)))
    return _run_episodes(partial(TaskEnv, task, config, max_time=max_time), policy_factory, list(range(int(goals))),
                         partial(evaluate_goal_index, seed=seed), workers=workers, on_result=on_result)


def summarize_tasks(results: Sequence[TaskResult]) -> dict[str, Any]:
    """Success rate, mean return, mean time to success (of the successes; None without any), mean episode
    time (to success, fall or time limit: how long the body stayed up, for directional), mean metric."""
    if not results:
        raise ValueError("results: no goals were evaluated")
    times = [r.time_to_success_s for r in results if r.success and r.time_to_success_s is not None]
    return {
        "goals": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "mean_return": float(np.mean([r.episode_return for r in results])),
        "mean_time_to_success_s": float(np.mean(times)) if times else None,
        "mean_episode_s": float(np.mean([r.time_s for r in results])),
        f"mean_{results[0].metric_name}": float(np.mean([r.metric for r in results])),
        "outcomes": {o: sum(r.outcome == o for r in results) for o in sorted({r.outcome for r in results})},
    }


# --- episodes in this process or in worker processes ---------------------------------------------

Item = TypeVar("Item")
Result = TypeVar("Result")


def _picklable(config: ImitationConfig) -> ImitationConfig:
    """``config`` with plain-dict reward scales (a YAML-loaded mapping may not pickle to spawned workers)."""
    return replace(config, reward=replace(config.reward, scales=dict(config.reward.scales)))


def _run_episodes(
    make_env: Callable[[], Any],
    policy_factory: PolicyFactory,
    items: Sequence[Item],
    run_one: Callable[[Any, PolicyFn, Item], Result],
    *,
    workers: int,
    on_result: Callable[[Result], None] | None,
) -> list[Result]:
    """``run_one(env, policy, item)`` for every item, in order; ``workers > 1``: spawned processes
    (``make_env`` and ``run_one`` must be picklable), each with its own env and policy."""
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results = []
    if workers == 1 or len(items) == 1:
        env = make_env()
        policy = policy_factory(env.observation_space.shape[0], env.action_space.shape[0])
        for item in items:
            results.append(run_one(env, policy, item))
            if on_result is not None:
                on_result(results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # no fork after torch/mujoco threads started
    with context.Pool(min(int(workers), len(items)), _init_worker, (make_env, policy_factory, run_one)) as pool:
        for result in pool.imap(_run_in_worker, items, chunksize=1):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


_WORKER: dict[str, Any] = {}


def _init_worker(make_env: Callable[[], Any], factory: PolicyFactory, run_one: Callable) -> None:
    _WORKER.update(env=make_env(), factory=factory, run_one=run_one, policy=None)


def _run_in_worker(item: Any) -> Any:
    env = _WORKER["env"]
    if _WORKER["policy"] is None:  # built here, not in the initializer, so that its errors reach the caller
        _WORKER["policy"] = _WORKER["factory"](env.observation_space.shape[0], env.action_space.shape[0])
    return _WORKER["run_one"](env, _WORKER["policy"], item)

"""Evaluate a policy on a motion set: every motion once, from its first frame, deterministically.

The env runs in evaluation mode (``ImitationConfig.evaluation``: start at frame 0, terminate when the
mean tracked-body distance exceeds 0.5 m). Policies are plain functions obs [D] -> action [nu]. For
``workers > 1`` the policy is built inside each worker process by a picklable *policy factory*
``factory(obs_size, action_size) -> policy``; motions are handed out one at a time and the results
come back in motion order, identical to ``workers=1``.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.metrics import MotionResult
from kinesis_tasks.motions import ReferenceMotion

PolicyFn = Callable[[np.ndarray], np.ndarray]
"""obs [D] float32 -> action [nu] in [-1, 1] (clipped by the simulator)."""

PolicyFactory = Callable[[int, int], PolicyFn]
"""(observation size, action size) -> PolicyFn; must be picklable for workers > 1."""


@dataclass(frozen=True)
class ZeroPolicy:
    """The untrained baseline: action 0 for every muscle (target length mode: half its maximum length)."""

    description: str = "zero action (no checkpoint)"

    def __call__(self, obs_size: int, action_size: int) -> PolicyFn:
        action = np.zeros(action_size, dtype=np.float32)
        return lambda obs: action


def evaluate_motion(
    env: ImitationEnv,
    policy: PolicyFn,
    motion: str,
    *,
    seed: int | None = 0,
    initial_state: Mapping[str, np.ndarray] | None = None,
) -> MotionResult:
    """Run ``motion`` once from frame 0 with ``policy`` until termination or its end.

    ``initial_state`` ({"qpos", "qvel"[, "act"]}) replaces the state derived from the reference.
    """
    obs, _ = env.reset(seed=seed, options={"motion": motion, "start": 0, **(initial_state or {})})
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
    )


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
) -> list[MotionResult]:
    """Evaluate every motion once; results in motion order. ``on_result`` is called as each one finishes."""
    config = evaluation_config(config)
    motion_list = list(motions.values()) if isinstance(motions, Mapping) else list(motions)
    names = [motion.name for motion in motion_list]
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    results = []
    if workers == 1 or len(names) == 1:
        env = ImitationEnv(config, motion_list)
        policy = policy_factory(env.observation_space.shape[0], env.action_space.shape[0])
        for name in names:
            results.append(evaluate_motion(env, policy, name, seed=seed))
            if on_result is not None:
                on_result(results[-1])
        return results
    context = multiprocessing.get_context("spawn")  # no fork after torch/mujoco threads started
    picklable = replace(config, reward=replace(config.reward, scales=dict(config.reward.scales)))
    with context.Pool(min(int(workers), len(names)), _init_worker, (picklable, motion_list, policy_factory, seed)) as pool:
        for result in pool.imap(_evaluate_in_worker, names, chunksize=1):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


_WORKER: dict[str, Any] = {}


def _init_worker(config: ImitationConfig, motions: list[ReferenceMotion], factory: PolicyFactory, seed: int) -> None:
    _WORKER.update(env=ImitationEnv(config, motions), factory=factory, seed=seed, policy=None)


def _evaluate_in_worker(name: str) -> MotionResult:
    env = _WORKER["env"]
    if _WORKER["policy"] is None:  # built here, not in the initializer, so that its errors reach the caller
        _WORKER["policy"] = _WORKER["factory"](env.observation_space.shape[0], env.action_space.shape[0])
    return evaluate_motion(env, _WORKER["policy"], name, seed=_WORKER["seed"])

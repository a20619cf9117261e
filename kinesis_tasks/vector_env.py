"""VectorImitationEnv: N ImitationEnvs stepped by one call, with same-step autoreset.

``BatchedEnv`` is the generic part (any gymnasium env made by a ``make_env()``; the downstream-task
``VectorTaskEnv`` of ``kinesis_tasks.task_env`` uses it too); ``VectorImitationEnv`` adds the motion set.

``step(actions [N, nu])`` returns obs [N, D] float32, rewards [N], terminated [N], truncated [N] and
infos (a dict of [N] arrays, gymnasium's vector convention). An env whose episode ended is reset in the
same call: its row of ``obs`` is the first observation of the new episode, ``infos["final_obs"][i]``
the last observation of the ended one (``infos["_final_obs"][i]`` is True), and the other infos are
those of the ending step. ``reset(seed=s)`` seeds env i with s + i, so the arrays equal those of N
single envs reset with those seeds and stepped in turn.

The envs live behind a backend: ``InProcessBackend`` steps them in this process one after another. A
worker-pool backend implements the same methods (reset, step, call, get_attr, close) and runs ``step_with_autoreset``
inside its workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.motions import ReferenceMotion


class StepResult(NamedTuple):
    """One env's step; ``final_obs`` is the last observation of an ended episode (then ``obs`` is the reset one)."""

    obs: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    final_obs: np.ndarray | None


def step_with_autoreset(env: gym.Env, action: np.ndarray) -> StepResult:
    """Step ``env``; if the episode ends, reset it (its own RNG picks the next motion)."""
    obs, reward, terminated, truncated, info = env.step(action)
    if not (terminated or truncated):
        return StepResult(obs, reward, terminated, truncated, info, None)
    reset_obs, _ = env.reset()
    return StepResult(reset_obs, reward, terminated, truncated, info, obs)


class Backend(Protocol):
    """Where the envs run."""

    def reset(self, seeds: Sequence[int | None], options: Mapping[str, Any] | None) -> list[tuple[np.ndarray, dict]]: ...

    def step(self, actions: np.ndarray) -> list[StepResult]: ...

    def call(self, method: str, *args: Any) -> list[Any]: ...

    def get_attr(self, name: str) -> list[Any]: ...

    def close(self) -> None: ...


class InProcessBackend:
    """The envs in this process, stepped in order."""

    def __init__(self, make_env: Callable[[], gym.Env], num_envs: int) -> None:
        self.envs = [make_env() for _ in range(num_envs)]

    def reset(self, seeds: Sequence[int | None], options: Mapping[str, Any] | None) -> list[tuple[np.ndarray, dict]]:
        return [env.reset(seed=seed, options=options) for env, seed in zip(self.envs, seeds)]

    def step(self, actions: np.ndarray) -> list[StepResult]:
        return [step_with_autoreset(env, action) for env, action in zip(self.envs, actions)]

    def call(self, method: str, *args: Any) -> list[Any]:
        return [getattr(env, method)(*args) for env in self.envs]

    def get_attr(self, name: str) -> list[Any]:
        return [getattr(env, name) for env in self.envs]

    def close(self) -> None:
        self.envs = []


class BatchedEnv(gym.vector.VectorEnv):
    """``num_envs`` envs made by ``make_env()``, stepped in this process (see the module docstring)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, make_env: Callable[[], gym.Env], num_envs: int) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.backend: Backend = InProcessBackend(make_env, self.num_envs)
        self.single_observation_space = self.backend.get_attr("observation_space")[0]
        self.single_action_space = self.backend.get_attr("action_space")[0]
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._was_reset = False

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: Mapping[str, Any] | None = None):
        """Reset every env (env i with seed + i, or seed[i]); ``options`` go to every env."""
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seeds)}")
        results = self.backend.reset(seeds, options)
        self._was_reset = True
        obs = np.stack([obs for obs, _ in results])
        return obs, _stack_infos([info for _, info in results])

    def _checked_actions(self, actions: np.ndarray) -> np.ndarray:
        """``actions`` as an array of shape [num_envs, nu]; RuntimeError before reset(), ValueError for another shape."""
        if not self._was_reset:
            raise RuntimeError("step() called before reset()")
        actions = np.asarray(actions)
        expected = (self.num_envs, self.single_action_space.shape[0])
        if actions.shape != expected:
            raise ValueError(f"actions: expected shape {expected}, got {actions.shape}")
        return actions

    def step(self, actions: np.ndarray):
        results = self.backend.step(self._checked_actions(actions))
        obs = np.stack([r.obs for r in results])
        rewards = np.array([r.reward for r in results], dtype=np.float64)
        terminated = np.array([r.terminated for r in results], dtype=bool)
        truncated = np.array([r.truncated for r in results], dtype=bool)
        infos = _stack_infos([r.info for r in results])
        ended = np.array([r.final_obs is not None for r in results], dtype=bool)
        final_obs = np.zeros_like(obs)
        for i in np.flatnonzero(ended):
            final_obs[i] = results[i].final_obs
        infos["final_obs"], infos["_final_obs"] = final_obs, ended
        return obs, rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        if hasattr(self, "backend"):  # absent when a subclass's __init__ failed before building it
            self.backend.close()


class VectorImitationEnv(BatchedEnv):
    """``num_envs`` imitation envs with one config and motion set (see the module docstring)."""

    def __init__(
        self,
        num_envs: int,
        config: ImitationConfig | None = None,
        motions: Mapping[str, ReferenceMotion] | Sequence[ReferenceMotion] | None = None,
    ) -> None:
        self.config = config if config is not None else ImitationConfig.default()
        if motions is None:
            from kinesis_tasks.motions import load_library

            motions = load_library(self.config.motions, split=self.config.split)  # read once, shared by the envs
        model = load_embodiment(self.config.embodiment)  # compiled once, shared (read-only) by the envs
        super().__init__(lambda: ImitationEnv(self.config, motions, model=model), num_envs)
        self.motion_names: tuple[str, ...] = self.backend.get_attr("motion_names")[0]

    def set_motion_weights(self, weights: Mapping[str, float] | Sequence[float] | np.ndarray | None) -> None:
        """Motion sampling weights of every env (see ``ImitationEnv.set_motion_weights``)."""
        self.backend.call("set_motion_weights", weights)


def _stack_infos(infos: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """List of per-env info dicts (same keys) -> dict of [N] arrays."""
    return {key: np.array([info[key] for info in infos]) for key in infos[0]}

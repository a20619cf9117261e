"""Rollout samplers: in-process, multiprocessing worker processes, Ray actors; same batches for the same seed.

Every sampler owns ``W`` ``RolloutWorker`` objects (in this process, one per spawned process, or one per
Ray actor). Worker ``w`` steps its own vector env of ``E`` envs, reset once with seed ``seed + w E`` (env
``i`` of the worker gets ``seed + w E + i``), and draws action noise from its own torch generator seeded
from ``(seed, w)``. A collection sends the policy's state dict to every worker, each runs
``ceil(min_samples / (W E))`` steps with one batched policy call per step (one torch thread, so the
arithmetic does not depend on where it runs), and the chunks are concatenated in worker order. Envs keep
their episodes across collections; a worker's chunk lists env 0's steps, then env 1's, ..., and every
env's stream ends with mask 0 (GAE then takes the value after it as 0, like an episode end).

A vector env is anything with the ``VectorImitationEnv`` contract: ``num_envs``, ``reset(seed=) -> (obs,
infos)`` and ``step(actions [E, A]) -> (obs, rewards, terminated, truncated, infos)`` with same-step
autoreset and infos a dict of [E] arrays. It is made in the worker by ``make_env(E)``, which must be
picklable for 'mp' and 'ray'.

Worker errors propagate: an exception in a worker process is re-raised in the parent as ``WorkerError``
carrying the worker's traceback (Ray re-raises its own ``RayTaskError`` with it).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from kinesis_training.checkpoint import PolicySpec, build_modules

EnvFactory = Callable[[int], Any]
"""make_env(num_envs) -> vector env (see the module docstring)."""

StateDict = dict[str, np.ndarray]

_NOT_LOGGED = frozenset({"final_obs", "frame", "step"})
"""Numeric infos that are bookkeeping, not metrics."""


class WorkerError(RuntimeError):
    """A sampler worker failed; the message holds its traceback."""


@dataclass
class EpisodeStats:
    """Episodes completed during a collection and per-step info means."""

    returns: list[float] = field(default_factory=list)
    """Undiscounted return of each completed episode."""
    lengths: list[int] = field(default_factory=list)
    """Steps of each completed episode."""
    successes: list[bool] = field(default_factory=list)
    """Per episode: it reached the end of its motion (truncated) without terminating."""
    info_sums: dict[str, float] = field(default_factory=dict)
    """Sum over all steps of every numeric info (``reward/<term>``, ``mpjpe_mm``, ...)."""
    steps: int = 0
    """Env steps of the collection."""

    def merge(self, other: EpisodeStats) -> EpisodeStats:
        sums = dict(self.info_sums)
        for key, value in other.info_sums.items():
            sums[key] = sums.get(key, 0.0) + value
        return EpisodeStats(self.returns + other.returns, self.lengths + other.lengths,
                            self.successes + other.successes, sums, self.steps + other.steps)

    def summary(self) -> dict[str, float]:
        """Means: ``episode/return``, ``episode/length``, ``episode/success_rate`` (NaN without episodes)
        and ``step/<info>`` for every numeric info."""
        out = {
            "episode/return": float(np.mean(self.returns)) if self.returns else math.nan,
            "episode/length": float(np.mean(self.lengths)) if self.lengths else math.nan,
            "episode/success_rate": float(np.mean(self.successes)) if self.successes else math.nan,
            "episode/count": float(len(self.returns)),
        }
        out.update({f"step/{k}": v / max(self.steps, 1) for k, v in self.info_sums.items()})
        return out


@dataclass
class Rollout:
    """A collected batch ([N, ...] numpy, trajectory by trajectory) and its episode statistics."""

    obs: np.ndarray
    """[N, obs_dim] float32."""
    actions: np.ndarray
    """[N, A] float32, as sampled (before clipping)."""
    rewards: np.ndarray
    """[N] float64."""
    masks: np.ndarray
    """[N] float64: 0 at episode ends and at the end of every env's stream."""
    log_probs: np.ndarray
    """[N] float32 log-probs at sampling time."""
    stats: EpisodeStats
    cut_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """[M] samples that end a trajectory without termination (time limit, end of the env's stream)."""
    cut_obs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    """[M, obs_dim] the observation that follows each of them (for value bootstrapping)."""

    def __len__(self) -> int:
        return len(self.rewards)

    @staticmethod
    def concatenate(parts: list[Rollout]) -> Rollout:
        stats = EpisodeStats()
        for part in parts:
            stats = stats.merge(part.stats)
        arrays = {name: np.concatenate([getattr(p, name) for p in parts])
                  for name in ("obs", "actions", "rewards", "masks", "log_probs")}
        offsets = np.cumsum([0] + [len(p) for p in parts[:-1]])
        cut_index = np.concatenate([p.cut_index + offset for p, offset in zip(parts, offsets)])
        cut_obs = np.concatenate([p.cut_obs.reshape(len(p.cut_index), p.obs.shape[1]) for p in parts])
        return Rollout(**arrays, stats=stats, cut_index=cut_index, cut_obs=cut_obs)


def worker_seeds(seed: int, worker: int, envs_per_worker: int) -> tuple[int, int]:
    """(env reset seed, torch generator seed) of worker ``worker``."""
    torch_seed = int(np.random.SeedSequence([seed, worker]).generate_state(1, np.uint64)[0] >> 1)
    return seed + worker * envs_per_worker, torch_seed


@contextmanager
def _single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def policy_state(policy: torch.nn.Module) -> StateDict:
    """The policy's state dict as CPU numpy arrays (cheap to pickle to workers)."""
    return {k: v.detach().cpu().numpy() for k, v in policy.state_dict().items()}


class RolloutWorker:
    """One worker: a vector env, a policy copy and a torch generator (see the module docstring)."""

    def __init__(self, make_env: EnvFactory, spec: PolicySpec, envs_per_worker: int, seed: int, worker: int,
                 mean_clip: float | None = None) -> None:
        self.env = make_env(envs_per_worker)
        self.num_envs = int(self.env.num_envs)
        self.policy = build_modules(spec)[0].eval()
        if mean_clip is not None:  # actions drawn around the clipped mean (``ppo.sample_clipped_mean``)
            self.policy.mean_clip = float(mean_clip)
        env_seed, torch_seed = worker_seeds(seed, worker, envs_per_worker)
        self.generator = torch.Generator().manual_seed(torch_seed)
        self.obs, _ = self.env.reset(seed=env_seed)
        self.episode_return = np.zeros(self.num_envs)
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)

    def call(self, method: str, *args: Any) -> Any:
        """Calls ``method`` of the vector env (e.g. ``set_motion_weights``)."""
        return getattr(self.env, method)(*args)

    def collect(self, state: Mapping[str, np.ndarray], steps: int) -> Rollout:
        """Runs ``steps`` steps of every env with the policy ``state``; returns the chunk (env by env)."""
        self.policy.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        n = self.num_envs
        obs_buf = np.empty((steps, n, self.obs.shape[1]), np.float32)
        act_buf = np.empty((steps, n, self.policy.action_dim), np.float32)
        logp_buf = np.empty((steps, n), np.float32)
        rew_buf = np.empty((steps, n))
        done_buf = np.empty((steps, n), bool)
        stats = EpisodeStats(steps=steps * n)
        cuts: list[tuple[int, np.ndarray]] = []  # (sample index in env-major order, next observation)
        with _single_thread():
            for t in range(steps):
                obs_buf[t] = self.obs
                actions, log_probs = self.policy.get_action_and_log_prob(
                    torch.from_numpy(obs_buf[t]), False, self.generator
                )
                act_buf[t], logp_buf[t] = actions.numpy(), log_probs.numpy()
                self.obs, rewards, terminated, truncated, infos = self.env.step(act_buf[t])
                rew_buf[t] = rewards
                done_buf[t] = np.logical_or(terminated, truncated)
                self._account(stats, rewards, terminated, truncated, infos)
                cuts += [(i * steps + t, infos["final_obs"][i]) for i in np.flatnonzero(truncated & ~terminated)]
        cuts += [(i * steps + steps - 1, self.obs[i]) for i in np.flatnonzero(~done_buf[-1])]
        masks = 1.0 - done_buf.astype(np.float64)
        masks[-1] = 0.0
        return Rollout(
            obs=obs_buf.swapaxes(0, 1).reshape(steps * n, -1),
            actions=act_buf.swapaxes(0, 1).reshape(steps * n, -1),
            rewards=rew_buf.T.reshape(-1),
            masks=masks.T.reshape(-1),
            log_probs=logp_buf.T.reshape(-1),
            stats=stats,
            cut_index=np.array([index for index, _ in cuts], dtype=np.int64),
            cut_obs=np.array([obs for _, obs in cuts], dtype=np.float32).reshape(len(cuts), obs_buf.shape[2]),
        )

    def _account(self, stats: EpisodeStats, rewards, terminated, truncated, infos: Mapping[str, Any]) -> None:
        self.episode_return += rewards
        self.episode_length += 1
        for key, value in infos.items():
            value = np.asarray(value)
            if key.startswith("_") or key in _NOT_LOGGED or value.dtype.kind not in "fiu" or value.ndim != 1:
                continue
            stats.info_sums[key] = stats.info_sums.get(key, 0.0) + float(value.sum())
        for i in np.flatnonzero(np.logical_or(terminated, truncated)):
            stats.returns.append(float(self.episode_return[i]))
            stats.lengths.append(int(self.episode_length[i]))
            stats.successes.append(bool(truncated[i] and not terminated[i]))
            self.episode_return[i], self.episode_length[i] = 0.0, 0


class Sampler(Protocol):
    """Collects rollouts with the current policy weights."""

    def collect(self, policy: torch.nn.Module, min_samples: int) -> Rollout: ...

    def call(self, method: str, *args: Any) -> None: ...

    def close(self) -> None: ...


def steps_per_env(min_samples: int, workers: int, envs_per_worker: int) -> int:
    """Steps each env runs so that the batch holds at least ``min_samples`` samples (at least 2)."""
    return max(2, math.ceil(min_samples / (workers * envs_per_worker)))


class InProcessSampler:
    """All workers in this process, run one after another."""

    def __init__(self, make_env: EnvFactory, spec: PolicySpec, *, workers: int = 1, envs_per_worker: int = 1,
                 seed: int = 0, mean_clip: float | None = None) -> None:
        self.workers = [RolloutWorker(make_env, spec, envs_per_worker, seed, w, mean_clip) for w in range(workers)]
        self.envs_per_worker = envs_per_worker

    def collect(self, policy: torch.nn.Module, min_samples: int) -> Rollout:
        steps = steps_per_env(min_samples, len(self.workers), self.envs_per_worker)
        state = policy_state(policy)
        return Rollout.concatenate([worker.collect(state, steps) for worker in self.workers])

    def call(self, method: str, *args: Any) -> None:
        for worker in self.workers:
            worker.call(method, *args)

    def close(self) -> None:
        self.workers = []


def _worker_main(conn, make_env: EnvFactory, spec: PolicySpec, envs_per_worker: int, seed: int, worker: int,
                 mean_clip: float | None) -> None:
    """Process entry point: serve ("collect", state, steps), ("call", method, *args) and ("close",)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it saves, then closes us)
    try:
        rollout_worker = RolloutWorker(make_env, spec, envs_per_worker, seed, worker, mean_clip)
        conn.send(("ready", None))
        while True:
            command, *args = conn.recv()
            if command == "close":
                return
            if command == "collect":
                conn.send(("ok", rollout_worker.collect(*args)))
            else:
                conn.send(("ok", rollout_worker.call(*args)))
    except Exception:  # forwarded, not swallowed: the parent raises WorkerError with this traceback
        conn.send(("error", traceback.format_exc()))


class MultiprocessingSampler:
    """One spawned process per worker, talking over pipes; workers persist across collections."""

    def __init__(self, make_env: EnvFactory, spec: PolicySpec, *, workers: int = 2, envs_per_worker: int = 1,
                 seed: int = 0, mean_clip: float | None = None) -> None:
        context = mp.get_context("spawn")
        self.envs_per_worker = envs_per_worker
        self.connections, self.processes = [], []
        for w in range(workers):
            parent, child = context.Pipe()
            process = context.Process(target=_worker_main, args=(child, make_env, spec, envs_per_worker, seed, w, mean_clip),
                                      name=f"kinesis-sampler-{w}", daemon=True)
            process.start()
            child.close()
            self.connections.append(parent)
            self.processes.append(process)
        try:
            self._gather()
        except BaseException:
            self.close()
            raise

    def _receive(self, w: int) -> Any:
        conn, process = self.connections[w], self.processes[w]
        while not conn.poll(1.0):
            if not process.is_alive():
                raise WorkerError(f"sampler worker {w} died with exit code {process.exitcode}")
        try:
            status, payload = conn.recv()
        except EOFError:
            process.join(5.0)
            raise WorkerError(f"sampler worker {w} closed its pipe (exit code {process.exitcode})") from None
        if status == "error":
            raise WorkerError(f"sampler worker {w} failed:\n{payload}")
        return payload

    def _gather(self) -> list[Any]:
        return [self._receive(w) for w in range(len(self.connections))]

    def collect(self, policy: torch.nn.Module, min_samples: int) -> Rollout:
        steps = steps_per_env(min_samples, len(self.connections), self.envs_per_worker)
        state = policy_state(policy)
        for conn in self.connections:
            conn.send(("collect", state, steps))
        return Rollout.concatenate(self._gather())

    def call(self, method: str, *args: Any) -> None:
        for conn in self.connections:
            conn.send(("call", method, *args))
        self._gather()

    def close(self) -> None:
        for conn, process in zip(self.connections, self.processes):
            if process.is_alive():
                try:
                    conn.send(("close",))
                except (BrokenPipeError, OSError):
                    pass  # the worker already exited; join below reaps it
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join()
            conn.close()
        self.connections, self.processes = [], []


class RaySampler:
    """One Ray actor (1 CPU) per worker; joins ``address`` or starts/joins a local Ray instance."""

    def __init__(self, make_env: EnvFactory, spec: PolicySpec, *, workers: int = 2, envs_per_worker: int = 1,
                 seed: int = 0, mean_clip: float | None = None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as error:
            raise ValueError("sampler 'ray' needs Ray: pip install 'kinesis-ros[ray]' (or 'ray[default]')") from error
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=True)
        actor_class = ray.remote(num_cpus=1)(RolloutWorker)
        self.actors = [actor_class.remote(make_env, spec, envs_per_worker, seed, w, mean_clip) for w in range(workers)]
        self.envs_per_worker = envs_per_worker

    def collect(self, policy: torch.nn.Module, min_samples: int) -> Rollout:
        steps = steps_per_env(min_samples, len(self.actors), self.envs_per_worker)
        state = self.ray.put(policy_state(policy))
        return Rollout.concatenate(self.ray.get([actor.collect.remote(state, steps) for actor in self.actors]))

    def call(self, method: str, *args: Any) -> None:
        self.ray.get([actor.call.remote(method, *args) for actor in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []


def make_sampler(kind: str, make_env: EnvFactory, spec: PolicySpec, *, workers: int, envs_per_worker: int = 1,
                 seed: int = 0, ray_address: str | None = None, mean_clip: float | None = None) -> Sampler:
    """A sampler of ``kind`` ('inprocess', 'mp' or 'ray'); ``mean_clip``: its policy copies draw actions around
    the mean clipped to +-mean_clip (``ppo.sample_clipped_mean``; None: the network's mean)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    common = dict(workers=workers, envs_per_worker=envs_per_worker, seed=seed, mean_clip=mean_clip)
    if kind == "inprocess":
        return InProcessSampler(make_env, spec, **common)
    if kind == "mp":
        return MultiprocessingSampler(make_env, spec, **common)
    if kind == "ray":
        return RaySampler(make_env, spec, address=ray_address, **common)
    raise ValueError(f"sampler must be 'inprocess', 'mp' or 'ray', got {kind!r}")

"""ParallelImitationEnv: a VectorImitationEnv whose envs are stepped by worker processes, in parallel.

The N envs are split into W contiguous blocks, one per worker process (block sizes differ by at most one).
One ``step`` writes the actions into a shared-memory block and sends one message per worker (not per
env); each worker steps its envs with ``vector_env.step_with_autoreset`` (the in-process backend's
function), writes observations, final observations (zeros where no episode ended), rewards and flags
into the shared block and replies with its envs' infos by key. ``step`` returns copies of the block's
arrays and stacks the infos as ``BatchedEnv.step`` does (no per-env objects in the parent: its share of a
step is about 0.1 ms, all of it serial); ``reset`` is ``BatchedEnv.reset`` over the workers. The results
are bit-identical to ``VectorImitationEnv`` for the same seeds (env i is reset with seed + i wherever it
lives; tests/test_parallel_env.py).

Lifetime: workers are spawned processes (no fork after torch or MuJoCo threads started). ``close()``,
leaving a ``with`` block or garbage collection stops them; a worker also exits when its parent dies (its
pipe reaches end of file). An exception raised in a worker (e.g. ValueError for bad reset options) is
re-raised in the parent with its type and the worker's traceback as a note; a worker that dies raises
``EnvWorkerError`` and closes the env. Each worker ignores SIGINT: Ctrl-C is the parent's to handle.

``pin_cpus=True`` pins worker w to the w-th CPU of the parent's affinity set (modulo its size): fewer
migrations on an idle machine, but a pinned worker cannot move away from a busy core.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.motions import ReferenceMotion, load_library
from kinesis_tasks.vector_env import VectorImitationEnv, step_with_autoreset


class EnvWorkerError(RuntimeError):
    """An env worker process died or could not start; the message names it and its exit code."""


@dataclass(frozen=True)
class _Layout:
    """Sizes of the shared block: actions [N, A] float64, obs and final obs [N, D], rewards [N] float64,
    terminated / truncated / ended [N] bool."""

    num_envs: int
    obs_size: int
    action_size: int
    obs_dtype: str

    def arrays(self, buffer: memoryview) -> dict[str, np.ndarray]:
        """Views of ``buffer`` by name (``nbytes`` bytes of it)."""
        views, offset = {}, 0
        for name, shape, dtype in self._fields():
            dtype = np.dtype(dtype)
            views[name] = np.ndarray(shape, dtype, buffer, offset)
            offset += _aligned(int(np.prod(shape)) * dtype.itemsize)
        return views

    @property
    def nbytes(self) -> int:
        return sum(_aligned(int(np.prod(shape)) * np.dtype(dtype).itemsize) for _, shape, dtype in self._fields())

    def _fields(self) -> list[tuple[str, tuple[int, ...], str]]:
        n = self.num_envs
        return [
            ("actions", (n, self.action_size), "float64"),
            ("obs", (n, self.obs_size), self.obs_dtype),
            ("final_obs", (n, self.obs_size), self.obs_dtype),
            ("rewards", (n,), "float64"),
            ("terminated", (n,), "bool"),
            ("truncated", (n,), "bool"),
            ("ended", (n,), "bool"),
        ]


def _aligned(nbytes: int) -> int:
    return -(-nbytes // 64) * 64


def _picklable(config: ImitationConfig) -> ImitationConfig:
    """``config`` with its reward scales as a dict (the default MappingProxy does not pickle)."""
    return replace(config, reward=replace(config.reward, scales=dict(config.reward.scales)))


def _error_reply(error: Exception) -> tuple[str, Exception, str]:
    """("error", exception, traceback text); an exception that does not pickle becomes a RuntimeError."""
    text = traceback.format_exc()
    try:
        pickle.dumps(error)
    except Exception:
        error = RuntimeError(f"{type(error).__name__}: {error}")
    return ("error", error, text)


class _WorkerEnvs:
    """A worker's envs (global indices ``first``..) and its rows of the shared block; methods = commands."""

    def __init__(self, envs: list[ImitationEnv], views: dict[str, np.ndarray], first: int) -> None:
        self.envs = envs
        self.rows = {name: view[first:first + len(envs)] for name, view in views.items()}

    def step(self) -> dict[str, list]:
        """Steps every env with its row of actions; returns the infos by key (lists in env order)."""
        rows, columns = self.rows, None
        for k, env in enumerate(self.envs):
            result = step_with_autoreset(env, rows["actions"][k].copy())  # no view of the block escapes
            rows["obs"][k], rows["rewards"][k] = result.obs, result.reward
            rows["terminated"][k], rows["truncated"][k] = result.terminated, result.truncated
            rows["ended"][k] = result.final_obs is not None
            rows["final_obs"][k] = 0.0 if result.final_obs is None else result.final_obs
            if columns is None:
                columns = {key: [] for key in result.info}
            for key, values in columns.items():
                values.append(result.info[key])
        return columns

    def reset(self, seeds: Sequence[int | None], options: Mapping[str, Any] | None) -> list[dict]:
        infos = []
        for k, (env, seed) in enumerate(zip(self.envs, seeds)):
            self.rows["obs"][k], info = env.reset(seed=seed, options=options)
            infos.append(info)
        return infos

    def call(self, method: str, args: tuple) -> list[Any]:
        return [getattr(env, method)(*args) for env in self.envs]

    def get_attr(self, name: str) -> list[Any]:
        return [getattr(env, name) for env in self.envs]


_COMMANDS = frozenset({"step", "reset", "call", "get_attr"})


def _worker_main(conn: Connection, config: ImitationConfig, motions: Sequence[ReferenceMotion] | None,
                 model_file: str | None, first: int, count: int, cpu: int | None) -> None:
    """Process entry point: build ``count`` envs, report their spaces, attach the shared block, then serve
    (command, *args) messages until "close" or until the parent is gone (end of file on the pipe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    block: SharedMemory | None = None
    worker: _WorkerEnvs | None = None
    try:
        try:
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})
            if motions is None:
                motions = load_library(config.motions, split=config.split)
            if model_file is None:
                model = load_embodiment(config.embodiment)
            else:
                model = mujoco.MjModel.from_binary_path(model_file)
            envs = [ImitationEnv(config, motions, model=model) for _ in range(count)]
        except Exception as error:
            conn.send(_error_reply(error))
            return
        conn.send(("ok", (envs[0].observation_space, envs[0].action_space)))
        _, name, layout = conn.recv()  # ("bind", block name, _Layout)
        block = SharedMemory(name)
        worker = _WorkerEnvs(envs, layout.arrays(block.buf), first)
        conn.send(("ok", None))
        while True:
            command, *args = conn.recv()
            if command == "close":
                return
            try:
                if command not in _COMMANDS:
                    raise ValueError(f"env worker: unknown command {command!r}")
                reply = ("ok", getattr(worker, command)(*args))
            except Exception as error:  # forwarded: the parent re-raises it
                reply = _error_reply(error)
            conn.send(reply)
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the parent is gone
        return
    finally:
        worker = None  # drop the views before unmapping the block
        if block is not None:
            block.close()


class ProcessPoolBackend:
    """``num_envs`` envs in ``workers`` spawned processes (module docstring): ``reset``, ``call``, ``get_attr``
    and ``close`` as the ``vector_env.Backend`` protocol; ``step`` returns the stacked arrays directly."""

    def __init__(self, config: ImitationConfig, motions: Sequence[ReferenceMotion] | None, num_envs: int,
                 workers: int, *, model: mujoco.MjModel | None = None, pin_cpus: bool = False) -> None:
        if not 1 <= int(workers) <= int(num_envs):
            raise ValueError(f"workers must be in [1, num_envs={num_envs}], got {workers}")
        context = mp.get_context("spawn")
        counts = [len(block) for block in np.array_split(np.arange(num_envs), workers)]
        self.firsts = np.cumsum([0, *counts[:-1]]).tolist()
        self.counts = counts
        cpus = sorted(os.sched_getaffinity(0))
        self.connections: list[Connection] = []
        self.processes: list[mp.process.BaseProcess] = []
        self.block: SharedMemory | None = None
        self.arrays: dict[str, np.ndarray] = {}
        model_dir = tempfile.TemporaryDirectory(prefix="kinesis-env-model-") if model is not None else None
        try:
            model_file = None
            if model_dir is not None:  # a binary model file: cheaper to load than a pickle (peak memory)
                model_file = os.path.join(model_dir.name, "model.mjb")
                mujoco.mj_saveModel(model, model_file, None)
            for w, (first, count) in enumerate(zip(self.firsts, counts)):
                parent, child = context.Pipe()
                process = context.Process(
                    target=_worker_main, name=f"kinesis-env-{w}", daemon=True,
                    args=(child, _picklable(config), motions, model_file, first, count,
                          cpus[w % len(cpus)] if pin_cpus else None),
                )
                process.start()
                child.close()  # our copy; the worker's end closing now means the worker is gone
                self.connections.append(parent)
                self.processes.append(process)
            spaces = self._gather()  # the workers have loaded the model file by now
            self.observation_space, self.action_space = spaces[0]
            layout = _Layout(int(num_envs), self.observation_space.shape[0], self.action_space.shape[0],
                             self.observation_space.dtype.str)
            self.block = SharedMemory(create=True, size=layout.nbytes)
            self.arrays = layout.arrays(self.block.buf)
            self._broadcast(("bind", self.block.name, layout))
        except BaseException:
            self.close()
            raise
        finally:
            if model_dir is not None:
                model_dir.cleanup()

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers."""
        return [process.pid for process in self.processes]

    def _receive(self, w: int) -> tuple[str, Any]:
        try:
            return self.connections[w].recv()
        except (EOFError, ConnectionResetError):
            process = self.processes[w]
            process.join(5.0)
            code = process.exitcode
            self.close()
            raise EnvWorkerError(f"env worker {w} (pid {process.pid}) died with exit code {code}") from None

    def _gather(self) -> list[Any]:
        """Every worker's reply in worker order; the first worker error is raised after all replied."""
        replies = [self._receive(w) for w in range(len(self.connections))]
        for w, (status, *payload) in enumerate(replies):
            if status == "error":
                error, text = payload
                error.add_note(f"raised in env worker {w} (pid {self.processes[w].pid}):\n{text}")
                raise error
        return [payload[0] for _, *payload in replies]

    def _send(self, messages: Sequence[tuple]) -> list[Any]:
        """Sends ``messages[w]`` to worker w, returns the replies."""
        if not self.connections:
            raise RuntimeError("the env workers are closed")
        for conn, message in zip(self.connections, messages):
            conn.send(message)
        return self._gather()

    def _broadcast(self, message: tuple) -> list[Any]:
        return self._send([message] * len(self.connections))

    def reset(self, seeds: Sequence[int | None], options: Mapping[str, Any] | None) -> list[tuple[np.ndarray, dict]]:
        options = None if options is None else dict(options)
        blocks = self._send([("reset", list(seeds[first:first + count]), options)
                             for first, count in zip(self.firsts, self.counts)])
        infos = [info for block in blocks for info in block]
        return list(zip(self.arrays["obs"], infos))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Steps every env: (obs, rewards, terminated, truncated, infos) as ``BatchedEnv.step`` returns them."""
        a = self.arrays
        a["actions"][:] = actions
        columns = self._broadcast(("step",))
        infos = {key: np.array([value for block in columns for value in block[key]]) for key in columns[0]}
        infos["final_obs"], infos["_final_obs"] = a["final_obs"].copy(), a["ended"].copy()
        return a["obs"].copy(), a["rewards"].copy(), a["terminated"].copy(), a["truncated"].copy(), infos

    def call(self, method: str, *args: Any) -> list[Any]:
        return [value for block in self._broadcast(("call", method, args)) for value in block]

    def get_attr(self, name: str) -> list[Any]:
        return [value for block in self._broadcast(("get_attr", name)) for value in block]

    def close(self) -> None:
        """Stop the workers (terminate those that do not exit within 5 s) and free the shared block."""
        for conn, process in zip(self.connections, self.processes):
            try:
                conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass  # already gone; join reaps it
        for conn, process in zip(self.connections, self.processes):
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join()
            conn.close()
        self.connections, self.processes = [], []
        if self.block is not None:
            self.arrays = {}
            self.block.close()
            self.block.unlink()
            self.block = None


class ParallelImitationEnv(VectorImitationEnv):
    """``VectorImitationEnv`` with its ``num_envs`` envs stepped by ``workers`` processes (module docstring).

    ``motions`` are pickled to every worker; None lets each worker load ``config.motions`` itself.
    ``model`` (the compiled ``config.embodiment``) reaches the workers as a binary model file; None lets
    each worker compile it, which costs it the compile time and about 90 MiB more memory (MjSpec
    compilation leaves memory behind that the process does not give back).
    """

    def __init__(
        self,
        num_envs: int,
        config: ImitationConfig | None = None,
        motions: Mapping[str, ReferenceMotion] | Sequence[ReferenceMotion] | None = None,
        *,
        workers: int = 2,
        model: mujoco.MjModel | None = None,
        pin_cpus: bool = False,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.config = config if config is not None else ImitationConfig.default()
        motion_list = list(motions.values()) if isinstance(motions, Mapping) else motions
        self.closed = True  # nothing to close (for __del__) until the workers run
        self.backend: ProcessPoolBackend = ProcessPoolBackend(self.config, motion_list, self.num_envs, workers,
                                                              model=model, pin_cpus=pin_cpus)
        self.closed = False
        self.single_observation_space = self.backend.observation_space
        self.single_action_space = self.backend.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.motion_names: tuple[str, ...] = self.backend.get_attr("motion_names")[0]
        self._was_reset = False

    def step(self, actions: np.ndarray):
        """As ``BatchedEnv.step``, with the arrays read straight from the shared block (no per-env objects)."""
        if not self._was_reset:
            raise RuntimeError("step() called before reset()")
        actions = np.asarray(actions)
        expected = (self.num_envs, self.single_action_space.shape[0])
        if actions.shape != expected:
            raise ValueError(f"actions: expected shape {expected}, got {actions.shape}")
        return self.backend.step(actions)

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers (e.g. to read their peak memory from /proc)."""
        return self.backend.pids

    def __enter__(self) -> ParallelImitationEnv:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

"""ParallelImitationEnv: a VectorImitationEnv whose envs are stepped in parallel, by this process and workers.

The N envs are split into W contiguous blocks (sizes differ by at most one). This process steps block 0
itself and each other block lives in a spawned worker process (``step_in_parent=False``: every block in a
worker, this process only coordinates). One ``step`` writes the actions into shared memory and
sends one message per worker (not per env); while the workers step their envs, this process steps its
own, then reads the replies. Every block is stepped the same way (``vector_env.step_with_autoreset``, the
in-process backend's function), writing observations, final observations (zeros where no episode ended),
rewards and flags into its rows of the shared memory and returning its envs' infos by key. ``step``
returns copies of the shared arrays and stacks the infos as ``BatchedEnv.step`` does; ``reset`` is
``BatchedEnv.reset`` over the blocks. The results are bit-identical to ``VectorImitationEnv`` for the
same seeds (env i is reset with seed + i wherever it lives; tests/test_parallel_env.py).

Stepping a block here instead of waiting saves a process, one message per step and the wake-up of this
process on the critical path (measured on 2 cores, 8 envs: 1.79x the single-thread rate against 1.70x
with 2 workers; docs/performance.md).

Lifetime: workers are spawned processes (no fork after torch or MuJoCo threads started). ``close()``,
leaving a ``with`` block or garbage collection stops them; a worker also exits when its parent dies (its
pipe reaches end of file). An exception raised in a worker (e.g. ValueError for bad reset options) is
re-raised in the parent with its type and the worker's traceback as a note; a worker that dies raises
``EnvWorkerError`` and closes the env. Each worker ignores SIGINT: Ctrl-C is the parent's to handle.

``pin_cpus=True`` pins the worker of block b to the b-th CPU of this process's affinity set (modulo its
size; this process is never pinned): fewer migrations on an idle machine, but a pinned worker cannot
move away from a busy core.
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
    """Sizes of the shared memory: actions [N, A] float64, obs and final obs [N, D], rewards [N] float64,
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


class _EnvBlock:
    """A block of envs (global indices ``first``...) and its rows of the shared memory, in a worker or in
    the parent; its methods are the commands a worker serves."""

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
    """Process entry point: build ``count`` envs, report their spaces, attach the shared memory, then serve
    (command, *args) messages until "close" or until the parent is gone (end of file on the pipe)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    shared: SharedMemory | None = None
    block: _EnvBlock | None = None
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
        shared = SharedMemory(name)
        block = _EnvBlock(envs, layout.arrays(shared.buf), first)
        conn.send(("ok", None))
        while True:
            command, *args = conn.recv()
            if command == "close":
                return
            try:
                if command not in _COMMANDS:
                    raise ValueError(f"env worker: unknown command {command!r}")
                reply = ("ok", getattr(block, command)(*args))
            except Exception as error:  # forwarded: the parent re-raises it
                reply = _error_reply(error)
            conn.send(reply)
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the parent is gone
        return
    finally:
        block = None  # drop the views before unmapping the shared memory
        if shared is not None:
            shared.close()


class ProcessPoolBackend:
    """``num_envs`` envs in ``workers`` blocks stepped side by side (module docstring); block 0 in this
    process when ``step_in_parent``. ``reset``, ``call``, ``get_attr`` and ``close`` as the
    ``vector_env.Backend`` protocol; ``step`` returns the stacked arrays directly."""

    def __init__(self, config: ImitationConfig, motions: Sequence[ReferenceMotion] | None, num_envs: int,
                 workers: int, *, step_in_parent: bool = True, model: mujoco.MjModel | None = None,
                 pin_cpus: bool = False) -> None:
        if not 1 <= int(workers) <= int(num_envs):
            raise ValueError(f"workers must be in [1, num_envs={num_envs}], got {workers}")
        counts = [len(block) for block in np.array_split(np.arange(num_envs), workers)]
        firsts = np.cumsum([0, *counts[:-1]]).tolist()
        self.blocks = list(zip(firsts, counts))
        self.connections: list[Connection] = []
        self.processes: list[mp.process.BaseProcess] = []
        self.local: _EnvBlock | None = None
        self.shared: SharedMemory | None = None
        self.arrays: dict[str, np.ndarray] = {}
        remote = list(range(1 if step_in_parent else 0, len(self.blocks)))
        if step_in_parent and model is None:
            model = load_embodiment(config.embodiment)
        model_dir = tempfile.TemporaryDirectory(prefix="kinesis-env-model-") if model is not None and remote else None
        try:
            model_file = None
            if model_dir is not None:  # a binary model file: cheaper to load than a pickle (peak memory)
                model_file = os.path.join(model_dir.name, "model.mjb")
                mujoco.mj_saveModel(model, model_file, None)
            self._spawn(config, motions, model_file, remote, pin_cpus)
            if step_in_parent:
                local_motions = motions if motions is not None else load_library(config.motions, split=config.split)
                local_envs = [ImitationEnv(config, local_motions, model=model) for _ in range(counts[0])]
                spaces = (local_envs[0].observation_space, local_envs[0].action_space)
            ready = self._gather()  # the workers have loaded the model file by now
            self.observation_space, self.action_space = spaces if step_in_parent else ready[0]
            layout = _Layout(int(num_envs), self.observation_space.shape[0], self.action_space.shape[0],
                             self.observation_space.dtype.str)
            self.shared = SharedMemory(create=True, size=layout.nbytes)
            self.arrays = layout.arrays(self.shared.buf)
            if step_in_parent:
                self.local = _EnvBlock(local_envs, self.arrays, 0)
            for conn in self.connections:
                conn.send(("bind", self.shared.name, layout))
            self._gather()
        except BaseException:
            self.close()
            raise
        finally:
            if model_dir is not None:
                model_dir.cleanup()

    def _spawn(self, config: ImitationConfig, motions: Sequence[ReferenceMotion] | None, model_file: str | None,
               blocks: list[int], pin_cpus: bool) -> None:
        """One worker process per block index in ``blocks``; with ``pin_cpus``, block b's on the b-th CPU (modulo)."""
        context = mp.get_context("spawn")
        cpus = sorted(os.sched_getaffinity(0))
        for b in blocks:
            first, count = self.blocks[b]
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker_main, name=f"kinesis-env-{len(self.processes)}", daemon=True,
                args=(child, _picklable(config), motions, model_file, first, count,
                      cpus[b % len(cpus)] if pin_cpus else None),
            )
            process.start()
            child.close()  # our copy; the worker's end closing now means the worker is gone
            self.connections.append(parent)
            self.processes.append(process)

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

    def _run(self, command: str, block_args: Sequence[tuple] | None = None) -> list[Any]:
        """``command`` on every block (``block_args[b]``: its arguments, default none), in block order: the
        workers get one message each, then this process runs its own block, then the replies are read."""
        if not self.arrays:
            raise RuntimeError("the env workers are closed")
        block_args = block_args if block_args is not None else [()] * len(self.blocks)
        remote_args = block_args[1:] if self.local is not None else block_args
        for conn, args in zip(self.connections, remote_args):
            conn.send((command, *args))
        try:
            local = [getattr(self.local, command)(*block_args[0])] if self.local is not None else []
        finally:
            remote = self._gather()  # always: every worker was sent a message and replies to it
        return local + remote

    def reset(self, seeds: Sequence[int | None], options: Mapping[str, Any] | None) -> list[tuple[np.ndarray, dict]]:
        options = None if options is None else dict(options)
        blocks = self._run("reset", [(list(seeds[first:first + count]), options) for first, count in self.blocks])
        infos = [info for block in blocks for info in block]
        return list(zip(self.arrays["obs"], infos))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Steps every env: (obs, rewards, terminated, truncated, infos) as ``BatchedEnv.step`` returns them."""
        a = self.arrays
        if not a:
            raise RuntimeError("the env workers are closed")
        a["actions"][:] = actions
        columns = self._run("step")
        infos = {key: np.array([value for block in columns for value in block[key]]) for key in columns[0]}
        infos["final_obs"], infos["_final_obs"] = a["final_obs"].copy(), a["ended"].copy()
        return a["obs"].copy(), a["rewards"].copy(), a["terminated"].copy(), a["truncated"].copy(), infos

    def call(self, method: str, *args: Any) -> list[Any]:
        return [value for block in self._run("call", [(method, args)] * len(self.blocks)) for value in block]

    def get_attr(self, name: str) -> list[Any]:
        return [value for block in self._run("get_attr", [(name,)] * len(self.blocks)) for value in block]

    def close(self) -> None:
        """Stop the workers (terminate those that do not exit within 5 s) and free the shared memory."""
        for conn in self.connections:
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
        self.connections, self.processes, self.local, self.arrays = [], [], None, {}
        if self.shared is not None:  # no view of it is left
            self.shared.close()
            self.shared.unlink()
            self.shared = None


class ParallelImitationEnv(VectorImitationEnv):
    """``VectorImitationEnv`` with its ``num_envs`` envs in ``workers`` blocks stepped side by side (module
    docstring): this process steps block 0 itself unless ``step_in_parent=False``, and each other block
    has a worker process.

    ``motions`` are pickled to every worker; None lets each process load ``config.motions`` itself.
    ``model`` (the compiled ``config.embodiment``; compiled here when None and ``step_in_parent``) reaches
    the workers as a binary model file; without one each worker compiles it, which costs it the compile
    time and about 90 MiB more memory (MjSpec compilation leaves memory behind that is not given back).
    """

    def __init__(
        self,
        num_envs: int,
        config: ImitationConfig | None = None,
        motions: Mapping[str, ReferenceMotion] | Sequence[ReferenceMotion] | None = None,
        *,
        workers: int = 2,
        step_in_parent: bool = True,
        model: mujoco.MjModel | None = None,
        pin_cpus: bool = False,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = int(num_envs)
        self.config = config if config is not None else ImitationConfig.default()
        motion_list = list(motions.values()) if isinstance(motions, Mapping) else motions
        self.closed = True  # nothing to close (for __del__) until the workers run
        self.backend = ProcessPoolBackend(self.config, motion_list, self.num_envs, workers,
                                          step_in_parent=step_in_parent, model=model, pin_cpus=pin_cpus)
        self.closed = False
        self.single_observation_space = self.backend.observation_space
        self.single_action_space = self.backend.action_space
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.motion_names: tuple[str, ...] = self.backend.get_attr("motion_names")[0]
        self._was_reset = False

    def step(self, actions: np.ndarray):
        """As ``BatchedEnv.step``, with the arrays read straight from the shared memory (no per-env objects)."""
        return self.backend.step(self._checked_actions(actions))

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the workers (e.g. to read their peak memory from /proc)."""
        return self.backend.pids

    def __enter__(self) -> ParallelImitationEnv:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

"""ParallelImitationEnv: bit-identical to VectorImitationEnv, errors reach the parent, no process outlives it."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.motions import load_library
from kinesis_tasks.parallel_env import EnvWorkerError, ParallelImitationEnv
from kinesis_tasks.vector_env import VectorImitationEnv

NUM_ENVS, WORKERS, STEPS = 4, 2, 14


@pytest.fixture(scope="module")
def short_motions():
    """Three default motions cut to 12 frames (0.37 s): episodes end within 11 steps, so autoreset runs."""
    motions = list(load_library("default", split="train").values())[:3]
    return [m.replace(keypoints=m.keypoints[:12], qpos=m.qpos[:12],
                      root_quat=None if m.root_quat is None else m.root_quat[:12]) for m in motions]


@pytest.fixture(scope="module")
def config() -> ImitationConfig:
    return ImitationConfig.default(muscle_condition="fatigue")


@pytest.fixture(scope="module", params=[True, False], ids=["block0_in_parent", "all_in_workers"])
def parallel(request, config, short_motions):
    """2 blocks of 2 envs: block 0 here and a worker, or 2 workers; the workers get the model as a file
    (the other tests' workers compile their own)."""
    with ParallelImitationEnv(NUM_ENVS, config, short_motions, workers=WORKERS, step_in_parent=request.param,
                              model=load_embodiment(config.embodiment)) as env:
        yield env


def assert_same(expected, actual, what):
    assert actual.dtype == expected.dtype, what
    np.testing.assert_array_equal(actual, expected, err_msg=what)


def test_same_arrays_as_vector_env(config, short_motions, parallel):
    """reset (seed + i per env), then steps with autoresets: every array and info equal, bit for bit."""
    reference = VectorImitationEnv(NUM_ENVS, config, short_motions)
    weights = [0.2, 0.0, 0.8]  # a call reaches every env of every worker
    reference.set_motion_weights(weights)
    parallel.set_motion_weights(weights)
    assert parallel.single_observation_space == reference.single_observation_space
    assert parallel.motion_names == reference.motion_names
    expected, actual = reference.reset(seed=11), parallel.reset(seed=11)
    assert_same(expected[0], actual[0], "reset obs")
    assert expected[1].keys() == actual[1].keys()
    for key in expected[1]:
        assert_same(expected[1][key], actual[1][key], f"reset info {key}")
    actions = np.random.default_rng(0).uniform(-1.2, 1.2, (STEPS, NUM_ENVS, reference.single_action_space.shape[0]))
    ended = np.zeros(NUM_ENVS, dtype=int)
    for t in range(STEPS):
        expected, actual = reference.step(actions[t]), parallel.step(actions[t])
        for name, a, b in zip(("obs", "rewards", "terminated", "truncated"), expected[:4], actual[:4]):
            assert_same(a, b, f"step {t} {name}")
        assert expected[4].keys() == actual[4].keys()
        for key in expected[4]:
            assert_same(expected[4][key], actual[4][key], f"step {t} info {key}")
        ended += actual[4]["_final_obs"]
    assert np.all(ended >= 1), "every env should have been reset automatically at least once"
    assert set(actual[4]["motion"]) <= {reference.motion_names[0], reference.motion_names[2]}


def test_worker_exception_is_raised_in_parent(parallel):
    """A ValueError in a worker (NaN action of the last env) arrives as that ValueError with the worker's
    traceback; bad reset options raise as in-process; the env still works afterwards."""
    parallel.reset(seed=0)
    actions = np.zeros((NUM_ENVS, parallel.single_action_space.shape[0]))
    actions[-1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN") as raised:
        parallel.step(actions)
    last = len(parallel.worker_pids) - 1
    assert any(f"raised in env worker {last}" in note and "sim.py" in note for note in raised.value.__notes__)
    with pytest.raises(ValueError, match="no motion 'nope'"):
        parallel.reset(options={"motion": "nope"})
    obs, _ = parallel.reset(seed=0)
    assert obs.shape == (NUM_ENVS, parallel.single_observation_space.shape[0])


def test_close_stops_workers(parallel):
    pids = parallel.worker_pids
    assert len(pids) in (WORKERS - 1, WORKERS) and all(os.path.exists(f"/proc/{pid}") for pid in pids)
    parallel.close()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)
    with pytest.raises(RuntimeError, match="closed"):
        parallel.backend.get_attr("motion_names")


def test_bad_config_fails_at_worker_start(short_motions):
    with pytest.raises(ValueError, match="control_mode") as raised:
        ParallelImitationEnv(1, ImitationConfig.default(control_mode="bogus"), short_motions, workers=1,
                             step_in_parent=False)
    assert any("raised in env worker 0" in note for note in raised.value.__notes__)


def test_dead_worker_raises_and_close_leaves_no_process(config, short_motions):
    env = ParallelImitationEnv(2, config, short_motions, workers=2, step_in_parent=False)
    pids = env.worker_pids
    env.reset(seed=0)
    os.kill(pids[1], signal.SIGKILL)
    with pytest.raises(EnvWorkerError, match=rf"env worker 1 \(pid {pids[1]}\) died with exit code -9"):
        env.step(np.zeros((2, env.single_action_space.shape[0])))
    env.close()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in pids)


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting for its new parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_workers_exit_when_parent_is_killed():
    script = (
        "import os, signal\n"
        "from kinesis_tasks.parallel_env import ParallelImitationEnv\n"
        "if __name__ == '__main__':\n"
        "    env = ParallelImitationEnv(2, workers=2, step_in_parent=False)\n"
        "    print(*env.worker_pids, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    pids = [int(pid) for pid in completed.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10.0
    while not all(_gone(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in pids)

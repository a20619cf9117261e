"""Evaluation metrics on cases with known answers, workers parity, and the `kinesis eval` command."""

import argparse
import json

import mujoco
import numpy as np
import pytest

from kinesis import eval_cli
from kinesis_tasks import MuscleSim, load_embodiment
from kinesis_tasks.evaluation import ZeroPolicy, evaluate, evaluate_motion, evaluation_config, start_frames
from kinesis_tasks.imitation import ImitationEnv
from kinesis_tasks.metrics import MotionResult, summarize
from kinesis_tasks.motions import DEFAULT_BODIES, ReferenceMotion, load_library, parse_library_spec, save_library

STEPS = 12


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return load_embodiment("legs")


@pytest.fixture(scope="module")
def walk() -> ReferenceMotion:
    return load_library("default")["myosuite_walk_a"]


@pytest.fixture(scope="module")
def replay(model, walk):
    """A reference made from the simulator's own trajectory under fixed random actions.

    Returns (motion, initial state, actions): frame k holds the tracked bodies after k control steps
    from the initial state (the state the env derives from ``walk`` at frame 0).
    """
    env = ImitationEnv(evaluation_config(), [walk], model=model)
    qpos, qvel = env.initial_state(walk.name, 0)
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS, model.nu))
    sim = MuscleSim(model)
    sim.reset(qpos, qvel)
    ids = [model.body(name).id for name in DEFAULT_BODIES]
    frames = [sim.data.xpos[ids].copy()]
    for action in actions:
        sim.step(action)
        mujoco.mj_kinematics(model, sim.data)  # poses of the new state, as the env sees them
        frames.append(sim.data.xpos[ids].copy())
    motion = ReferenceMotion(name="replay", fps=30.0, keypoints=np.stack(frames))
    return motion, {"qpos": qpos, "qvel": qvel}, actions


def replaying(actions):
    calls = iter(actions)
    return lambda obs: next(calls)


def run_one(model, motion, initial_state, actions) -> MotionResult:
    env = ImitationEnv(evaluation_config(), [motion], model=model)
    return evaluate_motion(env, replaying(actions), motion.name, initial_state=initial_state)


def test_replaying_the_reference_actions_tracks_it_exactly(model, replay):
    motion, state, actions = replay
    result = run_one(model, motion, state, actions)
    assert result.success and result.frames_tracked == result.frames_total == STEPS
    assert result.coverage == 1.0
    assert result.mpjpe_mm < 1e-6


def test_far_reference_fails_at_once(model, replay):
    motion, state, actions = replay
    far = motion.replace(keypoints=motion.keypoints + np.array([0.0, 1.0, 0.0]))
    result = run_one(model, far, state, actions)
    assert not result.success and result.frames_tracked == 0 and result.coverage == 0.0
    assert result.mpjpe_mm == pytest.approx(1000.0, abs=1e-6)  # every body exactly 1 m away


def test_reference_that_jumps_away_midway(model, replay):
    """Exact for frames 0..5, 1 m off from frame 6: terminated at step 6, 5 steps tracked."""
    motion, state, actions = replay
    keypoints = motion.keypoints.copy()
    keypoints[6:, :, 0] += 1.0
    result = run_one(model, motion.replace(keypoints=keypoints), state, actions)
    assert not result.success and result.frames_tracked == 5 and result.frames_total == STEPS
    assert result.coverage == pytest.approx(5 / STEPS)
    assert result.mpjpe_mm == pytest.approx(1000.0 / 6, abs=1e-6)  # mean over the 6 steps run


def test_summary():
    results = [MotionResult("a", True, 20.0, 10, 10), MotionResult("b", False, 80.0, 2, 8)]
    summary = summarize(results)
    assert summary == {"motions": 2, "success_rate": 0.5, "mpjpe_mm": 50.0, "coverage": 0.625, "failed": ["b"]}
    assert results[1].to_dict()["coverage"] == 0.25
    with pytest.raises(ValueError):
        summarize([])


@pytest.fixture(scope="module")
def two_short(walk) -> list[ReferenceMotion]:
    stand = load_library("default")["stand_still"]
    return [walk.replace(name="walk_short", keypoints=walk.keypoints[:16], qpos=walk.qpos[:16], root_quat=walk.root_quat[:16]),
            stand.replace(name="stand_short", keypoints=stand.keypoints[:16], qpos=stand.qpos[:16], root_quat=stand.root_quat[:16])]


def test_workers_give_identical_results(two_short):
    one = evaluate(two_short, ZeroPolicy(), workers=1, seed=3)
    seen = []
    two = evaluate(two_short, ZeroPolicy(), workers=2, seed=3, on_result=seen.append)
    assert one == two and seen == two
    assert [r.motion for r in one] == ["walk_short", "stand_short"]
    assert all(r.frames_total == 15 for r in one)


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cli.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_kinesis_eval_smoke(tmp_path, two_short, capsys):
    library = save_library(tmp_path / "lib.npz", two_short, splits={"test": ["stand_short", "walk_short"]})
    out = tmp_path / "eval.json"
    assert parse_library_spec("default:test") == ("default", "test")
    assert parse_library_spec(str(library)) == (str(library), None)
    args = cli(["eval", "--motions", f"{library}:test", "--json", str(out), "--seed", "1", "--checkpoint", "zero-action"])
    assert args.func(args) == 0  # (the default, the bundled policy: tests/test_bundled_policy.py)
    printed = capsys.readouterr().out
    assert "zero action" in printed and "stand_short" in printed
    report = json.loads(out.read_text())
    assert [m["motion"] for m in report["per_motion"]] == ["stand_short", "walk_short"]
    assert report["summary"]["motions"] == 2 and report["termination_distance_m"] == 0.5
    assert set(report["per_motion"][0]) == {"motion", "success", "mpjpe_mm", "frames_tracked", "frames_total",
                                            "coverage", "start"}
    # --starts 3: each motion also entered at 2 frames of its first half; frames_total counts from the start.
    args = cli(["eval", "--motions", f"{library}:test", "--json", str(out), "--checkpoint", "zero-action", "--starts", "3"])
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    episodes = [(m["motion"], m["start"]) for m in report["per_motion"]]
    by_name = {m.name: m for m in two_short}
    expected = [(name, f) for name in ("stand_short", "walk_short") for f in start_frames(by_name[name], 3)]
    assert episodes == expected and len(expected) > 2 and report["starts"] == 3
    first, later = report["per_motion"][0], report["per_motion"][1]
    assert later["start"] > 0 and later["frames_total"] < first["frames_total"]


def test_kinesis_eval_with_checkpoints(tmp_path, two_short):
    from kinesis_training import Critic, GaussianActor, save_checkpoint

    save_library(tmp_path / "lib.npz", two_short)
    wrong, right = tmp_path / "wrong.pth", tmp_path / "right.pth"
    save_checkpoint(wrong, GaussianActor(309, 80, (8,)), Critic(309, (8,)), epoch=0, frame=0)
    save_checkpoint(right, GaussianActor(504, 80, (8,)), Critic(504, (8,)), epoch=0, frame=0)
    args = cli(["eval", "--checkpoint", str(wrong), "--motions", str(tmp_path / "lib.npz")])
    with pytest.raises(ValueError, match="observation size 309.*observation size 504"):
        args.func(args)
    out = tmp_path / "eval.json"
    args = cli(["eval", "--checkpoint", str(right), "--motions", str(tmp_path / "lib.npz"), "--json", str(out)])
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    assert report["checkpoint"] == str(right) and "mean action" in report["policy"]
    assert len(report["per_motion"]) == 2


def test_start_frames_spread_over_the_first_half():
    motion = load_library("default")["myosuite_walk_a"]  # 151 frames
    assert start_frames(motion, 1) == [0]
    assert start_frames(motion, 4) == [0, 18, 37, 56]
    with pytest.raises(ValueError, match="starts must be >= 1"):
        start_frames(motion, 0)

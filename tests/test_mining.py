"""Negative mining: failed motions become a new library with their poses; the expert/MoE pipeline end to end."""

import json

import mujoco
import numpy as np
import pytest
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.motions import load_library, save_library

from kinesis_training.checkpoint import load_checkpoint
from kinesis_training.config import load_config
from kinesis_training.mining import mine, run_pipeline, with_poses
from kinesis_training.policies import MoEActor
from kinesis_training.trainer import dry_run_config, train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(library path, motions): three default motions cut to 12 frames."""
    motions = list(load_library("default", split="train").values())[:3]
    short = [m.replace(keypoints=m.keypoints[:12], qpos=m.qpos[:12],
                       root_quat=None if m.root_quat is None else m.root_quat[:12]) for m in motions]
    path = save_library(tmp_path_factory.mktemp("motions") / "tiny.npz", short, {"train": [m.name for m in short]})
    return str(path), {m.name: m for m in short}


@pytest.fixture(scope="module")
def expert(tiny, tmp_path_factory):
    config = load_config("cpu").replace(sampler="inprocess", imitation={"motions": tiny[0], "split": "train"})
    run = tmp_path_factory.mktemp("runs") / "expert"
    train(dry_run_config(config), run, progress=False)
    return run


def test_mine_writes_failed_motions_with_poses(tiny, expert, tmp_path):
    library, motions = tiny
    strict = ImitationConfig.default(motions=library, split="train", eval_termination_distance=1e-4)
    result = mine(expert, strict, tmp_path / "mined")
    assert result.failed == list(motions)  # no policy tracks within 0.1 mm
    mined = load_library(result.library, split="train")
    assert list(mined) == list(motions)
    for name, motion in mined.items():
        np.testing.assert_array_equal(motion.qpos, motions[name].qpos)
        np.testing.assert_array_equal(motion.keypoints, motions[name].keypoints)
    report = json.loads((tmp_path / "mined" / "mining.json").read_text())
    assert report["summary"]["success_rate"] == 0.0 and report["summary"]["failed"] == list(motions)

    lenient = ImitationConfig.default(motions=library, split="train", eval_termination_distance=100.0)
    result = mine(expert, lenient, tmp_path / "none")
    assert result.failed == [] and result.library is None
    assert all(r.success and r.coverage == 1.0 for r in result.results)


def test_with_poses_fits_motions_without_qpos(tiny):
    library, motions = tiny
    motion = next(iter(motions.values()))
    bare = motion.replace(qpos=None, embodiment="")
    config = ImitationConfig.default(motions=library, split="train")
    (posed,) = with_poses({bare.name: bare}, config)
    assert posed.qpos.shape == motion.qpos.shape and posed.embodiment == "legs"
    env = ImitationEnv(config, [bare])
    data = mujoco.MjData(env.model)
    for frame in (0, 11):  # forward kinematics of the fitted pose puts the tracked bodies on the keypoints
        data.qpos[:] = posed.qpos[frame]
        mujoco.mj_kinematics(env.model, data)
        tracked = data.xpos[[env.model.body(name).id for name in env.layout.tracked_names[:7]]]
        assert np.mean(np.linalg.norm(tracked - bare.keypoints[frame, :7], axis=1)) < 0.02


def test_pipeline_two_experts_and_moe(tiny, tmp_path):
    library, motions = tiny
    config = dry_run_config(load_config("cpu").replace(
        sampler="inprocess", imitation={"motions": library, "split": "train", "eval_termination_distance": 1e-4}))
    stages = run_pipeline(config, tmp_path / "pipe", max_experts=2, progress=False)
    assert [s.policy for s in stages] == [tmp_path / "pipe" / "expert_0" / "model.pth",
                                          tmp_path / "pipe" / "moe_1" / "model.pth"]
    assert all(s.mining.failed == list(motions) for s in stages)
    expert_1 = load_config(tmp_path / "pipe" / "expert_1" / "config.yaml")
    assert expert_1.imitation.motions == str(tmp_path / "pipe" / "mined_0")  # trained on the mined set
    assert expert_1.init_from == str(tmp_path / "pipe" / "expert_0" / "model.pth")
    moe = load_checkpoint(tmp_path / "pipe" / "moe_1" / "model.pth")
    assert isinstance(moe.policy, MoEActor) and moe.spec.num_experts == 2
    assert load_config(tmp_path / "pipe" / "moe_1" / "config.yaml").imitation.motions == library  # gate: full set
    again = run_pipeline(config, tmp_path / "pipe", max_experts=2, progress=False)  # resumes: nothing to train
    assert load_checkpoint(tmp_path / "pipe" / "moe_1" / "model.pth").epoch == 1
    assert [s.mining.failed for s in again] == [s.mining.failed for s in stages]

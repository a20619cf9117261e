"""Fine-tuning an imitation checkpoint on a downstream task (`kinesis train --task`) and evaluating it over seeded
goals (`kinesis eval --task`)."""

import json
import math

import numpy as np
import pytest
import torch

from kinesis.cli import main
from kinesis_tasks.evaluation import ZeroPolicy, evaluate_task, summarize_tasks
from kinesis_training import build_actor, build_critic, get_preset, load_checkpoint, save_checkpoint
from kinesis_training.config import TrainConfig, from_dict, load_config, save_config
from kinesis_training.samplers import EpisodeStats
from kinesis_training.trainer import DRY_RUN_BATCH, task_success_rate

FAST = ("--sampler", "inprocess", "--no-progress")
PRIOR_SAMPLES = 1000


@pytest.fixture(scope="module")
def imitation_checkpoint(tmp_path_factory):
    """A freshly built imitation policy for `legs` (504 observations, 80 muscles) whose normalizer has seen data."""
    preset = get_preset("small")
    policy, critic = build_actor("lattice", 504, 80, preset), build_critic(504, preset)
    policy.norm.update(torch.from_numpy(np.random.default_rng(0).normal(size=(PRIOR_SAMPLES, 504)).astype(np.float32)))
    path = tmp_path_factory.mktemp("imitation") / "model.pth"
    save_checkpoint(path, policy, critic, epoch=7, frame=123)
    return path


def test_train_task_from_an_imitation_checkpoint_then_eval_it(imitation_checkpoint, tmp_path, capsys):
    assert main(["train", "--task", "reach", "--init-from", str(imitation_checkpoint), "--name", "reach",
                 "--runs", str(tmp_path), "--dry-run", *FAST]) == 0
    assert "without --init-from" not in capsys.readouterr().err
    run = tmp_path / "reach"
    config = load_config(run / "config.yaml")
    assert config.task == "reach" and config.init_from == str(imitation_checkpoint)
    start, tuned = load_checkpoint(imitation_checkpoint), load_checkpoint(run / "model.pth", obs_dim=504, action_dim=80)
    assert tuned.epoch == 1 and tuned.frame == DRY_RUN_BATCH  # a fresh run from the imitation weights
    assert int(tuned.policy.norm.n) == PRIOR_SAMPLES + DRY_RUN_BATCH  # the normalizer carried over, then updated
    drift = max((tuned.policy.state_dict()[k] - v).abs().max().item() for k, v in start.policy.state_dict().items()
                if k.startswith("net."))
    assert 0 < drift < 0.05  # one small PPO step away from the imitation weights

    out = tmp_path / "eval.json"
    assert main(["eval", "--task", "reach", "--checkpoint", str(run / "model.pth"), "--goals", "2", "--max-time", "0.5",
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "reach" in printed
    report = json.loads(out.read_text())
    assert report["task"] == "reach" and report["checkpoint"] == str(run / "model.pth")
    assert report["max_time_s"] == 0.5 and report["embodiment"] == "legs"
    assert len(report["per_goal"]) == 2 and report["summary"]["goals"] == 2
    assert report["summary"]["success_rate"] == np.mean([g["success"] for g in report["per_goal"]])
    assert {"index", "goal", "success", "outcome", "steps", "time_s", "time_to_success_s", "goal_distance_m",
            "episode_return"} == set(report["per_goal"][0])
    assert all(g["time_s"] <= 0.5 + 1e-9 for g in report["per_goal"])


@pytest.mark.parametrize("argv", [["train", "expert", "--task", "directional"], ["train", "--task", "kick"]])
def test_every_task_dry_runs_and_warns_without_init_from(argv, tmp_path, capsys):
    assert main([*argv, "--name", "run", "--runs", str(tmp_path), "--dry-run", *FAST]) == 0
    assert "KINESIS fine-tunes an imitation policy" in capsys.readouterr().err
    config = load_config(tmp_path / "run" / "config.yaml")
    sizes = (513, 290) if config.task == "kick" else (504, 80)
    assert config.imitation.embodiment == ("legs_back" if config.task == "kick" else "legs")
    load_checkpoint(tmp_path / "run" / "model.pth", obs_dim=sizes[0], action_dim=sizes[1])


def test_size_mismatch_and_bad_arguments_are_clear_errors(imitation_checkpoint, tmp_path, capsys):
    assert main(["train", "--task", "kick", "--init-from", str(imitation_checkpoint), "--name", "k",
                 "--runs", str(tmp_path), "--dry-run", *FAST]) == 2
    assert "observation size 504" in (err := capsys.readouterr().err) and "513 observations" in err
    assert main(["train", "--name", "x", "--runs", str(tmp_path)]) == 2
    assert "choose a KIND" in capsys.readouterr().err
    assert main(["train", "--task", "swim", "--name", "x", "--runs", str(tmp_path), "--dry-run"]) == 2
    assert "task must be one of" in capsys.readouterr().err
    assert main(["eval", "--task", "reach", "--goals", "0"]) == 2
    assert main(["eval", "--task", "kick", "--embodiment", "legs", "--goals", "1"]) == 2
    assert "legs_back" in capsys.readouterr().err


def test_eval_goal_sets_are_seeded_and_workers_agree(tmp_path):
    def goals(seed: int, **kwargs) -> list:
        return evaluate_task("reach", ZeroPolicy(), goals=2, seed=seed, max_time=0.2, **kwargs)

    first = goals(3)
    assert goals(3, workers=2) == first
    assert [r.goal for r in goals(4)] != [r.goal for r in first]
    summary = summarize_tasks(first)
    assert summary["goals"] == 2 and summary["success_rate"] == 0.0 and summary["mean_time_to_success_s"] is None
    assert summary["mean_goal_distance_m"] == pytest.approx(np.mean([r.metric for r in first]))
    assert summary["mean_episode_s"] == pytest.approx(np.mean([r.time_s for r in first]))


def test_task_success_rate_comes_from_the_envs_episode_success():
    stats = EpisodeStats(returns=[1.0, 2.0, 3.0, 4.0], lengths=[5] * 4, successes=[True] * 4,
                         info_sums={"episode_success": 1.0}, steps=20)
    assert task_success_rate(stats) == 0.25  # not the samplers' "reached the time limit" count
    assert math.isnan(task_success_rate(EpisodeStats()))


def test_config_task_round_trips(tmp_path):
    config = TrainConfig(task="kick")
    assert load_config(save_config(config, tmp_path / "config.yaml")) == config
    assert load_config("cpu").task == "imitation"
    with pytest.raises(ValueError, match="task must be one of"):
        from_dict({"task": "swim"})

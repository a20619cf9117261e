"""Trainer and `kinesis train`: dry run end to end, original checkpoint layout, config.yaml, TensorBoard, resume,
determinism, MoE gate training over frozen experts."""

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from kinesis_tasks.evaluation import evaluate
from kinesis_tasks.metrics import summarize
from kinesis_tasks.motions import load_library, save_library

from kinesis import train_cli
from kinesis_training.checkpoint import CHECKPOINT_KEYS, load_checkpoint
from kinesis_training.config import TrainConfig, from_dict, load_config, save_config
from kinesis_training.policies import MoEActor
from kinesis_training.inference import CheckpointPolicy
from kinesis_training.trainer import DRY_RUN_BATCH, Trainer, train

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory) -> str:
    """Three default motions cut to 12 frames."""
    motions = list(load_library("default", split="train").values())[:3]
    short = [m.replace(keypoints=m.keypoints[:12], qpos=m.qpos[:12],
                       root_quat=None if m.root_quat is None else m.root_quat[:12]) for m in motions]
    return str(save_library(tmp_path_factory.mktemp("motions") / "tiny.npz", short, {"train": [m.name for m in short]}))


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    train_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def tiny_config(library: str, **changes) -> TrainConfig:
    config = load_config("cpu").replace(sampler="inprocess", workers=1, min_batch_size=48,
                                        imitation={"motions": library, "split": "train"})
    return config.replace(ppo={"opt_epochs": 2}, **changes)


def scalar_tags(run_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for events in run_dir.glob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    return tags


def test_dry_run_end_to_end(tiny_library, tmp_path):
    assert cli("train", "expert", "--name", "dry", "--runs", str(tmp_path), "--motions", f"{tiny_library}:train",
               "--sampler", "mp", "--workers", "2", "--muscle-condition", "fatigue", "--dry-run", "--no-progress") == 0
    run = tmp_path / "dry"
    raw = torch.load(run / "model.pth", weights_only=True)
    assert tuple(raw) == CHECKPOINT_KEYS
    ckpt = load_checkpoint(run / "model.pth", obs_dim=504, action_dim=80)
    assert ckpt.spec.kind == "lattice" and ckpt.spec.mlp_units == (256, 256)
    assert ckpt.epoch == 1 and ckpt.frame == DRY_RUN_BATCH
    assert int(ckpt.policy.norm.n) == DRY_RUN_BATCH  # the normalizer saw the batch once (1 PPO epoch in a dry run)
    config = load_config(run / "config.yaml")
    assert config.imitation.muscle_condition == "fatigue" and config.imitation.motions == tiny_library
    assert config.epochs == 1 and config.sampler == "mp" and config.workers == 2
    assert {"episode/return", "step/mpjpe_mm", "step/reward/body_pos", "ppo/pg_loss", "ppo/v_loss", "ppo/entropy",
            "perf/samples_per_s"} <= scalar_tags(run)


def test_resume_continues_from_saved_epoch(tiny_library, tmp_path):
    config = tiny_config(tiny_library, epochs=1)
    train(config, tmp_path / "run", progress=False)
    first = load_checkpoint(tmp_path / "run" / "model.pth")
    with pytest.raises(ValueError, match="already holds model.pth"):
        train(config, tmp_path / "run", progress=False)
    train(config.replace(epochs=3), tmp_path / "run", resume=True, progress=False)
    resumed = load_checkpoint(tmp_path / "run" / "model.pth")
    assert resumed.epoch == 3 and resumed.frame == 3 * first.frame
    steps = {int(s["step"]) for s in resumed.optimizer_policy["state"].values()}
    assert steps == {3 * config.ppo.opt_epochs}  # the optimizer state carried over: 3 epochs x 2 Adam steps
    assert int(resumed.policy.norm.n) == 3 * config.ppo.opt_epochs * first.frame
    assert load_config(tmp_path / "run" / "config.yaml").epochs == 3


def test_sigterm_saves_the_run(tiny_library, tmp_path):
    """A run in the background is stopped with SIGTERM: it writes model.pth at the last completed epoch."""
    config = tiny_config(tiny_library, epochs=100_000, save_every=100_000)
    save_config(config, tmp_path / "tiny.yaml")
    process = subprocess.Popen([sys.executable, "-m", "kinesis.cli", "train", "expert", "--name", "bg", "--runs",
                                str(tmp_path), "--config", str(tmp_path / "tiny.yaml"), "--no-progress"])
    metrics = tmp_path / "bg" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 130
    logged = len(metrics.read_text().splitlines())  # the signal may fall between an epoch and its log line
    assert load_checkpoint(tmp_path / "bg" / "model.pth").epoch in (logged, logged + 1) and logged >= 2


def test_evaluation_during_training_and_failure_weights(tiny_library, tmp_path):
    """eval_every: the logged eval/* are `kinesis eval` of model.pth; best_eval.pth kept; motion_sampling
    failures hands the envs floor + 1 - coverage per motion."""
    config = tiny_config(tiny_library, epochs=2, eval_every=1, motion_sampling="failures", sampling_floor=0.5)
    train(config, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows if "eval/success_rate" in row] == [1, 2]
    motions = load_library(tiny_library, split="train")
    results = evaluate(motions, CheckpointPolicy(str(tmp_path / "run" / "model.pth")), config=config.imitation)
    summary = summarize(results)
    assert rows[-1]["eval/success_rate"] == summary["success_rate"]
    assert rows[-1]["eval/mpjpe_mm"] == pytest.approx(summary["mpjpe_mm"], rel=1e-9)
    saved = json.loads((tmp_path / "run" / "evals" / "2.json").read_text())  # each evaluation, per motion
    assert saved["summary"] == summary and [m["motion"] for m in saved["per_motion"]] == [r.motion for r in results]
    best = json.loads((tmp_path / "run" / "best_eval.json").read_text())
    best_row = max(rows, key=lambda row: (row["eval/success_rate"], -row["eval/mpjpe_mm"]))
    assert best["epoch"] == best_row["epoch"] and load_checkpoint(tmp_path / "run" / "best_eval.pth").epoch == best["epoch"]

    class Recorder:
        calls: list = []

        def call(self, *args):
            self.calls.append(args)

    trainer = Trainer(config.replace(epochs=3), tmp_path / "run", resume=True, progress=False)
    trainer._evaluate(Recorder())
    ((method, weights),) = Recorder.calls
    assert method == "set_motion_weights"
    assert weights == {r.motion: pytest.approx(1.5 - r.frames_tracked / r.frames_total) for r in results}
    # eval_starts: 3 start frames per motion; the weight uses the motion's mean coverage over them.
    Recorder.calls.clear()
    trainer = Trainer(config.replace(epochs=3, eval_starts=3), tmp_path / "run", resume=True, progress=False)
    trainer._evaluate(Recorder())
    ((method, weights),) = Recorder.calls
    several = evaluate(motions, CheckpointPolicy(str(tmp_path / "run" / "model.pth")), config=config.imitation,
                       starts=3)
    assert len(several) > len(results)
    assert weights == {m: pytest.approx(1.5 - np.mean([r.coverage for r in several if r.motion == m])) for m in motions}
    with pytest.raises(ValueError, match="eval_starts must be >= 1"):
        from_dict({"eval_starts": 0})
    with pytest.raises(ValueError, match="needs eval_every"):
        from_dict({"motion_sampling": "failures"})
    with pytest.raises(ValueError, match="no motions to evaluate"):
        from_dict({"task": "reach", "eval_every": 10})


def test_evaluation_on_other_motions(tiny_library, tmp_path):
    """eval_motions: the evaluations use that library and split, not the training motions."""
    motions = load_library(tiny_library)
    names = sorted(motions)
    library = str(save_library(tmp_path / "split.npz", list(motions.values()),
                               {"train": names[:2], "test": names[2:]}))
    config = tiny_config(library, epochs=1, eval_every=1, eval_motions=f"{library}:test")
    train(config, tmp_path / "run", progress=False)
    saved = json.loads((tmp_path / "run" / "evals" / "1.json").read_text())
    assert [m["motion"] for m in saved["per_motion"]] == names[2:]
    results = evaluate({name: motions[name] for name in names[2:]},
                       CheckpointPolicy(str(tmp_path / "run" / "model.pth")), config=config.imitation)
    assert saved["summary"] == summarize(results)
    with pytest.raises(ValueError, match="cannot be combined with eval_motions"):
        from_dict({"eval_every": 1, "motion_sampling": "failures", "eval_motions": "default:train"})


def test_same_seed_same_weights(tiny_library, tmp_path):
    config = tiny_config(tiny_library, epochs=2)
    runs = [train(config, tmp_path / name, progress=False) for name in ("a", "b")]
    assert runs[0]["episode/return"] == runs[1]["episode/return"]
    a, b = (load_checkpoint(tmp_path / name / "model.pth").policy.state_dict() for name in ("a", "b"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_moe_trains_gate_only(tiny_library, tmp_path):
    for name in ("expert_0", "expert_1"):
        cli("train", "expert", "--name", name, "--runs", str(tmp_path), "--config", "cpu", "--sampler", "inprocess",
            "--motions", f"{tiny_library}:train", "--seed", name[-1], "--dry-run", "--no-progress")
    assert cli("train", "moe", "--experts", str(tmp_path / "expert_"), "--name", "moe", "--runs", str(tmp_path),
               "--sampler", "inprocess", "--motions", f"{tiny_library}:train", "--dry-run", "--no-progress") == 0
    moe = load_checkpoint(tmp_path / "moe" / "model.pth")
    assert isinstance(moe.policy, MoEActor) and moe.spec.num_experts == 2 and moe.epoch == 1
    state = moe.policy.state_dict()
    for k in range(2):
        expert = load_checkpoint(tmp_path / f"expert_{k}" / "model.pth").policy.state_dict()
        for ours, theirs in (("1.", "net."), ("2.", "action_mean.")):
            for key, value in expert.items():
                if key.startswith(theirs):
                    torch.testing.assert_close(state[f"experts.experts.{k}.{ours}{key[len(theirs):]}"], value,
                                               rtol=0, atol=0)
    expert_0_n = int(load_checkpoint(tmp_path / "expert_0" / "model.pth").policy.norm.n)
    assert int(moe.policy.norm.n) == expert_0_n + DRY_RUN_BATCH  # the gate's normalizer: expert 0's, then the batch


def test_config_yaml_round_trip_and_errors(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"preset": "paper", "workers": 3, "ppo": {"clip_epsilon": 0.1},
                                    "imitation": {"muscle_condition": "fatigue"}}))
    config = load_config(path)
    assert (config.min_batch_size, config.network, config.workers) == (51_200, "paper", 3)
    assert config.ppo.clip_epsilon == 0.1 and config.ppo.policy_lr == 5e-5
    assert config.imitation.muscle_condition == "fatigue"
    with pytest.raises(ValueError, match="unknown keys \\['min_batch'\\]"):
        from_dict({"min_batch": 3})
    with pytest.raises(ValueError, match="sampler must be one of"):
        from_dict({"sampler": "threads"})
    for name in ("train_paper", "train_cpu"):
        assert load_config(CONFIG_DIR / f"{name}.yaml") == load_config(name.split("_")[1])


def test_shipped_presets_differ_in_scale():
    paper, cpu = load_config("paper"), load_config("cpu")
    assert paper.min_batch_size == 51_200 and paper.network == "paper" and np.isclose(paper.ppo.gamma, 0.99)
    assert cpu.min_batch_size < paper.min_batch_size and cpu.network == "small"


def test_curves_smooth_and_plot(tmp_path):
    from kinesis_training.curves import smoothed

    np.testing.assert_allclose(smoothed([1.0, 3.0, float("nan"), 5.0], 2), [1.0, 2.0, 3.0, 5.0])
    rows = [{"epoch": i, "samples": 4096 * i, "wall_s": 2.0 * i, "episode/length": 5.0 + i, "step/mpjpe_mm": 100.0 - i}
            for i in range(1, 30)]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert cli("train", "curves", f"{tmp_path / 'run'}=run", "--out", str(tmp_path / "c.png")) == 0
    png = (tmp_path / "c.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[20:24], "big") == 8 * 90  # height: 2 rows
    for row in rows[9::10]:  # an evaluation every 10 epochs adds the row of eval panels
        row.update({"eval/success_rate": 0.5, "eval/mpjpe_mm": 90.0})
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert cli("train", "curves", f"{tmp_path / 'run'}=run", "--out", str(tmp_path / "c.png")) == 0
    assert int.from_bytes((tmp_path / "c.png").read_bytes()[20:24], "big") == 12 * 90
    with pytest.raises(FileNotFoundError, match="no run folder"):
        cli("train", "curves", str(tmp_path / "missing"))

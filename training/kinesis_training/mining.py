"""Negative mining: evaluate a policy on the training motions, keep the failures, train the next expert on them.

``mine`` evaluates a checkpoint on every motion of a set (``kinesis_tasks.evaluation``: once from frame 0,
mean action, termination at 0.5 m) and writes the failed motions as a new library (split ``train``) plus
``mining.json`` with the per-motion results. Each written motion carries its poses: motions without a qpos
for the run's embodiment get one from the env's IK fit of every frame, so the next expert's episodes
start from ready-made initial states.

``run_pipeline`` is the KINESIS loop under one folder::

    expert_0/  trained on the whole training set
    mined_0/   motions the current policy (expert_0) fails
    expert_1/  trained on mined_0, starting from expert_0's weights
    moe_1/     gate over expert_0..1 trained on the whole set (experts frozen)
    mined_1/   motions moe_1 fails  ... until few motions fail or max_experts experts exist.

Every stage resumes from its ``model.pth`` when present, so an interrupted pipeline continues where it stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from kinesis_tasks.evaluation import evaluate
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.metrics import MotionResult, summarize
from kinesis_tasks.motions import ReferenceMotion, load_library, save_library

from kinesis_training.config import TrainConfig
from kinesis_training.inference import CheckpointPolicy


@dataclass
class MiningResult:
    """Outcome of one mining pass."""

    results: list[MotionResult]
    """Per motion, in library order."""
    failed: list[str]
    """Names of the failed motions."""
    library: Path | None
    """The written library of failed motions (None when nothing failed)."""


def checkpoint_file(path: str | os.PathLike) -> Path:
    """``path`` itself if it is a file, else ``path/model.pth``."""
    path = Path(path)
    file = path / "model.pth" if path.is_dir() else path
    if not file.is_file():
        raise ValueError(f"expert {path}: no checkpoint file (expected a model.pth or a run folder holding one)")
    return file


def with_poses(motions: Mapping[str, ReferenceMotion], config: ImitationConfig) -> list[ReferenceMotion]:
    """``motions`` with a qpos [T, nq] for ``config.embodiment`` (IK fit per frame where they have none)."""
    env = None
    out = []
    for motion in motions.values():
        if motion.qpos is None or motion.embodiment != config.embodiment:  # none, or another embodiment's
            env = env or ImitationEnv(config, motions)
            qpos = np.stack([env.fitted_qpos(motion.name, frame) for frame in range(motion.num_frames)])
            motion = replace(motion, qpos=qpos, embodiment=config.embodiment)
        out.append(motion)
    return out


def mine(expert: str | os.PathLike, config: ImitationConfig, out: str | os.PathLike, *, workers: int = 1,
         seed: int = 0) -> MiningResult:
    """Evaluates ``expert`` on the motions of ``config`` (library and split) and writes the failures to ``out``.

    ``out`` is a folder (or a ``.npz`` file) for the library of failed motions (split ``train``);
    ``mining.json`` (per-motion results and summary) goes into the folder, or beside the ``.npz``.
    """
    motions = load_library(config.motions, split=config.split)
    if not motions:
        raise ValueError(f"motions {config.motions}:{config.split}: no motions to evaluate")
    results = evaluate(motions, CheckpointPolicy(str(checkpoint_file(expert))), config=config,
                       workers=workers, seed=seed)
    failed = [r.motion for r in results if not r.success]
    out = Path(out)
    library = None
    if failed:
        library = save_library(out, with_poses({name: motions[name] for name in failed}, config),
                               splits={"train": failed})
    report_path = (out if out.suffix != ".npz" else out.parent) / (
        "mining.json" if out.suffix != ".npz" else f"{out.stem}.mining.json")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps({
        "expert": str(checkpoint_file(expert)),
        "motions": f"{config.motions}:{config.split}",
        "summary": summarize(results),
        "per_motion": [r.to_dict() for r in results],
    }, indent=2))
    return MiningResult(results=results, failed=failed, library=library)


@dataclass
class PipelineStage:
    """One round of the pipeline."""

    expert: Path
    """The round's expert run folder."""
    policy: Path
    """The combined policy evaluated after the round (expert_0, then moe_k)."""
    mining: MiningResult


def _train_stage(config: TrainConfig, run_dir: Path, progress: bool) -> Path:
    from kinesis_training.trainer import Trainer

    resume = (run_dir / "model.pth").is_file()
    Trainer(config, run_dir, resume=resume, progress=progress).train()
    return run_dir / "model.pth"


def run_pipeline(config: TrainConfig, root: str | os.PathLike, *, max_experts: int = 3,
                 stop_when_failed_below: int = 1, progress: bool = True,
                 on_stage: Callable[[PipelineStage], None] | None = None) -> list[PipelineStage]:
    """The negative-mining loop (module docstring); stops when fewer than ``stop_when_failed_below`` motions
    fail or after ``max_experts`` experts. ``config`` is the expert config (its imitation set: the full set)."""
    if max_experts < 1:
        raise ValueError(f"max_experts must be >= 1, got {max_experts}")
    root = Path(root)
    full_set = config.imitation
    eval_workers = config.num_workers if config.sampler != "inprocess" else 1
    stages: list[PipelineStage] = []
    experts: list[Path] = []
    train_set = full_set
    for k in range(max_experts):
        expert_config = replace(config, imitation=train_set, init_from=str(experts[-1]) if experts else config.init_from)
        experts.append(_train_stage(expert_config, root / f"expert_{k}", progress))
        if k == 0:
            policy = experts[0]
        else:
            moe_config = replace(config, actor="moe", experts=tuple(str(p) for p in experts), init_from=None,
                                 imitation=full_set)
            policy = _train_stage(moe_config, root / f"moe_{k}", progress)
        mining = mine(policy, full_set, root / f"mined_{k}", workers=eval_workers, seed=config.seed)
        stage = PipelineStage(expert=root / f"expert_{k}", policy=policy, mining=mining)
        stages.append(stage)
        if on_stage is not None:
            on_stage(stage)
        if len(mining.failed) < stop_when_failed_below or mining.library is None:
            break
        train_set = replace(full_set, motions=str(mining.library), split="train")
    return stages

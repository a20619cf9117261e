"""Evaluation during training and failure-weighted motion sampling (hard-motion mining within one run).

Every ``eval_every`` epochs the trainer evaluates the checkpoint it has just written the way ``kinesis
eval`` does (each training motion from its first frame, mean action, 0.5 m termination; with ``eval_starts:
K`` also from K - 1 frames over its first half, as ``kinesis eval --starts K``), logs
``eval/success_rate``, ``eval/mpjpe_mm`` and ``eval/coverage``, and keeps the best evaluated checkpoint
as ``best_eval.pth``. With ``motion_sampling: failures`` the envs then draw motion m with probability
proportional to ``sampling_floor + (1 - coverage_m)``: a motion the policy loses early is trained on most,
one it tracks to the end keeps the floor. This is the motion library's hard-negative sampling of PHC,
the per-run counterpart of KINESIS's expert-by-expert mining (``kinesis_training.mining``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kinesis_tasks.evaluation import evaluate
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.metrics import MotionResult, summarize
from kinesis_tasks.motions import ReferenceMotion

MOTION_SAMPLING: tuple[str, ...] = ("uniform", "failures")


def evaluate_checkpoint(path: Path, motions: Mapping[str, ReferenceMotion],
                        config: ImitationConfig, starts: int = 1) -> list[MotionResult]:
    """Each motion from ``starts`` start frames (``evaluation.start_frames``) with the mean action of checkpoint
    ``path``, in this process (``kinesis eval --starts``)."""
    from kinesis_training.inference import load_policy

    def factory(obs_size: int, action_size: int):
        return load_policy(path, obs_dim=obs_size, action_dim=action_size).mean_action

    return evaluate(motions, factory, config=config, workers=1, starts=starts)


def failure_weights(results: Sequence[MotionResult], floor: float) -> dict[str, float]:
    """Sampling weight per motion: ``floor + 1 - coverage`` (unnormalized; coverage averaged over its starts)."""
    coverages: dict[str, list[float]] = {}
    for r in results:
        coverages.setdefault(r.motion, []).append(r.coverage)
    return {motion: floor + 1.0 - float(np.mean(values)) for motion, values in coverages.items()}


def eval_scalars(results: Sequence[MotionResult]) -> dict[str, float]:
    """``eval/success_rate``, ``eval/mpjpe_mm`` and ``eval/coverage`` of an evaluation."""
    summary = summarize(results)
    return {f"eval/{key}": float(summary[key]) for key in ("success_rate", "mpjpe_mm", "coverage")}


def is_better(scalars: Mapping[str, float], best: Mapping[str, Any] | None) -> bool:
    """Higher success rate, then lower MPJPE, than ``best`` (None: nothing evaluated yet)."""
    if best is None:
        return True
    mine = (scalars["eval/success_rate"], -scalars["eval/mpjpe_mm"])
    return mine > (best["eval/success_rate"], -best["eval/mpjpe_mm"])


def weights_line(weights: Mapping[str, float], top: int = 3) -> str:
    """The ``top`` most sampled motions and their probabilities, for the progress output."""
    total = sum(weights.values())
    ranked = sorted(weights.items(), key=lambda item: -item[1])[:top]
    uniform = 1.0 / len(weights)
    return ", ".join(f"{name} {value / total:.2f}" for name, value in ranked) + f" (uniform {uniform:.2f})"

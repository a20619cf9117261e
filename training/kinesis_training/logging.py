"""Training logs: TensorBoard event files (``torch.utils.tensorboard``), optionally Weights & Biases offline.

Scalars are logged under their own names, grouped by prefix: ``episode/`` (return, length, success rate),
``step/`` (per-step means of the env infos: ``step/reward/<term>``, ``step/mpjpe_mm``), ``eval/`` (success
rate and MPJPE of an evaluation), ``ppo/`` (losses, entropy, approx KL) and ``perf/`` (samples/s).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any


class TrainLogger:
    """Writes scalars of one run to ``run_dir`` (TensorBoard) and, if asked, to wandb in offline mode."""

    def __init__(self, run_dir: str | os.PathLike, *, wandb: bool = False, name: str = "",
                 config: Mapping[str, Any] | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.writer = SummaryWriter(log_dir=str(self.run_dir))
        self.wandb_run = None
        if wandb:
            try:
                import wandb as wandb_module
            except ImportError as error:
                raise ValueError("config wandb: true needs the wandb package (pip install wandb)") from error
            self.wandb_run = wandb_module.init(mode="offline", dir=str(self.run_dir), name=name or self.run_dir.name,
                                               config=dict(config or {}), resume="allow")

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        """Logs finite scalars at ``step`` (the epoch); NaN entries (e.g. no finished episode) are skipped."""
        finite = {key: float(value) for key, value in scalars.items() if math.isfinite(float(value))}
        for key, value in finite.items():
            self.writer.add_scalar(key, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log(finite, step=step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


class MetricsFile:
    """``metrics.jsonl``: one JSON line per epoch with ``epoch``, ``samples``, ``wall_s`` and the scalars.

    ``wall_s`` is the training time of the run so far (epochs only, resumed sessions added up). A resumed
    run drops lines past its checkpoint's ``epoch`` (written after the checkpoint it resumes from).
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool, epoch: int) -> None:
        self.path = Path(path)
        lines = self.path.read_text().splitlines() if resume and self.path.is_file() else []
        kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] <= epoch]
        self.wall_s = json.loads(kept[-1])["wall_s"] if kept else 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("".join(line + "\n" for line in kept))

    def append(self, epoch: int, samples: int, epoch_s: float, scalars: Mapping[str, float]) -> None:
        self.wall_s += epoch_s
        row = {"epoch": epoch, "samples": samples, "wall_s": round(self.wall_s, 3),
               **{k: v for k, v in scalars.items() if math.isfinite(float(v))}}
        with self.path.open("a") as file:
            file.write(json.dumps(row) + "\n")


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a ``metrics.jsonl`` file (or of ``RUN_DIR/metrics.jsonl`` for a run folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def epoch_line(epoch: int, last: int, samples: int, scalars: Mapping[str, float], eta_s: float) -> str:
    """One progress line: epoch, samples, end-to-end samples/s, episode length, return, MPJPE, success, ETA."""
    def value(key: str, fmt: str) -> str:
        number = scalars.get(key, math.nan)
        return format(number, fmt) if math.isfinite(number) else "-"

    return (f"epoch {epoch}/{last}  samples {samples:,}  {value('perf/epoch_samples_per_s', ',.0f')}/s  "
            f"ep_len {value('episode/length', '.1f')}  return {value('episode/return', '.2f')}  "
            f"mpjpe {value('step/mpjpe_mm', '.0f')} mm  success {value('episode/success_rate', '.2f')}  "
            f"ETA {timedelta(seconds=round(eta_s))}")

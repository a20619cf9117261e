"""Training logs: TensorBoard event files (``torch.utils.tensorboard``), optionally Weights & Biases offline.

Scalars are logged under their own names, grouped by prefix: ``episode/`` (return, length, success rate),
``step/`` (per-step means of the env infos: ``step/reward/<term>``, ``step/mpjpe_mm``), ``eval/`` (success
rate and MPJPE of an evaluation), ``ppo/`` (losses, entropy, approx KL) and ``perf/`` (samples/s).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
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

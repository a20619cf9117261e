"""Learning curves of training runs (``metrics.jsonl``) as one PNG: episode length and MPJPE against samples
and against training wall time. ``kinesis train curves`` is its command line."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from kinesis_training.logging import read_metrics

PANELS = (("samples", "episode/length", "episode length (control steps)"),
          ("samples", "step/mpjpe_mm", "MPJPE (mm)"),
          ("wall_s", "episode/length", "episode length (control steps)"),
          ("wall_s", "step/mpjpe_mm", "MPJPE (mm)"))


def smoothed(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (NaNs skipped)."""
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values)
    sums = np.cumsum(np.where(valid, values, 0.0))
    counts = np.cumsum(valid)
    lagged = lambda a: np.concatenate((np.zeros(window), a[:-window])) if len(a) > window else np.zeros(len(a))
    return (sums - lagged(sums)) / np.maximum(counts - lagged(counts), 1)


def plot_curves(runs: Mapping[str, str | os.PathLike], out: str | os.PathLike, *, window: int = 20) -> Path:
    """Writes the 2x2 figure of ``runs`` (label -> run folder or metrics.jsonl) to ``out``; returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 8), tight_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, 2).ravel()
    for label, source in runs.items():
        rows = read_metrics(source)
        for ax, (x_key, y_key, y_label) in zip(axes, PANELS):
            x = np.array([row.get(x_key, np.nan) for row in rows], dtype=np.float64)
            x = x / 1e6 if x_key == "samples" else x / 3600.0
            ax.plot(x, smoothed([row.get(y_key, np.nan) for row in rows], window), label=label, linewidth=1.2)
            ax.set_xlabel("samples (millions)" if x_key == "samples" else "training wall time (h)")
            ax.set_ylabel(y_label)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    out = Path(out)
    figure.savefig(out, dpi=90)
    return out

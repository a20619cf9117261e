"""Learning curves of training runs (``metrics.jsonl``) as one PNG: episode length and MPJPE against samples
and against training wall time, and, when a run has them (``eval_every``), the ``kinesis eval`` success rate
and MPJPE on the training motions against samples. ``kinesis train curves`` is its command line.
``plot_distillation`` draws a distillation log (``scripts/distill_experts.py``)."""

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
EVAL_PANELS = (("samples", "eval/success_rate", "kinesis eval: success rate"),
               ("samples", "eval/mpjpe_mm", "kinesis eval: MPJPE (mm)"))
"""Sparse points (one per evaluation), drawn unsmoothed."""


def smoothed(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points (NaNs skipped)."""
    values = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(values)
    sums = np.cumsum(np.where(valid, values, 0.0))
    counts = np.cumsum(valid)
    lagged = lambda a: np.concatenate((np.zeros(window), a[:-window])) if len(a) > window else np.zeros(len(a))
    return (sums - lagged(sums)) / np.maximum(counts - lagged(counts), 1)


def plot_curves(runs: Mapping[str, str | os.PathLike], out: str | os.PathLike, *, window: int = 20) -> Path:
    """Writes the figure of ``runs`` (label -> run folder or metrics.jsonl) to ``out``: 2x2 panels, plus a row
    of evaluation panels when a run has ``eval/*`` scalars; returns its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = {label: read_metrics(source) for label, source in runs.items()}
    evaluated = any("eval/success_rate" in row for rows in metrics.values() for row in rows)
    panels = PANELS + (EVAL_PANELS if evaluated else ())
    figure = Figure(figsize=(12, 4 * len(panels) // 2), tight_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels) // 2, 2).ravel()
    for label, rows in metrics.items():
        for ax, (x_key, y_key, y_label) in zip(axes, panels):
            if y_key.startswith("eval/"):
                rows_with = [row for row in rows if y_key in row]
                x, y = _column(rows_with, x_key), [row[y_key] for row in rows_with]
                ax.plot(x, y, marker=".", label=label, linewidth=1.0)
            else:
                ax.plot(_column(rows, x_key), smoothed([row.get(y_key, np.nan) for row in rows], window),
                        label=label, linewidth=1.2)
            ax.set_xlabel("samples (millions)" if x_key == "samples" else "training wall time (h)")
            ax.set_ylabel(y_label)
            ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    out = Path(out)
    figure.savefig(out, dpi=90)
    return out


def _column(rows: Sequence[Mapping[str, float]], x_key: str) -> np.ndarray:
    """Samples in millions or wall time in hours."""
    x = np.array([row.get(x_key, np.nan) for row in rows], dtype=np.float64)
    return x / 1e6 if x_key == "samples" else x / 3600.0


DISTILLATION_PANELS = (("loss", "loss (Huber, clipped mean action)"),
                       (("eval/success_rate", "eval/taught_success", "eval/other_success"), "kinesis eval: success"),
                       ("eval/mpjpe_mm", "kinesis eval: MPJPE (mm)"))


def plot_distillation(log: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Writes the curve of a distillation ``log.jsonl`` to ``out``: loss, evaluation success (all motions, the
    teachers' motions, the others) and MPJPE against the states collected; returns its path."""
    import json

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
    figure = Figure(figsize=(15, 4), tight_layout=True)
    FigureCanvasAgg(figure)
    states = np.array([row["states"] for row in rows], dtype=np.float64) / 1e3
    for ax, (keys, label) in zip(figure.subplots(1, 3), DISTILLATION_PANELS):
        for key in (keys,) if isinstance(keys, str) else keys:
            values = np.array([row.get(key, np.nan) for row in rows], dtype=np.float64)
            if np.isfinite(values).any():
                ax.plot(states, values, marker=".", label=key.removeprefix("eval/"))
        ax.set_xlabel("states collected (thousands)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if not isinstance(keys, str) and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    out = Path(out)
    figure.savefig(out, dpi=90)
    return out

"""Imitation metrics per motion (success, MPJPE, frame coverage) and their summary over a motion set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class MotionResult:
    """One evaluation episode of one motion, from frame ``start`` (0: its first frame, the KINESIS criterion).

    success: the episode reached the end of the motion without terminating.
    mpjpe_mm: mean over the episode's control steps (the terminating one included) of the mean
        Euclidean distance of the tracked bodies to the reference, mm.
    frames_tracked: control steps that ended within the termination distance.
    frames_total: control steps from ``start`` to the motion's end.
    """

    motion: str
    success: bool
    mpjpe_mm: float
    frames_tracked: int
    frames_total: int
    start: int = 0

    @property
    def episode(self) -> str:
        """``motion``, or ``motion@start`` for an episode that did not start at frame 0."""
        return self.motion if self.start == 0 else f"{self.motion}@{self.start}"

    @property
    def coverage(self) -> float:
        """frames_tracked / frames_total, in [0, 1]."""
        return self.frames_tracked / self.frames_total

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "coverage": self.coverage}


def summarize(results: Sequence[MotionResult]) -> dict[str, Any]:
    """Overall metrics: success rate, MPJPE (mean of the per-motion values, mm), mean coverage, failures."""
    if not results:
        raise ValueError("results: no motions were evaluated")
    return {
        "motions": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "mpjpe_mm": float(np.mean([r.mpjpe_mm for r in results])),
        "coverage": float(np.mean([r.coverage for r in results])),
        "failed": [r.episode for r in results if not r.success],
    }

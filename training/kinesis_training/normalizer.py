"""Running observation normalizer of the original KINESIS policies.

Implements conformance README section 6: buffers ``n`` (int64 count) and ``mean``/``var``/``std``
(float32, one per input), a float32 parallel-variance update with the biased batch variance, and the
output ``clip((x - mean) / (std + 1e-8), -5, 5)`` (identity while ``n == 0``). The module updates itself
on every forward call in training mode and never in evaluation mode. Buffer names match the state-dict
layout of README section 7.3 (``norm.n``, ``norm.mean``, ``norm.var``, ``norm.std``).
"""

from __future__ import annotations

import torch
from torch import nn

CLIP = 5.0
EPS = 1e-8


class RunningNorm(nn.Module):
    """Normalizes observations [B, dim] with running statistics; updates them in training mode."""

    n: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int, clip: float = CLIP, eps: float = EPS) -> None:
        super().__init__()
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.dim = dim
        self.clip = clip
        self.eps = eps
        self.register_buffer("n", torch.tensor(0, dtype=torch.int64))
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.zeros(dim))
        self.register_buffer("std", torch.zeros(dim))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merges a batch x [m, dim] into the statistics (float32, biased batch variance)."""
        x = x.reshape(-1, self.dim).to(torch.float32)
        m = x.shape[0]
        if m == 0:
            return
        var_x, mean_x = torch.var_mean(x, dim=0, unbiased=False)
        w = self.n.to(torch.float32) / float(self.n.item() + m)
        self.var.copy_(w * self.var + (1 - w) * var_x + w * (1 - w) * (mean_x - self.mean).pow(2))
        self.mean.copy_(w * self.mean + (1 - w) * mean_x)
        self.std.copy_(torch.sqrt(self.var))
        self.n.add_(m)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """x [..., dim] -> clip((x - mean) / (std + eps)); identity while n == 0. Never updates."""
        if self.n.item() == 0:
            return x
        return ((x - self.mean) / (self.std + self.eps)).clamp(-self.clip, self.clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Updates with x first when in training mode, then normalizes x [..., dim]."""
        if self.training:
            self.update(x)
        return self.normalize(x)

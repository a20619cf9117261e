"""MLP trunk and critic of the original KINESIS networks.

Implements conformance README section 7.1: ``MLP(units)`` is a stack of Linear layers with SiLU after
every layer (the last hidden layer included), stored as ``affine_layers.{i}.weight/bias``; the critic is
``value_head`` (Linear(units[-1] -> 1)) on ``net`` (an MLP of the raw, unnormalized observation), with the
state-dict keys of README section 7.3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

OUTPUT_INIT_SCALE = 0.1
"""Output layers start at 0.1 x PyTorch's default weights with zero bias (README section 10)."""


def scale_output_layer(layer: nn.Linear, scale: float = OUTPUT_INIT_SCALE) -> None:
    """Shrinks a freshly initialised output layer's weights by `scale` and zeroes its bias."""
    with torch.no_grad():
        layer.weight.mul_(scale)
        layer.bias.zero_()


class MLP(nn.Module):
    """in_dim -> units[0] -> ... -> units[-1], SiLU after every layer. Input [..., in_dim]."""

    def __init__(self, in_dim: int, units: Sequence[int]) -> None:
        super().__init__()
        if not units:
            raise ValueError("units must name at least one hidden layer")
        widths = [in_dim, *units]
        self.affine_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out_dim = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.affine_layers:
            x = F.silu(layer(x))
        return x


class Critic(nn.Module):
    """State value V(obs): obs [B, obs_dim] (raw, no normalizer) -> [B, 1]."""

    def __init__(self, obs_dim: int, units: Sequence[int]) -> None:
        super().__init__()
        self.net = MLP(obs_dim, units)
        self.value_head = nn.Linear(self.net.out_dim, 1)
        scale_output_layer(self.value_head)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value_head(self.net(obs))

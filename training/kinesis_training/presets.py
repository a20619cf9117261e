"""Network size presets and actor/critic builders.

``paper``: the published KINESIS configuration (conformance README section 7.1): MLP
2048-1536-1024-1024-512-512 for policy, experts and critic, MoE gate 1024-512-256.
``small``: a CPU-sized variant with the same layout (only shapes change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kinesis_training.networks import Critic
from kinesis_training.policies import Actor, GaussianActor, LatticeActor, MoEActor

ActorKind = Literal["gaussian", "lattice", "moe"]


@dataclass(frozen=True)
class NetworkPreset:
    """Hidden layer widths of the networks."""

    mlp_units: tuple[int, ...]
    """Hidden widths of the policy MLP, the MoE experts and the critic; the last one is the Lattice latent size."""
    gate_units: tuple[int, ...]
    """Hidden widths of the MoE gate MLP."""
    log_std_init: float = 0.0
    """Initial value of every ``log_std`` entry (Gaussian and Lattice)."""


PRESETS: dict[str, NetworkPreset] = {
    "paper": NetworkPreset(mlp_units=(2048, 1536, 1024, 1024, 512, 512), gate_units=(1024, 512, 256)),
    "small": NetworkPreset(mlp_units=(256, 256), gate_units=(64, 32)),
}


def get_preset(name: str) -> NetworkPreset:
    """The preset called `name` ('paper' or 'small')."""
    if name not in PRESETS:
        raise ValueError(f"unknown network preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]


def build_actor(
    kind: ActorKind, obs_dim: int, action_dim: int, preset: NetworkPreset, num_experts: int = 3
) -> Actor:
    """A freshly initialised actor of `kind` ('gaussian', 'lattice' or 'moe') with the preset's sizes."""
    if kind == "gaussian":
        return GaussianActor(obs_dim, action_dim, preset.mlp_units, preset.log_std_init)
    if kind == "lattice":
        return LatticeActor(obs_dim, action_dim, preset.mlp_units, preset.log_std_init)
    if kind == "moe":
        return MoEActor(obs_dim, action_dim, preset.mlp_units, preset.gate_units, num_experts)
    raise ValueError(f"unknown actor kind {kind!r}; choose 'gaussian', 'lattice' or 'moe'")


def build_critic(obs_dim: int, preset: NetworkPreset) -> Critic:
    """A freshly initialised critic with the preset's MLP widths."""
    return Critic(obs_dim, preset.mlp_units)

"""ROS-free offline training of KINESIS policies: networks, PPO, checkpoints in the original layout."""

from kinesis_training.checkpoint import (
    Checkpoint,
    PolicySpec,
    describe,
    load_checkpoint,
    load_moe_from_experts,
    save_checkpoint,
)
from kinesis_training.inference import LoadedPolicy, load_policy
from kinesis_training.networks import MLP, Critic
from kinesis_training.normalizer import RunningNorm
from kinesis_training.policies import Actor, GaussianActor, LatticeActor, MoEActor
from kinesis_training.ppo import PPO, PPOConfig, RolloutBatch, compute_gae
from kinesis_training.presets import PRESETS, NetworkPreset, build_actor, build_critic, get_preset

__all__ = [
    "Actor",
    "Checkpoint",
    "Critic",
    "GaussianActor",
    "LatticeActor",
    "LoadedPolicy",
    "MLP",
    "MoEActor",
    "NetworkPreset",
    "PPO",
    "PPOConfig",
    "PRESETS",
    "PolicySpec",
    "RolloutBatch",
    "RunningNorm",
    "build_actor",
    "build_critic",
    "compute_gae",
    "describe",
    "get_preset",
    "load_checkpoint",
    "load_moe_from_experts",
    "load_policy",
    "save_checkpoint",
]

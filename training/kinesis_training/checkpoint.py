"""Training checkpoints (``model.pth``) in the exact layout of the original KINESIS release.

Implements conformance README section 7.3: a torch zip archive (default serializer, internal folder
``model/``, loads with ``weights_only=True``) holding ``{policy, value, epoch, optimizer_policy,
optimizer_value, frame}``. The policy kind (Gaussian, Lattice, MoE) and all sizes are inferred from the
state-dict keys and shapes. README section 8: building a MoE from expert checkpoints.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kinesis_tasks.assets import resolve_checkpoint

from kinesis_training.networks import Critic
from kinesis_training.policies import Actor, GaussianActor, LatticeActor, MoEActor
from kinesis_training.ppo import PPOConfig

CHECKPOINT_KEYS = ("policy", "value", "epoch", "optimizer_policy", "optimizer_value", "frame")
_ARCHIVE_NAME = "model.pth"  # torch names the archive's internal folder after the file stem: "model/"
_EXPERT_PREFIXES = {"norm.": "0.", "net.": "1.", "action_mean.": "2."}


@dataclass(frozen=True)
class PolicySpec:
    """Kind and sizes of a checkpoint's networks, read from its tensor shapes."""

    kind: str
    """'gaussian', 'lattice' or 'moe'."""
    obs_dim: int
    action_dim: int
    mlp_units: tuple[int, ...]
    """Policy MLP (Gaussian, Lattice) or expert MLP (MoE) widths."""
    critic_units: tuple[int, ...]
    latent_dim: int | None = None
    """Lattice only: per-latent log-std count (= last hidden width)."""
    num_experts: int | None = None
    gate_units: tuple[int, ...] | None = None


@dataclass
class Checkpoint:
    """A loaded ``model.pth``: modules (evaluation mode) plus the raw optimizer state dicts."""

    policy: Actor
    critic: Critic
    spec: PolicySpec
    epoch: int
    frame: int
    optimizer_policy: dict[str, Any]
    optimizer_value: dict[str, Any]


def _mlp_units(state: Mapping[str, torch.Tensor], prefix: str) -> tuple[int, ...]:
    pattern = re.compile(re.escape(prefix) + r"affine_layers\.(\d+)\.weight$")
    layers = sorted((int(m.group(1)), t.shape[0]) for k, t in state.items() if (m := pattern.match(k)))
    if not layers or [i for i, _ in layers] != list(range(len(layers))):
        raise ValueError(f"no consecutive '{prefix}affine_layers.*' weights in the state dict")
    return tuple(width for _, width in layers)


def infer_spec(policy_state: Mapping[str, torch.Tensor], value_state: Mapping[str, torch.Tensor]) -> PolicySpec:
    """Detects the policy kind from the keys and reads every size from the shapes."""
    critic_units = _mlp_units(value_state, "net.")
    if "gate.1.weight" in policy_state:
        num_experts = policy_state["gate.1.weight"].shape[0]
        found = {int(k.split(".")[2]) for k in policy_state if k.startswith("experts.experts.")}
        if found != set(range(num_experts)):
            raise ValueError(f"MoE gate has {num_experts} outputs but the state dict holds experts {sorted(found)}")
        return PolicySpec(
            kind="moe",
            obs_dim=policy_state["norm.mean"].shape[0],
            action_dim=policy_state["experts.experts.0.2.weight"].shape[0],
            mlp_units=_mlp_units(policy_state, "experts.experts.0.1."),
            critic_units=critic_units,
            num_experts=num_experts,
            gate_units=_mlp_units(policy_state, "gate.0."),
        )
    if "log_std" not in policy_state or "action_mean.weight" not in policy_state:
        raise ValueError("policy state dict is neither Gaussian/Lattice (log_std, action_mean) nor MoE (gate)")
    action_dim, last_hidden = policy_state["action_mean.weight"].shape
    width = policy_state["log_std"].shape[-1]
    common = dict(
        obs_dim=policy_state["norm.mean"].shape[0],
        action_dim=action_dim,
        mlp_units=_mlp_units(policy_state, "net."),
        critic_units=critic_units,
    )
    if width == action_dim:
        return PolicySpec(kind="gaussian", **common)
    if width == action_dim + last_hidden:
        return PolicySpec(kind="lattice", latent_dim=last_hidden, **common)
    raise ValueError(
        f"log_std width {width} fits neither Gaussian ({action_dim}) nor Lattice ({action_dim} + {last_hidden})"
    )


def build_modules(spec: PolicySpec) -> tuple[Actor, Critic]:
    """Freshly initialised actor and critic with the sizes of `spec`."""
    if spec.kind == "gaussian":
        policy: Actor = GaussianActor(spec.obs_dim, spec.action_dim, spec.mlp_units)
    elif spec.kind == "lattice":
        policy = LatticeActor(spec.obs_dim, spec.action_dim, spec.mlp_units)
    else:
        policy = MoEActor(spec.obs_dim, spec.action_dim, spec.mlp_units, spec.gate_units, spec.num_experts)
    return policy, Critic(spec.obs_dim, spec.critic_units)


def _read(path: str | os.PathLike) -> dict[str, Any]:
    path = resolve_checkpoint(path)  # kinesis:NAME -> the file of `kinesis assets fetch`; other paths unchanged
    if not path.is_file():
        raise ValueError(f"checkpoint file {path} does not exist")
    data = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in ("policy", "value") if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"checkpoint file {path} lacks the entries {missing}")
    return data


def check_sizes(spec: PolicySpec, path: str | os.PathLike, obs_dim: int | None, action_dim: int | None) -> None:
    """Raises ValueError when the checkpoint's sizes differ from the embodiment's."""
    for name, theirs, ours in (("observation", spec.obs_dim, obs_dim), ("action", spec.action_dim, action_dim)):
        if ours is not None and ours != theirs:
            raise ValueError(
                f"checkpoint {path} has {name} size {theirs}, but the embodiment/task gives {name} size {ours}"
            )


def load_checkpoint(
    path: str | os.PathLike, *, obs_dim: int | None = None, action_dim: int | None = None
) -> Checkpoint:
    """Loads a ``model.pth`` (strict key match); optional obs_dim/action_dim are checked against it."""
    data = _read(path)
    spec = infer_spec(data["policy"], data["value"])
    check_sizes(spec, path, obs_dim, action_dim)
    policy, critic = build_modules(spec)
    policy.load_state_dict(data["policy"], strict=True)
    critic.load_state_dict(data["value"], strict=True)
    return Checkpoint(
        policy=policy.eval(),
        critic=critic.eval(),
        spec=spec,
        epoch=int(data.get("epoch", 0)),
        frame=int(data.get("frame", 0)),
        optimizer_policy=data.get("optimizer_policy", {}),
        optimizer_value=data.get("optimizer_value", {}),
    )


def _cpu_state(module: torch.nn.Module) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((k, v.detach().cpu()) for k, v in module.state_dict().items())


def _optimizer_state(
    optimizer: torch.optim.Optimizer | Mapping[str, Any] | None, module: torch.nn.Module, lr: float
) -> Mapping[str, Any]:
    if optimizer is None:
        return torch.optim.Adam(module.parameters(), lr=lr).state_dict()
    if isinstance(optimizer, torch.optim.Optimizer):
        return optimizer.state_dict()
    return optimizer


def save_checkpoint(
    path: str | os.PathLike,
    policy: Actor,
    critic: Critic,
    *,
    epoch: int,
    frame: int,
    optimizer_policy: torch.optim.Optimizer | Mapping[str, Any] | None = None,
    optimizer_value: torch.optim.Optimizer | Mapping[str, Any] | None = None,
) -> None:
    """Writes the original layout atomically. Missing optimizers are stored as fresh Adam state dicts."""
    config = PPOConfig()
    data = {
        "policy": _cpu_state(policy),
        "value": _cpu_state(critic),
        "epoch": int(epoch),
        "optimizer_policy": _optimizer_state(optimizer_policy, policy, config.policy_lr),
        "optimizer_value": _optimizer_state(optimizer_value, critic, config.value_lr),
        "frame": int(frame),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        staged = Path(tmp) / _ARCHIVE_NAME
        torch.save(data, staged)
        os.replace(staged, path)


def load_moe_from_experts(
    expert_paths: Sequence[str | os.PathLike], gate_units: Sequence[int], *, freeze_expert_norms: bool = False
) -> MoEActor:
    """A MoE actor at epoch 0 (README 8): expert K from ``expert_paths[K]`` (its ``norm.*``, ``net.*``,
    ``action_mean.*``; ``log_std`` dropped), the gate normalizer copied from expert 0, a fresh gate MLP."""
    if not expert_paths:
        raise ValueError("expert_paths is empty")
    states = [_read(p) for p in expert_paths]
    specs = [infer_spec(s["policy"], s["value"]) for s in states]
    first = specs[0]
    for path, spec in zip(expert_paths, specs):
        if spec.kind == "moe":
            raise ValueError(f"expert checkpoint {path} is itself a MoE policy")
        if (spec.obs_dim, spec.action_dim, spec.mlp_units) != (first.obs_dim, first.action_dim, first.mlp_units):
            raise ValueError(
                f"expert checkpoint {path} has sizes obs {spec.obs_dim}, action {spec.action_dim}, MLP "
                f"{spec.mlp_units}; {expert_paths[0]} has {first.obs_dim}, {first.action_dim}, {first.mlp_units}"
            )
    moe = MoEActor(
        first.obs_dim, first.action_dim, first.mlp_units, gate_units, len(states), freeze_expert_norms
    )
    for expert, state in zip(moe.experts.experts, states):
        mapped = {
            new + key[len(old) :]: value
            for key, value in state["policy"].items()
            for old, new in _EXPERT_PREFIXES.items()
            if key.startswith(old)
        }
        expert.load_state_dict(mapped, strict=True)
    moe.norm.load_state_dict(moe.experts.experts[0][0].state_dict())
    return moe.eval()


def _units(units: Sequence[int] | None) -> str:
    return "-".join(str(u) for u in units) if units else "-"


def describe(path: str | os.PathLike) -> str:
    """Human-readable summary for ``kinesis checkpoint info PATH``."""
    ckpt = load_checkpoint(path)
    spec, policy = ckpt.spec, ckpt.policy
    lines = [
        f"checkpoint:  {path}",
        f"kind:        {spec.kind}",
        f"epoch:       {ckpt.epoch}",
        f"frame:       {ckpt.frame}",
        f"obs size:    {spec.obs_dim}",
        f"action size: {spec.action_dim}",
        f"{'expert' if spec.kind == 'moe' else 'policy'} MLP:  {_units(spec.mlp_units)}",
    ]
    if spec.kind == "lattice":
        lines.append(f"latent size: {spec.latent_dim}")
    if isinstance(policy, MoEActor):
        expert_counts = ", ".join(str(int(e[0].n)) for e in policy.experts.experts)
        lines += [
            f"experts:     {spec.num_experts}",
            f"gate MLP:    {_units(spec.gate_units)}",
            f"normalizer:  gate n = {int(policy.norm.n)}, experts n = {expert_counts}",
        ]
    else:
        lines.append(f"normalizer:  n = {int(policy.norm.n)}")
    trainable = sum(p.numel() for p in policy.parameters() if p.requires_grad)
    total = sum(p.numel() for p in policy.parameters())
    critic = sum(p.numel() for p in ckpt.critic.parameters())
    lines += [
        f"critic MLP:  {_units(spec.critic_units)}",
        f"parameters:  policy {total} ({trainable} trainable), critic {critic}",
    ]
    return "\n".join(lines)

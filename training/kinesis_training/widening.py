"""Function-preserving widening of a Gaussian or Lattice checkpoint (Net2Net's wider step, zero fan-out).

``widen_checkpoint(src, dst, units)`` writes a checkpoint whose policy and critic MLPs have the hidden widths
``units`` (each at least the source's) and that computes exactly what the source computes: the old units keep
their weights, every new unit gets fresh incoming weights (PyTorch's default initialisation) and zero outgoing
weights, so the mean action, the value and the Lattice covariance (``W`` gains zero columns) are unchanged. The
new units are live from the first update (their activations are not zero, so their outgoing weights get
gradients). A new Lattice latent unit's ``log_std`` entry is the mean of the old latent entries. The
observation normalizer, epoch and frame are kept; the optimizer state is not (fine-tune with ``--init-from``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from kinesis_training.checkpoint import build_modules, load_checkpoint, save_checkpoint
from kinesis_training.networks import MLP
from kinesis_training.policies import LatticeActor


def _widen_linear(old: nn.Linear, new: nn.Linear) -> None:
    """``new`` (freshly initialised, at least as wide both ways) takes ``old``'s weights in its top-left block;
    the old outputs ignore the new inputs (zero weights); the new outputs keep their fresh weights."""
    out_dim, in_dim = old.weight.shape
    with torch.no_grad():
        new.weight[:out_dim].zero_()
        new.weight[:out_dim, :in_dim] = old.weight
        new.bias[:out_dim] = old.bias


def _widen_mlp(old: MLP, new: MLP) -> None:
    for old_layer, new_layer in zip(old.affine_layers, new.affine_layers, strict=True):
        _widen_linear(old_layer, new_layer)


def widen_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, units: Sequence[int], *,
                     seed: int = 0) -> None:
    """Writes ``src`` widened to hidden widths ``units`` (policy and critic) to ``dst`` (see the module docstring).

    ValueError for a mixture-of-experts checkpoint, another number of layers or a narrower width.
    """
    old = load_checkpoint(src)
    if old.spec.kind == "moe":
        raise ValueError(f"{src}: widening a mixture of experts is not supported (widen its experts)")
    units = tuple(int(u) for u in units)
    for name, have in (("policy", old.spec.mlp_units), ("critic", old.spec.critic_units)):
        if len(units) != len(have) or any(u < h for u, h in zip(units, have)):
            raise ValueError(f"{src}: the {name} has hidden widths {list(have)}; widths {list(units)} must have "
                             f"as many layers, each at least as wide")
    with torch.random.fork_rng():  # ``seed`` draws the new units' weights, then the global generator is restored
        torch.manual_seed(seed)
        policy, critic = build_modules(replace(old.spec, mlp_units=units, critic_units=units,
                                               latent_dim=units[-1] if old.spec.latent_dim else None))
    _widen_mlp(old.policy.net, policy.net)
    _widen_linear(old.policy.action_mean, policy.action_mean)
    _widen_mlp(old.critic.net, critic.net)
    _widen_linear(old.critic.value_head, critic.value_head)
    policy.norm.load_state_dict(old.policy.norm.state_dict())
    with torch.no_grad():
        width = old.policy.log_std.shape[1]
        policy.log_std[:, :width] = old.policy.log_std
        if isinstance(policy, LatticeActor):
            policy.log_std[:, width:] = old.policy.log_std[:, old.spec.action_dim:].mean()
    save_checkpoint(dst, policy, critic, epoch=old.epoch, frame=old.frame)

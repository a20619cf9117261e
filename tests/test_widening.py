"""Function-preserving widening of checkpoints (kinesis_training.widening)."""

from pathlib import Path

import pytest
import torch

import kinesis_training as kt
from kinesis_training.widening import widen_checkpoint

DATA = Path(__file__).parent / "data" / "conformance"


def test_widened_lattice_computes_the_same_policy_and_value(tmp_path):
    src = DATA / "policy_lattice.pt"  # 309 observations, 80 actions, (64, 48)
    widen_checkpoint(src, tmp_path / "wide.pth", (96, 80))
    old, new = kt.load_checkpoint(src), kt.load_checkpoint(tmp_path / "wide.pth")
    assert new.spec == kt.PolicySpec(kind="lattice", obs_dim=309, action_dim=80, mlp_units=(96, 80),
                                     critic_units=(96, 80), latent_dim=80)
    assert (new.epoch, new.frame) == (old.epoch, old.frame)
    obs = 3.0 * torch.randn(32, 309, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(new.policy.mean(obs), old.policy.mean(obs), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(new.critic(obs), old.critic(obs), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(new.policy.covariance(), old.policy.covariance(), rtol=1e-6, atol=1e-7)
        # the new units are live: fresh incoming weights, zero outgoing ones, log std of the old latent mean
        assert new.policy.net.affine_layers[0].weight[64:].abs().sum() > 0
        assert new.policy.action_mean.weight[:, 48:].abs().sum() == 0
        latent = old.policy.log_std[0, 80:]
        torch.testing.assert_close(new.policy.log_std[0, 80 + 48:], latent.mean().expand(32))


def test_widening_refuses_narrower_or_other_depth_and_moe(tmp_path):
    with pytest.raises(ValueError, match=r"hidden widths \[64, 48\]"):
        widen_checkpoint(DATA / "policy_lattice.pt", tmp_path / "w.pth", (32, 48))
    with pytest.raises(ValueError, match="as many layers"):
        widen_checkpoint(DATA / "policy_lattice.pt", tmp_path / "w.pth", (64, 48, 48))
    with pytest.raises(ValueError, match="mixture of experts"):
        widen_checkpoint(DATA / "policy_moe.pt", tmp_path / "w.pth", (64, 48))

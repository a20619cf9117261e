"""Actors against the reference outputs (conformance README sections 7-9) and independent computations."""

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import kinesis_training as kt
from kinesis_training.policies import GaussianActor, LatticeActor, MoEActor

DATA = Path(__file__).parent / "data" / "conformance"


@pytest.fixture(scope="module")
def lattice_ref():
    return np.load(DATA / "policy_lattice.npz")


@pytest.fixture(scope="module")
def moe_ref():
    return np.load(DATA / "policy_moe.npz")


@pytest.fixture(scope="module")
def lattice():
    return kt.load_policy(DATA / "policy_lattice.pt")


@pytest.fixture(scope="module")
def moe():
    return kt.load_policy(DATA / "policy_moe.pt")


def test_lattice_reference_outputs(lattice, lattice_ref):
    obs = lattice_ref["probe_obs"]
    np.testing.assert_allclose(lattice.mean_action(obs), lattice_ref["mean_action"], atol=1e-5)
    np.testing.assert_allclose(lattice.value(obs), lattice_ref["value"][:, 0], atol=1e-5)
    np.testing.assert_allclose(lattice.normalized_obs(obs), lattice_ref["normalized_obs"], atol=1e-5)
    cov = lattice.policy.covariance().detach().numpy()
    np.testing.assert_allclose(cov, lattice_ref["covariance"], atol=1e-5)
    for j in range(3):
        log_p = lattice.log_prob(obs, lattice_ref["logprob_actions"][:, j])
        np.testing.assert_allclose(log_p, lattice_ref["log_prob"][:, j], rtol=1e-5)


def test_lattice_covariance_and_log_prob_explicit_float64(lattice, lattice_ref):
    """Sigma = W diag(exp(2 ls[A:])) W^T + diag(exp(2 ls[:A])) and the MVN density, via scipy in float64."""
    state = lattice.policy.state_dict()
    w = state["action_mean.weight"].double().numpy()
    log_std = state["log_std"].double().numpy()[0]
    cov = w @ np.diag(np.exp(2 * log_std[80:])) @ w.T + np.diag(np.exp(2 * log_std[:80]))
    np.testing.assert_allclose(cov, lattice_ref["covariance_f64"], atol=1e-12)
    np.testing.assert_allclose(lattice.policy.covariance().detach().double().numpy(), cov, atol=1e-6)
    obs = lattice_ref["probe_obs"]
    mean = lattice_ref["mean_action_f64"]
    for j in range(3):
        actions = lattice_ref["logprob_actions"][:, j].astype(np.float64)
        expected = [multivariate_normal(mean[i], cov).logpdf(actions[i]) for i in range(len(obs))]
        np.testing.assert_allclose(expected, lattice_ref["log_prob_f64"][:, j], rtol=1e-9)
        np.testing.assert_allclose(lattice.log_prob(obs, actions), expected, rtol=1e-5)


def test_lattice_sampling_matches_its_distribution():
    torch.manual_seed(1)
    actor = LatticeActor(5, 3, [8, 4]).eval()
    with torch.no_grad():
        actor.log_std.uniform_(-1.0, 0.5)
        actor.action_mean.weight.normal_()
    obs = torch.randn(1, 5).expand(40000, 5)
    actions, log_p = actor.get_action_and_log_prob(obs, generator=torch.Generator().manual_seed(0))
    cov = actor.covariance().detach().numpy()
    np.testing.assert_allclose(np.cov(actions.numpy().T), cov, atol=0.05 * np.abs(cov).max())
    np.testing.assert_allclose(actions.numpy().mean(0), actor.mean_action(obs[:1])[0].numpy(), atol=0.03)
    exact = torch.distributions.MultivariateNormal(actor.mean_action(obs[:1])[0], torch.as_tensor(cov))
    np.testing.assert_allclose(log_p[:50].numpy(), exact.log_prob(actions[:50]).numpy(), rtol=1e-4)
    mean, log_p_mean = actor.get_action_and_log_prob(obs[:2], deterministic=True)
    assert torch.equal(mean, actor.mean_action(obs[:2]))
    np.testing.assert_allclose(log_p_mean.numpy(), exact.log_prob(mean).numpy(), rtol=1e-5)
    np.testing.assert_allclose(actor.entropy(obs[:1]).item(), exact.entropy().item(), rtol=1e-5)


def test_lattice_cholesky_cache_follows_parameter_updates():
    actor = LatticeActor(4, 2, [6, 3]).eval()
    obs, actions = torch.randn(3, 4), torch.randn(3, 2)
    with torch.no_grad():
        before = actor.log_prob(obs, actions)
        actor.log_std.add_(0.3)
        after = actor.log_prob(obs, actions)
    np.testing.assert_allclose(after.numpy(), actor.log_prob(obs, actions).detach().numpy(), rtol=1e-6)
    assert not torch.allclose(before, after)


def test_gaussian_matches_torch_normal():
    torch.manual_seed(2)
    actor = GaussianActor(5, 3, [8, 8], log_std_init=-0.7).eval()
    obs, actions = torch.randn(6, 5), torch.randn(6, 3)
    dist = torch.distributions.Normal(actor.mean_action(obs), torch.exp(actor.log_std.detach()))
    np.testing.assert_allclose(
        actor.log_prob(obs, actions).detach().numpy(), dist.log_prob(actions).sum(-1).numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(actor.entropy(obs).detach().numpy(), dist.entropy().sum(-1).numpy(), rtol=1e-5)
    sampled, log_p = actor.get_action_and_log_prob(obs, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(log_p.numpy(), dist.log_prob(sampled).sum(-1).numpy(), rtol=1e-5)


def test_moe_reference_outputs(moe, moe_ref):
    obs = moe_ref["probe_obs"]
    np.testing.assert_allclose(moe.gate_probs(obs), moe_ref["gate_probs"], atol=1e-5)
    np.testing.assert_allclose(moe.expert_actions(obs), moe_ref["expert_actions"], atol=1e-5)
    np.testing.assert_allclose(moe.value(obs), moe_ref["value"][:, 0], atol=1e-5)
    for j in range(4):
        log_p = moe.log_prob(obs, moe_ref["logprob_actions"][:, j])
        np.testing.assert_allclose(log_p, moe_ref["log_prob"][:, j], rtol=1e-5)


def test_moe_acting_returns_a_sampled_expert_action(moe, moe_ref):
    obs = np.repeat(moe_ref["probe_obs"][:1], 3000, axis=0)
    actions, log_p = moe.act(obs)
    experts = moe_ref["expert_actions"][0]
    chosen = np.abs(actions[:, None, :] - experts[None]).sum(-1).argmin(-1)
    np.testing.assert_allclose(actions, experts[chosen], atol=1e-5)
    np.testing.assert_allclose(log_p, np.log(moe_ref["gate_probs"][0][chosen]), atol=1e-5)
    frequencies = np.bincount(chosen, minlength=3) / len(chosen)
    np.testing.assert_allclose(frequencies, moe_ref["gate_probs"][0], atol=0.04)
    best = moe_ref["gate_probs"].argmax(-1)
    expected = moe_ref["expert_actions"][np.arange(4), best]
    np.testing.assert_allclose(moe.mean_action(moe_ref["probe_obs"]), expected, atol=1e-5)


def test_moe_log_prob_ties_choose_first_expert():
    moe = MoEActor(4, 2, [5], [3], num_experts=3).eval()
    with torch.no_grad():
        for expert in moe.experts.experts:
            expert[2].weight.zero_()
            expert[2].bias.fill_(0.5)  # all experts give the same action
    obs = torch.randn(2, 4)
    log_p = moe.log_prob(obs, torch.zeros(2, 2))
    np.testing.assert_allclose(log_p.detach().numpy(), torch.log(moe.gate_probs(obs)[:, 0]).numpy(), rtol=1e-6)


@pytest.mark.parametrize("actor", [LatticeActor(6, 2, [8, 4]), MoEActor(6, 2, [8, 4], [5], 2)])
def test_acting_never_updates_normalizers_but_training_log_prob_does(actor):
    obs = torch.randn(7, 6)
    actor.train()
    actor.get_action_and_log_prob(obs)
    actor.mean_action(obs)
    assert int(actor.norm.n) == 0
    actions, _ = actor.get_action_and_log_prob(obs)
    actor.log_prob(obs, actions)
    assert int(actor.norm.n) == 7
    actor.eval()
    actor.log_prob(obs, actions)
    assert int(actor.norm.n) == 7


def test_moe_frozen_experts_and_optional_frozen_expert_norms():
    moe = MoEActor(6, 2, [8], [5], 2, freeze_expert_norms=True).train()
    assert all(not p.requires_grad for p in moe.experts.parameters())
    assert [n for n, p in moe.named_parameters() if p.requires_grad] == [
        "gate.0.affine_layers.0.weight", "gate.0.affine_layers.0.bias", "gate.1.weight", "gate.1.bias"
    ]
    obs = torch.randn(3, 6)
    moe.log_prob(obs, torch.zeros(3, 2))
    assert int(moe.norm.n) == 3 and int(moe.experts.experts[0][0].n) == 0


def test_load_policy_numpy_interface(lattice, lattice_ref):
    obs = lattice_ref["probe_obs"]
    single = lattice.mean_action(obs[0])
    assert single.shape == (80,) and single.dtype == np.float32
    np.testing.assert_allclose(single, lattice_ref["mean_action"][0], atol=1e-5)
    actions, log_p = lattice.act(obs, deterministic=True)
    np.testing.assert_allclose(actions, lattice_ref["mean_action"], atol=1e-5)
    np.testing.assert_allclose(log_p, lattice_ref["log_prob"][:, 2], rtol=1e-5)
    with pytest.raises(ValueError, match="mixture-of-experts"):
        lattice.gate_probs(obs)
    with pytest.raises(ValueError, match=r"obs must have shape \[B, 309\]"):
        lattice.mean_action(obs[:, :100])
    assert int(lattice.policy.norm.n) == 2560

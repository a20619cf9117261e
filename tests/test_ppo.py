"""PPO update (conformance README sections 6 and 9): GAE, normalizer schedule, optimizer layout, learning."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import kinesis_training as kt

DATA = Path(__file__).parent / "data" / "conformance"


@pytest.fixture
def one_thread():
    """Tiny networks run faster (and steadier on a shared 2-core machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(obs, actions, rewards, masks, log_probs=None) -> kt.RolloutBatch:
    return kt.RolloutBatch(*(torch.as_tensor(np.asarray(x)) for x in (obs, actions, rewards, masks)),
                           log_probs=log_probs)


def test_gae_matches_explicit_sums_per_trajectory():
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=12), rng.normal(size=12)
    masks = np.ones(12)
    masks[[3, 8, 11]] = 0
    gamma, tau = 0.99, 0.95
    advantages, returns = kt.compute_gae(rewards, masks, values, gamma, tau)
    expected = []
    for start, end in ((0, 4), (4, 9), (9, 12)):
        r, v = rewards[start:end], values[start:end]
        deltas = r + gamma * np.append(v[1:], 0.0) - v
        expected += [sum((gamma * tau) ** k * d for k, d in enumerate(deltas[t:])) for t in range(len(r))]
    np.testing.assert_allclose(advantages, expected, rtol=1e-12)
    np.testing.assert_allclose(returns, values + advantages, rtol=1e-12)


def test_lattice_update_reproduces_normalizer_history(one_thread):
    ref = np.load(DATA / "policy_lattice.npz")
    torch.manual_seed(0)
    policy, critic = kt.LatticeActor(309, 80, [64, 48]), kt.Critic(309, [64, 48])
    ppo = kt.PPO(policy, critic)
    for it in range(2):
        rows = slice(128 * it, 128 * (it + 1))
        stats = ppo.update(_batch(ref["train_obs"][rows], ref["train_actions"][it], ref["train_rewards"][it],
                                  ref["train_masks"][it]))
        assert int(policy.norm.n) == ref["norm_n_hist"][it + 1]
        np.testing.assert_allclose(policy.norm.mean.numpy(), ref["norm_mean_hist"][it + 1], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(policy.norm.var.numpy(), ref["norm_var_hist"][it + 1], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(policy.norm.std.numpy(), ref["norm_std_hist"][it + 1], rtol=1e-5, atol=1e-7)
    assert set(stats) >= {"pg_loss", "v_loss", "approx_kl", "entropy", "clip_fraction"}
    assert all(np.isfinite(v) for v in stats.values())
    assert not policy.training and not critic.training
    state = ppo.optimizer_policy.state_dict()
    assert state["param_groups"][0]["params"] == list(range(7))
    assert all(float(s["step"]) == 20 for s in state["state"].values())


def test_moe_update_from_experts_reproduces_policy_moe(tmp_path, one_thread):
    """Frozen expert weights + normalizers updated 10 times with train_obs give the stored MoE experts."""
    ref = np.load(DATA / "policy_moe.npz")
    torch.manual_seed(0)
    moe = kt.load_moe_from_experts([DATA / f"moe_experts/expert_{k}/model.pth" for k in range(3)], [32, 16])
    critic = kt.Critic(309, [64, 48])
    ppo = kt.PPO(moe, critic)
    ppo.update(_batch(ref["train_obs"], ref["train_actions"], ref["train_rewards"], ref["train_masks"]))
    obs = torch.from_numpy(ref["probe_obs"])
    np.testing.assert_allclose(moe.expert_actions(obs).numpy(), ref["expert_actions"], atol=1e-5)
    assert int(moe.norm.n) == ref["gate_norm_n"]
    assert [int(e[0].n) for e in moe.experts.experts] == list(ref["expert_norm_n"])
    stored = torch.load(DATA / "policy_moe.pt", weights_only=True)
    np.testing.assert_allclose(moe.norm.mean.numpy(), stored["policy"]["norm.mean"].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(moe.norm.var.numpy(), stored["policy"]["norm.var"].numpy(), rtol=1e-5, atol=1e-7)

    kt.save_checkpoint(tmp_path / "model.pth", moe, critic, epoch=1, frame=128,
                       optimizer_policy=ppo.optimizer_policy, optimizer_value=ppo.optimizer_value)
    saved = torch.load(tmp_path / "model.pth", weights_only=True)
    for name in ("optimizer_policy", "optimizer_value"):
        ours, theirs = saved[name], stored[name]
        assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]
        assert sorted(ours["state"]) == sorted(theirs["state"])
        for i, entry in theirs["state"].items():
            assert float(ours["state"][i]["step"]) == float(entry["step"])
            assert ours["state"][i]["exp_avg"].shape == entry["exp_avg"].shape
    assert [(k, v.shape) for k, v in saved["policy"].items()] == [(k, v.shape) for k, v in stored["policy"].items()]


def test_update_is_deterministic():
    ref = np.load(DATA / "policy_lattice.npz")
    results = []
    for _ in range(2):
        torch.manual_seed(3)
        policy, critic = kt.LatticeActor(309, 80, [16]), kt.Critic(309, [16])
        kt.PPO(policy, critic, kt.PPOConfig(opt_epochs=3)).update(
            _batch(ref["train_obs"][:128], ref["train_actions"][0], ref["train_rewards"][0], ref["train_masks"][0]))
        results.append([t.clone() for t in (*policy.state_dict().values(), *critic.state_dict().values())])
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("policy_lr", [0.0, 1e-4])
def test_approx_kl_is_the_whole_batch_kl_of_the_update(policy_lr, one_thread):
    """approx_kl and clip_fraction compare the policy before and after the update on every sample."""
    ref = np.load(DATA / "policy_lattice.npz")
    obs, actions = ref["train_obs"][:128], ref["train_actions"][0]
    torch.manual_seed(3)
    policy, critic = kt.LatticeActor(309, 80, [16]), kt.Critic(309, [16])
    config = kt.PPOConfig(opt_epochs=3, policy_lr=policy_lr, normalizer_update="per_batch")
    before = copy.deepcopy(policy)
    stats = kt.PPO(policy, critic, config).update(_batch(obs, actions, ref["train_rewards"][0], ref["train_masks"][0]))
    before.norm.load_state_dict(policy.norm.state_dict())  # per batch: the update starts by moving the normalizer
    with torch.no_grad():
        obs_t, actions_t = torch.as_tensor(obs), torch.as_tensor(actions)
        log_ratio = (policy.log_prob(obs_t, actions_t) - before.log_prob(obs_t, actions_t)).double()
    expected_kl = float((log_ratio.exp() - 1.0 - log_ratio).mean())
    expected_clipped = float(((log_ratio.exp() - 1.0).abs() > config.clip_epsilon).double().mean())
    assert stats["approx_kl"] == pytest.approx(expected_kl, rel=1e-3, abs=1e-6)
    assert stats["clip_fraction"] == pytest.approx(expected_clipped, abs=1.5 / len(obs))
    assert (stats["approx_kl"] == 0.0) == (policy_lr == 0.0)


def _point_mass_batch(policy, rng, generator, deterministic=False, envs=64, steps=20):
    """1-D point mass x <- x + 0.2 clip(a, -1, 1), reward -x^2; optimum: drive x to 0 quickly."""
    x = rng.uniform(-1.0, 1.0, size=envs)
    obs, actions, rewards, log_probs = [], [], [], []
    for _ in range(steps):
        o = torch.from_numpy(x[:, None].astype(np.float32))
        a, log_p = policy.get_action_and_log_prob(o, deterministic, generator)
        x = x + 0.2 * np.clip(a.numpy()[:, 0], -1.0, 1.0)
        obs.append(o), actions.append(a), rewards.append(torch.from_numpy(-x**2)), log_probs.append(log_p)
    masks = torch.ones(envs, steps)
    masks[:, -1] = 0.0
    by_trajectory = lambda seq: torch.stack(seq, 1).flatten(0, 1)  # noqa: E731  [envs*steps, ...]
    return kt.RolloutBatch(by_trajectory(obs), by_trajectory(actions), by_trajectory(rewards), masks.flatten(),
                           by_trajectory(log_probs))


@pytest.mark.parametrize("actor_cls", [kt.GaussianActor, kt.LatticeActor])
def test_ppo_learns_point_mass(actor_cls, one_thread):
    torch.manual_seed(0)
    rng, generator = np.random.default_rng(0), torch.Generator().manual_seed(0)
    policy = actor_cls(1, 1, [32, 32], log_std_init=-0.5)
    ppo = kt.PPO(policy, kt.Critic(1, [32, 32]), kt.PPOConfig(policy_lr=3e-3, value_lr=3e-3))
    episode_return = lambda batch: float(batch.rewards.sum()) / 64  # noqa: E731
    random_return = episode_return(_point_mass_batch(policy, rng, generator))
    for _ in range(30):
        ppo.update(_point_mass_batch(policy, rng, generator))
    learned_return = episode_return(_point_mass_batch(policy, rng, generator, deterministic=True))
    # Standing still from x ~ U(-1, 1) for 20 steps costs about -6.7; the optimum about -0.3.
    assert random_return < -4.0
    assert learned_return > -0.6


def _random_batch(rng, obs_dim, action_dim, size=64) -> kt.RolloutBatch:
    return _batch(rng.normal(size=(size, obs_dim)).astype(np.float32),
                  rng.normal(size=(size, action_dim)).astype(np.float32), rng.normal(size=size), np.ones(size))


def test_bound_loss_is_the_excess_beyond_the_action_space_and_pulls_it_in(one_thread):
    torch.manual_seed(0)
    policy = kt.GaussianActor(3, 2, [16])
    with torch.no_grad():
        policy.action_mean.bias.copy_(torch.tensor([3.0, -0.5]))
    ppo = kt.PPO(policy, kt.Critic(3, [16]), kt.PPOConfig(bound_weight=10.0, policy_lr=1e-2, opt_epochs=5))
    obs = torch.randn(50, 3)
    mu = policy.mean_action(obs).numpy().astype(np.float64)
    expected = np.mean(np.maximum(np.abs(mu) - 1.0, 0.0) ** 2)
    weight, loss = ppo.auxiliary_losses(obs)["bound_loss"]
    assert weight == 10.0 and loss.item() == pytest.approx(expected, rel=1e-5) and expected > 1.5
    for _ in range(5):
        stats = ppo.update(_random_batch(np.random.default_rng(0), 3, 2))
    assert stats["bound_loss"] < expected / 4
    assert ppo.auxiliary_losses(obs)["bound_loss"][1].item() < expected / 8


def test_mean_clip_keeps_the_sampling_noise_and_freezes_saturated_entries(one_thread):
    """A mean beyond the clip gets no gradient (its entry of the head stays put); the sampled noise is kept."""
    torch.manual_seed(0)
    policy = kt.GaussianActor(3, 2, [16], log_std_init=-1.0)
    with torch.no_grad():
        policy.action_mean.weight[0].zero_()
        policy.action_mean.bias[0] = 5.0  # always saturated: mu_0 = 5
    obs = torch.randn(64, 3)
    actions, log_probs = policy.get_action_and_log_prob(obs, generator=torch.Generator().manual_seed(1))
    batch = kt.RolloutBatch(obs, actions, torch.randn(64), torch.ones(64), log_probs=log_probs)
    head = policy.action_mean.weight.detach().clone(), policy.action_mean.bias.detach().clone()
    ppo = kt.PPO(policy, kt.Critic(3, [16]), kt.PPOConfig(mean_clip=1.5, policy_lr=1e-2, opt_epochs=3))
    shifted = actions.clone()
    shifted[:, 0] += 1.5 - 5.0
    with torch.no_grad():  # the same noise around the clipped mean: the same density
        policy.eval()
        torch.testing.assert_close(policy.log_prob(obs, shifted), log_probs)
    ppo.update(batch)
    assert torch.equal(policy.action_mean.weight[0], head[0][0]) and policy.action_mean.bias[0].item() == 5.0
    assert not torch.equal(policy.action_mean.weight[1], head[0][1])
    assert float(policy.mean_action(obs)[:, 0].max()) == 1.5


def test_mean_clip_and_losses_reject_what_they_cannot_do():
    with pytest.raises(ValueError, match="mean_clip must be >= 1"):
        kt.PPOConfig(mean_clip=0.5)
    with pytest.raises(ValueError, match="sample_clipped_mean needs ppo.mean_clip"):
        kt.PPOConfig(sample_clipped_mean=True)
    with pytest.raises(ValueError, match="bound_weight must be >= 0"):
        kt.PPOConfig(bound_weight=-1.0)
    moe = kt.load_moe_from_experts([DATA / f"moe_experts/expert_{k}/model.pth" for k in range(3)], [32, 16])
    with pytest.raises(ValueError, match="Gaussian or Lattice"):
        kt.PPO(moe, kt.Critic(309, [16]), kt.PPOConfig(mean_clip=1.5))
    with pytest.raises(ValueError, match="mirror map"):
        kt.PPO(kt.LatticeActor(4, 2, [16]), kt.Critic(4, [16]), kt.PPOConfig(symmetry_weight=1.0))

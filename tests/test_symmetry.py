"""Left-right mirror of MyoLegs observations and actions (kinesis_tasks.symmetry) and PPO on mirrored samples."""

import numpy as np
import pytest
import torch

import kinesis_training as kt
from kinesis_tasks.imitation import ImitationEnv, ImitationConfig
from kinesis_tasks.symmetry import MirrorMap, swapped_name


@pytest.fixture(scope="module")
def env():
    return ImitationEnv(ImitationConfig(embodiment="legs"))


@pytest.fixture(scope="module")
def mirror(env):
    return env.mirror_map()


def test_mirror_is_an_involution(mirror):
    assert len(mirror.obs_index) == 504 and len(mirror.action_index) == 80
    np.testing.assert_array_equal(mirror.obs_index[mirror.obs_index], np.arange(504))
    np.testing.assert_array_equal(mirror.obs_sign * mirror.obs_sign[mirror.obs_index], np.ones(504))
    np.testing.assert_array_equal(mirror.action_index[mirror.action_index], np.arange(80))
    obs = np.random.default_rng(0).normal(size=(3, 504))
    np.testing.assert_array_equal(mirror.observation(mirror.observation(obs)), obs)


def test_mirror_swaps_left_and_right_muscles(env, mirror):
    names = [env.model.actuator(i).name for i in range(env.model.nu)]
    assert sum(name.endswith("_r") for name in names) == 40
    assert [names[i] for i in mirror.action_index] == [swapped_name(n) for n in names]


def test_mirror_flips_lateral_and_keeps_vertical_entries(mirror):
    """The first observation block is the root height (kept); a pure permutation has one sign flip or more."""
    moved = mirror.obs_index != np.arange(504)
    assert moved.sum() > 200 and (mirror.obs_sign < 0).sum() > 50


def _toy_mirror() -> MirrorMap:
    """A 4-observation, 2-action mirror: entries 0 <-> 1 swap, 2 <-> 3 swap with a sign flip, actions swap."""
    return MirrorMap(np.array([1, 0, 3, 2]), np.array([1.0, 1.0, -1.0, -1.0], np.float32), np.array([1, 0]))


def test_ppo_trains_on_both_mirror_images():
    """With mirroring the normalizer sees every sample twice (per-batch update) and the step stays finite."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mirror = _toy_mirror()
    policy, critic = kt.LatticeActor(4, 2, [16]), kt.Critic(4, [16])
    config = kt.PPOConfig(normalizer_update="per_batch", minibatch_size=16, mirror=True)
    ppo = kt.PPO(policy, critic, config, mirror=mirror)
    batch = kt.RolloutBatch(*(torch.as_tensor(x) for x in (rng.normal(size=(32, 4)).astype(np.float32),
                                                            rng.normal(size=(32, 2)).astype(np.float32),
                                                            rng.normal(size=32), np.ones(32))))
    stats = ppo.update(batch)
    assert int(policy.norm.n) == 64
    assert all(np.isfinite(v) for v in stats.values())


def test_resumed_optimizer_takes_the_configured_rate():
    policy, critic = kt.LatticeActor(4, 2, [16]), kt.Critic(4, [16])
    saved = kt.PPO(policy, critic, kt.PPOConfig(policy_lr=3e-4))
    resumed = kt.PPO(policy, critic, kt.PPOConfig(policy_lr=1e-4), saved.optimizer_policy.state_dict(),
                     saved.optimizer_value.state_dict())
    assert resumed.optimizer_policy.param_groups[0]["lr"] == 1e-4


def test_symmetry_loss_is_the_mirror_mismatch_and_training_reduces_it():
    """Independent numpy value of mean((clip(mu(M o)) - clip(mu(o))[swap])^2); updates with the loss shrink it."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    mirror = _toy_mirror()
    policy, critic = kt.GaussianActor(4, 2, [16]), kt.Critic(4, [16])
    with torch.no_grad():
        policy.action_mean.weight.mul_(100.0)  # mean actions of order 1 (the head starts scaled down)
    ppo = kt.PPO(policy, critic, kt.PPOConfig(symmetry_weight=10.0, policy_lr=3e-3, minibatch_size=32), mirror=mirror)
    obs = rng.normal(size=(64, 4)).astype(np.float32)
    clip = lambda x: np.clip(x, -1.0, 1.0)  # noqa: E731
    mu = policy.mean_action(torch.as_tensor(obs)).numpy()
    mu_mirrored = policy.mean_action(torch.as_tensor(obs[:, [1, 0, 3, 2]] * np.float32([1, 1, -1, -1]))).numpy()
    expected = np.mean((clip(mu_mirrored) - clip(mu)[:, [1, 0]]) ** 2)
    assert ppo.auxiliary_losses(torch.as_tensor(obs))["symmetry_loss"][1].item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.05
    batch = kt.RolloutBatch(*(torch.as_tensor(x) for x in (obs, rng.normal(size=(64, 2)).astype(np.float32),
                                                           rng.normal(size=64), np.ones(64))))
    for _ in range(10):
        stats = ppo.update(batch)
    assert stats["symmetry_loss"] < expected / 5


def test_trainer_builds_the_mirror_for_the_symmetry_loss_only_on_imitation(mirror):
    from kinesis_training.config import TrainConfig
    from kinesis_training.trainer import run_mirror

    assert run_mirror(TrainConfig(ppo=kt.PPOConfig())) is None
    built = run_mirror(TrainConfig(ppo=kt.PPOConfig(symmetry_weight=0.1)))
    np.testing.assert_array_equal(built.action_index, mirror.action_index)
    with pytest.raises(ValueError, match="imitation runs, not task 'reach'"):
        run_mirror(TrainConfig(task="reach", ppo=kt.PPOConfig(symmetry_weight=0.1)))

"""Samplers: in-process, multiprocessing and Ray give the same batches for the same seed and worker count."""

import copy
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.motions import load_library, save_library
from kinesis_tasks.vector_env import VectorImitationEnv

from kinesis_training.checkpoint import infer_spec
from kinesis_training.presets import build_actor, build_critic, get_preset
from kinesis_training.samplers import WorkerError, make_sampler, steps_per_env
from kinesis_training.trainer import ImitationEnvFactory

ARRAYS = ("obs", "actions", "rewards", "masks", "log_probs")
WORKERS, ENVS = 2, 2


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> ImitationConfig:
    """Three default motions cut to 12 frames (0.37 s), with fatigue on (exercises the 3CC-r path)."""
    motions = list(load_library("default", split="train").values())[:3]
    short = [m.replace(keypoints=m.keypoints[:12], qpos=m.qpos[:12],
                       root_quat=None if m.root_quat is None else m.root_quat[:12]) for m in motions]
    path = save_library(tmp_path_factory.mktemp("motions") / "tiny.npz", short, {"train": [m.name for m in short]})
    return ImitationConfig.default(motions=str(path), split="train", muscle_condition="fatigue")


@pytest.fixture(scope="module")
def actor_and_spec(tiny_config):
    env = VectorImitationEnv(1, tiny_config)
    obs_dim, action_dim = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    torch.manual_seed(0)
    preset = replace(get_preset("small"), mlp_units=(32, 32))
    actor = build_actor("lattice", obs_dim, action_dim, preset)
    return actor, infer_spec(actor.state_dict(), build_critic(obs_dim, preset).state_dict())


def collect_twice(kind, config, actor, spec, seed=7, weights=None, **kwargs):
    sampler = make_sampler(kind, ImitationEnvFactory.of(config), spec, workers=WORKERS, envs_per_worker=ENVS,
                           seed=seed, **kwargs)
    try:
        if weights is not None:
            sampler.call("set_motion_weights", weights)
        return [sampler.collect(actor, 40) for _ in range(2)]
    finally:
        sampler.close()


@pytest.fixture(scope="module")
def inprocess_batches(tiny_config, actor_and_spec):
    return collect_twice("inprocess", tiny_config, *actor_and_spec)


def assert_same(batches_a, batches_b):
    for a, b in zip(batches_a, batches_b):
        for name in ARRAYS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert a.stats.returns == b.stats.returns and a.stats.info_sums == b.stats.info_sums


def test_inprocess_equals_multiprocessing(tiny_config, actor_and_spec, inprocess_batches):
    assert_same(inprocess_batches, collect_twice("mp", tiny_config, *actor_and_spec))


def test_motion_weights_reach_every_worker(tiny_config, actor_and_spec, inprocess_batches):
    """sampler.call('set_motion_weights', ...) reaches each env of each worker: in-process and mp agree, and
    all weight on one motion changes the batches."""
    only_first = {load_library(tiny_config.motions, split="train").popitem()[0]: 1.0}
    weighted = collect_twice("inprocess", tiny_config, *actor_and_spec, weights=only_first)
    assert_same(weighted, collect_twice("mp", tiny_config, *actor_and_spec, weights=only_first))
    assert not np.array_equal(weighted[0].obs, inprocess_batches[0].obs)


def test_ray_equals_multiprocessing(tiny_config, actor_and_spec, inprocess_batches):
    ray = pytest.importorskip("ray", reason="Ray is optional (pip install 'kinesis-ros[ray]'); Ray sampler untested")
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        assert_same(inprocess_batches, collect_twice("ray", tiny_config, *actor_and_spec))
    finally:
        ray.shutdown()


def test_batch_layout_and_seeding(tiny_config, inprocess_batches):
    """Worker w's env i is reset with seed + w*ENVS + i; chunks are env by env; every env stream ends with mask 0."""
    first = inprocess_batches[0]
    steps = steps_per_env(40, WORKERS, ENVS)
    assert len(first) == WORKERS * ENVS * steps == 40
    reference = VectorImitationEnv(WORKERS * ENVS, tiny_config)
    reset_obs, _ = reference.reset(seed=7)  # env j gets 7 + j: the same seeds as worker j // ENVS, env j % ENVS
    np.testing.assert_array_equal(first.obs[::steps], reset_obs.astype(np.float32))
    masks = first.masks.reshape(WORKERS * ENVS, steps)
    assert np.all(masks[:, -1] == 0.0)
    rewards = first.rewards.reshape(WORKERS * ENVS, steps)
    ended = masks[:, :-1] == 0.0
    assert ended.sum() <= len(first.stats.returns) <= ended.sum() + WORKERS * ENVS  # each episode end is recorded
    assert np.isclose(first.stats.info_sums["reward/body_pos"] * 0.6 + first.stats.info_sums["reward/vel"] * 0.2
                      + first.stats.info_sums["reward/upright"] * 0.1 + first.stats.info_sums["reward/energy"] * 0.1,
                      rewards.sum())


def test_other_seed_gives_other_batch(tiny_config, actor_and_spec, inprocess_batches):
    other = collect_twice("inprocess", tiny_config, *actor_and_spec, seed=8)
    assert not np.array_equal(other[0].actions, inprocess_batches[0].actions)


@dataclass(frozen=True)
class BrokenEnvFactory:
    """make_env that fails inside the worker."""

    def __call__(self, num_envs):
        raise ValueError("broken env factory for the test")


def test_worker_error_carries_traceback(actor_and_spec):
    _, spec = actor_and_spec
    with pytest.raises(WorkerError, match=r"(?s)sampler worker 0 failed.*test_samplers.py.*__call__.*ValueError: broken env factory"):
        make_sampler("mp", BrokenEnvFactory(), spec, workers=1)


def test_mean_clip_draws_actions_around_the_clipped_mean(tiny_config, actor_and_spec):
    # ppo.sample_clipped_mean: a saturated mean (here 10 for every muscle) is drawn around +-mean_clip, so the
    # noise can take an action below the environment's clip at 1; the log-probabilities are those of the
    # clipped-mean policy.
    actor, spec = actor_and_spec
    saturated = copy.deepcopy(actor)
    with torch.no_grad():
        saturated.action_mean.weight.zero_()
        saturated.action_mean.bias.fill_(10.0)
    plain, = collect_twice("inprocess", tiny_config, saturated, spec)[:1]
    clipped, = collect_twice("inprocess", tiny_config, saturated, spec, mean_clip=1.2)[:1]
    assert plain.actions.min() > 5.0  # noise std ~0.4 around 10: always saturated
    assert abs(clipped.actions.mean() - 1.2) < 0.05 and (clipped.actions < 1.0).mean() > 0.2
    saturated.mean_clip = 1.2
    with torch.no_grad():
        expected = saturated.eval().log_prob(torch.from_numpy(clipped.obs), torch.from_numpy(clipped.actions))
    np.testing.assert_allclose(clipped.log_probs, expected.numpy(), rtol=1e-4, atol=1e-3)

"""The packed acting path (kinesis_training.fast_policy) against the reference nn.Module mean_action."""

from pathlib import Path

import numpy as np
import pytest
import torch

import kinesis_training as kt
from kinesis_training.fast_policy import MAX_FAST_BATCH, FastMeanAction, PackedMLP
from kinesis_training.networks import MLP
from kinesis_training.normalizer import RunningNorm
from kinesis_training.policies import GaussianActor, LatticeActor, MoEActor

DATA = Path(__file__).parent / "data" / "conformance"
OBS_DIM, ACTION_DIM = 21, 5  # 21 inputs: a 16-row block of the kernel plus a remainder


def randomize(actor: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights of unit-order outputs and random normalizer statistics (some inputs get clipped)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in actor.state_dict().items():
            if name.endswith(".n"):
                tensor.fill_(100)
            elif name.endswith(".mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
            elif name.endswith(".std"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 2 + 0.05)
            elif name.endswith(("weight", "bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / tensor.shape[-1] ** 0.5)
    return actor.eval()


def observations(rows: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((rows, OBS_DIM)) * 6).astype(np.float32)


@pytest.mark.parametrize("actor_class", [GaussianActor, LatticeActor])
@pytest.mark.parametrize("rows", [1, 3, MAX_FAST_BATCH])
def test_mlp_actors_equal_reference(actor_class, rows):
    actor = randomize(actor_class(OBS_DIM, ACTION_DIM, [24, 17, 8]), seed=rows)
    obs = observations(rows, seed=rows)
    expected = actor.mean_action(torch.from_numpy(obs)).numpy()
    assert np.abs(expected).max() > 0.1 and actor.norm.normalize(torch.from_numpy(obs)).abs().max().item() == 5.0
    actions = FastMeanAction(actor)(obs)
    assert actions.shape == (rows, ACTION_DIM) and actions.dtype == np.float32
    np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-6)


def test_moe_picks_the_reference_expert_and_runs_only_it():
    moe = randomize(MoEActor(OBS_DIM, ACTION_DIM, [16, 9], [12], num_experts=3), seed=7)
    obs = observations(MAX_FAST_BATCH, seed=7)
    fast = FastMeanAction(moe)
    best = moe.gate_probs(torch.from_numpy(obs)).argmax(-1).numpy()
    assert len(np.unique(best)) > 1  # rows go to different experts
    np.testing.assert_array_equal(fast.expert_choice(obs), best)
    expected = moe.mean_action(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(fast(obs), expected, rtol=1e-5, atol=1e-6)
    every_expert = moe.expert_actions(torch.from_numpy(obs)).numpy()
    np.testing.assert_allclose(fast(obs), every_expert[np.arange(len(obs)), best], rtol=1e-5, atol=1e-6)
    for row in range(3):  # batch 1: the same expert and action as in the batch
        np.testing.assert_allclose(fast(obs[row : row + 1])[0], expected[row], rtol=1e-5, atol=1e-6)


def test_packed_mlp_reads_each_parameter_once_and_keeps_an_empty_normalizer_the_identity():
    torch.manual_seed(3)
    mlp, head, norm = MLP(OBS_DIM, [10, 6]), torch.nn.Linear(6, 4), RunningNorm(OBS_DIM)
    packed = PackedMLP(norm, [*mlp.affine_layers, head])
    n_params = sum(p.numel() for p in [*mlp.parameters(), *head.parameters()])
    assert packed.nbytes == 4 * n_params
    obs = observations(2, seed=3) * 10  # far beyond the clip range: n == 0 means no normalization at all
    with torch.no_grad():
        expected = head(mlp(torch.from_numpy(obs))).numpy()
    np.testing.assert_allclose(packed(obs), expected, rtol=1e-5, atol=1e-6)


def test_fast_path_rejects_bad_batches_and_actors():
    fast = FastMeanAction(GaussianActor(OBS_DIM, ACTION_DIM, [8]))
    with pytest.raises(ValueError, match=rf"obs must have shape \[B, {OBS_DIM}\]"):
        fast(np.zeros((2, OBS_DIM + 1), np.float32))
    with pytest.raises(ValueError, match=f"B <= {MAX_FAST_BATCH}"):
        fast(np.zeros((MAX_FAST_BATCH + 1, OBS_DIM), np.float32))
    with pytest.raises(ValueError, match="expert_choice needs a mixture-of-experts"):
        fast.expert_choice(np.zeros((1, OBS_DIM), np.float32))
    with pytest.raises(ValueError, match="no fast path for actor type Linear"):
        FastMeanAction(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("checkpoint", ["policy_lattice.pt", "policy_moe.pt"])
def test_load_policy_mean_action_shapes_and_both_paths_agree(checkpoint):
    policy = kt.load_policy(DATA / checkpoint)
    obs = np.random.default_rng(0).standard_normal((MAX_FAST_BATCH + 4, policy.obs_dim)).astype(np.float32)
    reference = policy.policy.mean_action(torch.from_numpy(obs)).numpy()
    large = policy.mean_action(obs)  # above MAX_FAST_BATCH rows: the torch modules
    small = policy.mean_action(obs[:MAX_FAST_BATCH])  # the packed kernels
    single = policy.mean_action(obs[0])
    assert large.shape == reference.shape and small.shape == (MAX_FAST_BATCH, policy.action_dim)
    assert single.shape == (policy.action_dim,) and single.dtype == np.float32
    np.testing.assert_array_equal(large, reference)
    np.testing.assert_allclose(small, reference[:MAX_FAST_BATCH], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(single, reference[0], rtol=1e-5, atol=1e-6)

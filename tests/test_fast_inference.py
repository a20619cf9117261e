"""The packed acting path (kinesis_training.fast_policy) against the reference nn.Module mean_action."""

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import kinesis_training as kt
from kinesis.cli import build_parser
from kinesis_training.inference import CheckpointPolicy
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


FLOAT16_TOLERANCE = 1e-3
"""Documented bound of the float16-weight actions' distance from the float32 ones, relative to the largest |action|
(docs/performance.md, "Policy inference"; measured 1e-4 to 5e-4)."""


def rounded_to_float16(actor: torch.nn.Module) -> torch.nn.Module:
    """A copy of the actor whose Linear weights went through torch.float16 (biases and normalizers untouched)."""
    rounded = copy.deepcopy(actor)
    with torch.no_grad():
        for layer in rounded.modules():
            if isinstance(layer, torch.nn.Linear):
                layer.weight.copy_(layer.weight.to(torch.float16).to(torch.float32))
    return rounded


def relative_distance(actions: np.ndarray, reference: np.ndarray) -> float:
    return float(np.abs(actions - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize("make_actor", [
    lambda: GaussianActor(OBS_DIM, ACTION_DIM, [24, 17, 8]),
    lambda: LatticeActor(OBS_DIM, ACTION_DIM, [24, 17, 8]),
    lambda: MoEActor(OBS_DIM, ACTION_DIM, [16, 9], [12], num_experts=3),
], ids=["gaussian", "lattice", "moe"])
@pytest.mark.parametrize("rows", [1, MAX_FAST_BATCH])
def test_float16_weights_equal_the_modules_with_rounded_weights(make_actor, rows):
    actor = randomize(make_actor(), seed=11 + rows)
    obs = torch.from_numpy(observations(rows, seed=rows))
    actions = FastMeanAction(actor, weights="float16")(obs.numpy())
    assert actions.dtype == np.float32 and actions.shape == (rows, ACTION_DIM)
    np.testing.assert_allclose(actions, rounded_to_float16(actor).mean_action(obs).numpy(), rtol=1e-5, atol=1e-6)
    exact = actor.mean_action(obs).numpy()
    assert 1e-6 < relative_distance(actions, exact) < FLOAT16_TOLERANCE  # rounded, and only by that much


def test_float16_weights_halve_the_bytes_and_refuse_weights_beyond_the_float16_range():
    torch.manual_seed(4)
    mlp, head, norm = MLP(OBS_DIM, [10, 6]), torch.nn.Linear(6, 4), RunningNorm(OBS_DIM)
    n_weights = sum(layer.weight.numel() for layer in [*mlp.affine_layers, head])
    n_biases = sum(layer.bias.numel() for layer in [*mlp.affine_layers, head])
    assert PackedMLP(norm, [*mlp.affine_layers, head], weights="float16").nbytes == 2 * n_weights + 4 * n_biases
    with torch.no_grad():
        head.weight[1, 2] = 65504.0  # the largest float16: still packed
        PackedMLP(norm, [*mlp.affine_layers, head], weights="float16")
        head.weight[1, 2] = -7e4
    with pytest.raises(ValueError, match="layer 2 has weights beyond the float16 range.*70000"):
        PackedMLP(norm, [*mlp.affine_layers, head], weights="float16")
    PackedMLP(norm, [*mlp.affine_layers, head])  # float32 takes it
    with pytest.raises(ValueError, match=r"weights must be one of \['float16', 'float32'\], got 'half'"):
        FastMeanAction(GaussianActor(OBS_DIM, ACTION_DIM, [8]), weights="half")


@pytest.mark.parametrize("checkpoint", ["policy_lattice.pt", "policy_moe.pt"])
def test_load_policy_with_float16_weights(checkpoint):
    policy = kt.load_policy(DATA / checkpoint, weights="float16")
    assert policy.weights == "float16" and kt.load_policy(DATA / checkpoint).weights == "float32"
    obs = np.random.default_rng(1).standard_normal((MAX_FAST_BATCH + 1, policy.obs_dim)).astype(np.float32)
    with torch.no_grad():
        rounded = rounded_to_float16(policy.policy).mean_action(torch.from_numpy(obs)).numpy()
        exact = policy.policy.mean_action(torch.from_numpy(obs)).numpy()
    small = policy.mean_action(obs[:MAX_FAST_BATCH])
    np.testing.assert_allclose(small, rounded[:MAX_FAST_BATCH], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(policy.mean_action(obs[0]), rounded[0], rtol=1e-5, atol=1e-6)
    assert relative_distance(small, exact[:MAX_FAST_BATCH]) < FLOAT16_TOLERANCE
    np.testing.assert_array_equal(policy.mean_action(obs), exact)  # above MAX_FAST_BATCH: the float32 modules
    with pytest.raises(ValueError, match="weights must be one of.*got 'bfloat16'"):
        kt.load_policy(DATA / checkpoint, weights="bfloat16")


def test_kinesis_eval_weights_option():
    parser = build_parser()
    args = parser.parse_args(["eval", "--checkpoint", str(DATA / "policy_lattice.pt"), "--weights", "float16"])
    assert args.weights == "float16" and parser.parse_args(["eval"]).weights == "float32"
    factory = CheckpointPolicy(str(DATA / "policy_lattice.pt"), args.weights)
    assert "float16 weights" in factory.description
    threads = torch.get_num_threads()
    try:
        assert factory(309, 80).__self__.weights == "float16"
    finally:
        torch.set_num_threads(threads)  # the factory sets one thread, as for an evaluation worker
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--weights", "half"])

"""Original-layout checkpoints (conformance README sections 7.3 and 8): detection, sizes, round trips."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import kinesis_training as kt
from kinesis_training.checkpoint import infer_spec

DATA = Path(__file__).parent / "data" / "conformance"
EXPERTS = [DATA / f"moe_experts/expert_{k}/model.pth" for k in range(3)]


def assert_same(a, b, where="root"):
    """Deep, bit-exact equality of two checkpoint objects (tensors: dtype, shape and bytes)."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_detects_kinds_and_sizes():
    lattice = kt.load_checkpoint(DATA / "policy_lattice.pt")
    assert lattice.spec == kt.PolicySpec(
        kind="lattice", obs_dim=309, action_dim=80, mlp_units=(64, 48), critic_units=(64, 48), latent_dim=48
    )
    assert (lattice.epoch, lattice.frame) == (2, 256)
    moe = kt.load_checkpoint(DATA / "policy_moe.pt")
    assert moe.spec == kt.PolicySpec(
        kind="moe", obs_dim=309, action_dim=80, mlp_units=(64, 48), critic_units=(64, 48),
        num_experts=3, gate_units=(32, 16),
    )
    assert (moe.epoch, moe.frame) == (1, 128)
    assert kt.load_checkpoint(EXPERTS[2]).epoch == 3000


def test_gaussian_detected_from_log_std_width(tmp_path):
    actor, critic = kt.GaussianActor(7, 3, [16, 8]), kt.Critic(7, [16, 8])
    kt.save_checkpoint(tmp_path / "model.pth", actor, critic, epoch=5, frame=10)
    ckpt = kt.load_checkpoint(tmp_path / "model.pth")
    assert (ckpt.spec.kind, ckpt.spec.obs_dim, ckpt.spec.action_dim, ckpt.spec.mlp_units) == ("gaussian", 7, 3, (16, 8))
    assert ckpt.optimizer_policy["param_groups"][0]["lr"] == 5e-5
    assert ckpt.optimizer_value["param_groups"][0]["lr"] == 3e-4


def test_size_mismatch_names_both_sizes():
    with pytest.raises(ValueError, match=r"observation size 309.*observation size 246"):
        kt.load_checkpoint(DATA / "policy_lattice.pt", obs_dim=246)
    with pytest.raises(ValueError, match=r"action size 80.*action size 86"):
        kt.load_policy(DATA / "policy_moe.pt", obs_dim=309, action_dim=86)


def test_bad_files_raise_value_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        kt.load_checkpoint(tmp_path / "missing.pth")
    torch.save({"epoch": 1}, tmp_path / "model.pth")
    with pytest.raises(ValueError, match="lacks the entries"):
        kt.load_checkpoint(tmp_path / "model.pth")
    state = kt.load_checkpoint(DATA / "policy_lattice.pt").policy.state_dict()
    state["log_std"] = torch.zeros(1, 90)
    with pytest.raises(ValueError, match="log_std width 90"):
        infer_spec(state, kt.Critic(309, [64, 48]).state_dict())


@pytest.mark.parametrize("name", ["policy_lattice.pt", "policy_moe.pt", "moe_experts/expert_1/model.pth"])
def test_resaving_an_original_reproduces_it_exactly(tmp_path, name):
    original = torch.load(DATA / name, weights_only=True)
    ckpt = kt.load_checkpoint(DATA / name)
    out = tmp_path / "sub" / "resaved.pth"
    kt.save_checkpoint(
        out, ckpt.policy, ckpt.critic, epoch=ckpt.epoch, frame=ckpt.frame,
        optimizer_policy=ckpt.optimizer_policy, optimizer_value=ckpt.optimizer_value,
    )
    assert_same(torch.load(out, weights_only=True), original)
    names = zipfile.ZipFile(out).namelist()
    assert "model/data.pkl" in names and all(n.startswith("model/") for n in names)
    reloaded = kt.load_checkpoint(out)
    for key, value in ckpt.policy.state_dict().items():
        assert torch.equal(value, reloaded.policy.state_dict()[key]), key


def test_moe_from_expert_files_reproduces_construction(tmp_path):
    ref = np.load(DATA / "policy_moe.npz")
    torch.manual_seed(0)
    moe = kt.load_moe_from_experts(EXPERTS, gate_units=[32, 16])
    obs = torch.from_numpy(ref["probe_obs"])
    np.testing.assert_allclose(moe.expert_actions(obs).numpy(), ref["expert_actions_at_construction"], atol=1e-5)
    assert int(moe.norm.n) == ref["gate_norm_n_at_construction"]
    assert [int(e[0].n) for e in moe.experts.experts] == list(ref["expert_norm_n_at_construction"])
    expert0 = torch.load(EXPERTS[0], weights_only=True)["policy"]
    assert torch.equal(moe.norm.mean, expert0["norm.mean"]) and torch.equal(moe.norm.std, expert0["norm.std"])
    expert2 = torch.load(EXPERTS[2], weights_only=True)["policy"]
    assert torch.equal(moe.experts.experts[2][2].weight, expert2["action_mean.weight"])
    assert int(moe.experts.norm.n) == 0
    reference_keys = list(torch.load(DATA / "policy_moe.pt", weights_only=True)["policy"])
    assert list(moe.state_dict()) == reference_keys


def test_describe_lists_kind_sizes_and_counts():
    text = kt.describe(DATA / "policy_moe.pt")
    for fragment in ("kind:        moe", "epoch:       1", "frame:       128", "obs size:    309",
                     "action size: 80", "experts:     3", "gate MLP:    32-16", "gate n = 2560",
                     "experts n = 2560, 2560, 2560"):
        assert fragment in text
    lattice = kt.describe(DATA / "policy_lattice.pt")
    # 309*64+64 + 64*48+48 + 48*80+80 + 128 policy parameters; critic 309*64+64 + 64*48+48 + 48+1
    assert "latent size: 48" in lattice and "policy 27008 (27008 trainable), critic 23009" in lattice

"""KINESIS v1 rewards and termination against the conformance vectors (README section 4.3)."""

import mujoco
import numpy as np
import pytest

from conftest import CONFORMANCE

from kinesis_tasks import observations, rewards

ROWS = range(8)


@pytest.fixture(scope="module")
def model(v1_model) -> mujoco.MjModel:
    return v1_model


@pytest.fixture(scope="module")
def task() -> dict:
    return dict(np.load(CONFORMANCE / "task_obs.npz"))


@pytest.fixture(scope="module")
def pd() -> dict:
    return dict(np.load(CONFORMANCE / "pd_control.npz"))


def row_data(model, task, i) -> mujoco.MjData:
    """README 2.5 at-state evaluation of row i."""
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:], data.act[:], data.ctrl[:] = (task[k][i] for k in ("qpos", "qvel", "act", "ctrl"))
    mujoco.mj_forward(model, data)
    return data


def test_default_config_matches_vectors(task):
    config = rewards.RewardConfig()
    assert (config.k_pos, config.k_vel, config.k_energy) == (task["k_pos"], task["k_vel"], task["k_energy"])
    assert dict(config.scales) == {
        "body_pos": task["w_pos"], "vel": task["w_vel"], "upright": task["w_upright"], "energy": task["w_energy"],
    }


@pytest.mark.parametrize("i", ROWS)
def test_rewards_match_vectors(model, task, pd, i):
    data = row_data(model, task, i)
    ref_pos, ref_vel = task["ref_pos"][i], task["ref_vel"][i]
    terms = rewards.imitation_terms(model, data, ref_pos, ref_vel)
    assert terms.keys() == {"body_pos", "vel"}
    assert terms["body_pos"] == pytest.approx(task["r_body_pos"][i], abs=1e-9)
    assert terms["vel"] == pytest.approx(task["r_vel"][i], abs=1e-9)
    assert rewards.imitation(model, data, ref_pos, ref_vel) == pytest.approx(task["imitation_reward"][i], abs=1e-9)
    assert rewards.upright(model, data) == pytest.approx(task["upright_reward"][i], abs=1e-9)
    all_terms = rewards.reward_terms(model, data, ref_pos, ref_vel, pd["substep_activations"][i])
    assert rewards.total(all_terms) == pytest.approx(task["total_reward"][i], abs=1e-9)


def test_energy_terms_match_vectors(pd, task):
    np.testing.assert_allclose(rewards.energy(pd["substep_activations"]), pd["substep_energy_reward"], atol=1e-12)
    np.testing.assert_allclose(rewards.energy(pd["substep_activations"]), task["energy_rewards_used"], atol=1e-12)
    u = pd["substep_activations"][3, 2]
    assert rewards.energy(u) == pytest.approx(np.exp(-0.05 * (np.abs(u).sum() + np.sqrt(u @ u))), rel=1e-14)
    assert rewards.energy(np.zeros(80)) == 1.0


def test_batched_terms_match_rows(model, task, pd):
    datas = [row_data(model, task, i) for i in ROWS]
    layout = observations.body_layout(model)
    state = observations.body_state(
        layout, *(np.stack([getattr(d, key) for d in datas]) for key in ("xpos", "xquat", "qpos", "sensordata"))
    )
    terms = rewards.reward_terms_from_state(
        layout, state, task["ref_pos"], task["ref_vel"], pd["substep_activations"], rewards.RewardConfig()
    )
    np.testing.assert_allclose(terms["body_pos"], task["r_body_pos"], atol=1e-9)
    np.testing.assert_allclose(terms["vel"], task["r_vel"], atol=1e-9)
    np.testing.assert_allclose(terms["upright"], task["upright_reward"], atol=1e-9)
    np.testing.assert_allclose(rewards.total(terms), task["total_reward"], atol=1e-9)


def test_total_uses_same_named_scales():
    config = rewards.RewardConfig(scales={"body_pos": 2.0, "vel": 0.5})
    assert rewards.total({"body_pos": 0.25, "vel": 1.0}, config) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="upright"):
        rewards.total({"upright": 1.0}, config)


def test_termination_mean_and_max(model, task):
    body_pos = task["body_pos_tracked"][0]
    offsets = np.full(7, 0.1)
    offsets[3] = 0.3
    ref_pos = body_pos + offsets[:, None] * np.array([0.6, 0.0, 0.8])  # unit direction, so distance = offset
    assert rewards.tracking_distance(body_pos, ref_pos) == pytest.approx(0.9 / 7)
    assert rewards.tracking_distance(body_pos, ref_pos, "max") == pytest.approx(0.3)
    assert not rewards.is_terminated(body_pos, ref_pos, rewards.TRAIN_TERMINATION)
    assert rewards.is_terminated(body_pos, ref_pos, rewards.TerminationConfig(distance=0.15, reduction="max"))
    assert not rewards.is_terminated(body_pos, ref_pos, rewards.TerminationConfig(distance=0.5, reduction="max"))
    data = row_data(model, task, 0)
    assert not rewards.terminated(model, data, ref_pos)
    assert rewards.terminated(model, data, ref_pos + [0.0, 0.0, 0.2])
    assert not rewards.terminated(model, data, ref_pos + [0.0, 0.0, 0.2], config=rewards.EVAL_TERMINATION)
    with pytest.raises(ValueError, match="reduction"):
        rewards.tracking_distance(body_pos, ref_pos, "median")

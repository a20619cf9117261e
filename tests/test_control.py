"""Target-length ("PD") muscle control: MuJoCo's curves, the v1 conformance vectors, one full control step."""

import mujoco
import numpy as np
import pytest
from conftest import at_state

from kinesis_tasks import MuscleSim, load_embodiment
from kinesis_tasks.control import (
    MuscleParams,
    direct_excitation,
    muscle_bias,
    muscle_gain,
    target_length_activation,
    target_length_control,
)


def per_muscle_reference(model, action, length, velocity):
    """Plain loop over muscles with MuJoCo's own muscle curves: the independent reference."""
    out = np.empty(model.nu)
    for i in range(model.nu):
        peak = model.actuator_biasprm[i, 2]
        target = (np.clip(action[i], -1, 1) + 1) / 2 * model.actuator_lengthrange[i, 1]
        kp = 5 * peak
        force = np.clip(kp * (target - length[i]) - 0.1 * kp * velocity[i], -peak, 0)
        gain = mujoco.mju_muscleGain(
            length[i], velocity[i], model.actuator_lengthrange[i], model.actuator_acc0[i], model.actuator_gainprm[i, :9]
        )
        bias = mujoco.mju_muscleBias(length[i], model.actuator_lengthrange[i], model.actuator_acc0[i], model.actuator_biasprm[i, :9])
        out[i] = np.clip((force - bias) / min(-1.0, gain), 0, 1)
    return out


@pytest.mark.parametrize("embodiment", ["legs", "legs_back"])
def test_vectorized_curves_equal_mujoco_per_muscle(embodiment):
    model = load_embodiment(embodiment)
    params = MuscleParams.from_model(model)
    rng = np.random.default_rng(0)
    lo, hi = model.actuator_lengthrange.T
    for _ in range(20):  # lengths across and beyond the range, velocities of both signs
        length = rng.uniform(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo))
        velocity = rng.normal(0, 1.0, model.nu)
        action = rng.uniform(-1.2, 1.2, model.nu)
        gain_ref = [mujoco.mju_muscleGain(length[i], velocity[i], model.actuator_lengthrange[i], model.actuator_acc0[i], model.actuator_gainprm[i, :9]) for i in range(model.nu)]
        bias_ref = [mujoco.mju_muscleBias(length[i], model.actuator_lengthrange[i], model.actuator_acc0[i], model.actuator_biasprm[i, :9]) for i in range(model.nu)]
        np.testing.assert_allclose(muscle_gain(params, length, velocity), gain_ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(muscle_bias(params, length), bias_ref, rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            target_length_control(params, action, length, velocity),
            per_muscle_reference(model, action, length, velocity), rtol=0, atol=1e-9,
        )


def test_target_length_activation_matches_v1_vectors(v1_model, conformance):
    pd = conformance("pd_control")
    for row in range(len(pd["qpos"])):
        data = at_state(v1_model, pd["qpos"][row], pd["qvel"][row], pd["act"][row], pd["ctrl"][row])
        np.testing.assert_allclose(data.actuator_length, pd["actuator_length"][row], atol=1e-12)
        params = MuscleParams.from_model(v1_model)
        from kinesis_tasks.control import desired_forces, target_lengths

        np.testing.assert_allclose(target_lengths(params, pd["actions"][row]), pd["target_lengths"][row], atol=1e-12)
        np.testing.assert_allclose(
            desired_forces(params, pd["actions"][row], data.actuator_length, data.actuator_velocity), pd["forces"][row], atol=1e-9
        )
        np.testing.assert_allclose(target_length_activation(v1_model, data, pd["actions"][row]), pd["activations"][row], atol=1e-9)


def test_one_control_step_matches_v1(v1_model, conformance):
    """Five substeps from the at-state data, with the one-substep-stale lengths of v1 (README 2.6)."""
    pd = conformance("pd_control")
    sim = MuscleSim(v1_model, control_mode="target_length", substeps=5)
    for row in range(len(pd["qpos"])):
        sim.reset(pd["qpos"][row], pd["qvel"][row], pd["act"][row])
        sim.data.ctrl[:] = pd["ctrl"][row]
        mujoco.mj_forward(sim.model, sim.data)
        sim.step(pd["actions"][row])
        np.testing.assert_allclose(sim.substep_controls, pd["substep_activations"][row], atol=1e-9)
        np.testing.assert_allclose(sim.data.qpos, pd["next_qpos"][row], atol=1e-7)
        np.testing.assert_allclose(sim.data.qvel, pd["next_qvel"][row], atol=1e-5)
        np.testing.assert_allclose(sim.data.act, pd["next_act"][row], atol=1e-9)


def test_direct_mode_maps_actions_to_excitations():
    np.testing.assert_array_equal(direct_excitation(np.array([-1.0, 0.0, 1.0, 3.0, -3.0])), [0.0, 0.5, 1.0, 1.0, 0.0])
    model = load_embodiment("legs")
    sim = MuscleSim(model, control_mode="direct")
    sim.step(np.linspace(-1, 1, model.nu))
    np.testing.assert_allclose(sim.substep_controls, np.tile(np.linspace(0, 1, model.nu), (5, 1)))


@pytest.mark.parametrize("bad", [np.zeros(79), np.zeros((80, 1)), np.r_[np.zeros(79), np.nan], np.r_[np.zeros(79), np.inf]])
def test_bad_action_raises_and_leaves_state_untouched(bad):
    sim = MuscleSim(load_embodiment("legs"))
    sim.step(np.zeros(80))
    before = (sim.data.qpos.copy(), sim.data.qvel.copy(), sim.data.act.copy(), sim.data.time)
    with pytest.raises(ValueError, match="action"):
        sim.step(bad)
    np.testing.assert_array_equal(sim.data.qpos, before[0])
    np.testing.assert_array_equal(sim.data.qvel, before[1])
    np.testing.assert_array_equal(sim.data.act, before[2])
    assert sim.data.time == before[3]


def test_fatigue_accumulates_under_sustained_excitation():
    sim = MuscleSim(load_embodiment("legs"), control_mode="direct", muscle_condition="fatigue")
    for _ in range(60):  # 2 s of full excitation
        sim.step(np.ones(80))
    state = sim.fatigue_state()
    total = state["active"] + state["resting"] + state["fatigued"]
    np.testing.assert_allclose(total, 1.0, atol=1e-9)  # 3CC-r compartments are conserved
    assert np.all(state["fatigued"] > 0)
    assert np.all(sim.substep_controls[-1] < 1.0)  # fatigue limits what reaches MuJoCo
    assert MuscleSim(load_embodiment("legs")).fatigue_state() is None

"""KINESIS v1 observations against the conformance vectors (tests/data/conformance, README sections 2-4)."""

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import CONFORMANCE

from kinesis_tasks import observations, rotations

ROWS = range(8)
ROLLOUT_ROWS = range(4, 8)


@pytest.fixture(scope="module")
def model(v1_model) -> mujoco.MjModel:
    return v1_model


@pytest.fixture(scope="module")
def proprio() -> dict:
    return dict(np.load(CONFORMANCE / "proprio.npz"))


@pytest.fixture(scope="module")
def task() -> dict:
    return dict(np.load(CONFORMANCE / "task_obs.npz"))


def at_state(model, qpos, qvel, act, ctrl) -> mujoco.MjData:
    """README 2.5: fresh data, write the state, one full forward evaluation."""
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:], data.act[:], data.ctrl[:] = qpos, qvel, act, ctrl
    mujoco.mj_forward(model, data)
    return data


def row_data(model, arrays, i, prefix="") -> mujoco.MjData:
    return at_state(model, *(arrays[prefix + key][i] for key in ("qpos", "qvel", "act", "ctrl")))


def test_layout_of_v1_model(model, proprio, task):
    layout = observations.body_layout(model)
    assert layout.body_names == tuple(proprio["body_names"])
    assert layout.tracked_names == tuple(task["tracked_body_names"])
    np.testing.assert_array_equal(layout.tracked, task["tracked_body_index"])
    np.testing.assert_array_equal(layout.tracked, [0, 11, 5, 12, 6, 14, 8])
    assert (layout.proprioception_size, layout.imitation_size, layout.full_size) == (246, 63, 309)
    assert layout.root == 0 and layout.root_qposadr == 0
    np.testing.assert_array_equal(layout.linvel_adr[:, 0], np.arange(0, 48, 3))
    np.testing.assert_array_equal(layout.angvel_adr[:, 0], np.arange(48, 96, 3))
    np.testing.assert_array_equal(layout.touch_adr, [96, 97, 98, 99])
    assert observations.body_layout(model) is layout  # cached


def test_tracked_bodies_head_rule(model):
    assert observations.tracked_bodies(model, include_head=False) == (
        "root", "tibia_l", "tibia_r", "talus_l", "talus_r", "toes_l", "toes_r",
    )
    with_head = observations.tracked_bodies(model, include_head=True)
    assert with_head[:2] == ("root", "head") and len(with_head) == 8
    layout = observations.body_layout(model, with_head)
    assert layout.imitation_size == 72 and layout.tracked[1] == 2


@pytest.mark.parametrize("i", ROWS)
def test_proprioception_matches_vectors(model, proprio, i):
    data = row_data(model, proprio, i)
    obs = observations.proprioception(model, data)
    assert obs.dtype == np.float32 and obs.shape == (246,)
    np.testing.assert_allclose(obs, proprio["proprio"][i], rtol=1e-6, atol=1e-5)
    blocks = observations.proprioception_blocks(model, data)
    assert tuple(blocks) == tuple(proprio["proprioceptive_inputs"])
    for name, block in blocks.items():
        expected = proprio["proprio_" + name][i]
        if name == "feet_contacts":
            np.testing.assert_allclose(block, expected, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_allclose(block, expected, rtol=0, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("i", ROLLOUT_ROWS)
def test_observation_after_step_with_stale_sensors(model, proprio, i):
    """README 2.6: sensors from x4 (at-state on prev_*), body poses from x5 (forward kinematics only)."""
    data = row_data(model, proprio, i, prefix="prev_")
    data.qpos[:], data.qvel[:] = proprio["qpos"][i], proprio["qvel"][i]
    mujoco.mj_kinematics(model, data)
    obs = observations.proprioception(model, data)
    np.testing.assert_allclose(obs, proprio["obs_env_after_step"][i], rtol=1e-6, atol=1e-5)
    assert not np.allclose(obs, proprio["proprio"][i], atol=1e-3)  # the stale observation differs


@pytest.mark.parametrize("i", ROWS)
def test_imitation_and_full_observation(model, task, i):
    data = row_data(model, task, i)
    ref_pos, ref_vel = task["ref_pos"][i], task["ref_vel"][i]
    blocks = observations.imitation_blocks(model, data, ref_pos, ref_vel)
    assert tuple(blocks) == tuple(task["task_inputs"])
    for name, block in blocks.items():
        np.testing.assert_allclose(block, task["task_" + name][i], rtol=0, atol=1e-9, err_msg=name)
    obs = observations.imitation(model, data, ref_pos, ref_vel)
    assert obs.dtype == np.float32 and obs.shape == (63,)
    np.testing.assert_allclose(obs, task["task_obs"][i], rtol=1e-6, atol=1e-6)
    full = observations.full(model, data, ref_pos, ref_vel)
    assert full.dtype == np.float32 and full.shape == (309,)
    np.testing.assert_allclose(full, task["full_obs"][i], rtol=1e-6, atol=1e-5)


def test_batched_state_matches_rows(model, task):
    """Stacked MjData arrays [8, ...] through the pure functions give every row at once."""
    datas = [row_data(model, task, i) for i in ROWS]
    layout = observations.body_layout(model)
    state = observations.body_state(
        layout, *(np.stack([getattr(d, key) for d in datas]) for key in ("xpos", "xquat", "qpos", "sensordata"))
    )
    full = np.concatenate(
        (
            observations.proprioception_from_state(layout, state),
            observations.imitation_from_state(layout, state, task["ref_pos"], task["ref_vel"]),
        ),
        axis=-1,
    )
    assert full.shape == (8, 309)
    np.testing.assert_allclose(full, task["full_obs"], rtol=1e-6, atol=1e-5)


def test_reference_shape_is_checked(model, task):
    data = row_data(model, task, 0)
    with pytest.raises(ValueError, match="ref_pos"):
        observations.imitation(model, data, task["ref_pos"][0][:6], task["ref_vel"][0])


def test_rotation_helpers_against_mujoco_and_scipy():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(20, 4))
    quats /= np.linalg.norm(quats, axis=-1, keepdims=True)
    mats = rotations.quat_to_matrix(quats)
    for q, mat in zip(quats, mats):
        expected = np.zeros(9)
        mujoco.mju_quat2Mat(expected, q)
        np.testing.assert_allclose(mat, expected.reshape(3, 3), atol=1e-14)
    ex, ey = rotations.tilt_angles(quats)
    euler = Rotation.from_quat(quats[:, [1, 2, 3, 0]]).as_euler("xyz")  # lowercase: extrinsic
    np.testing.assert_allclose(np.stack((ex, ey), -1), euler[:, :2], atol=1e-12)
    yaw = rng.uniform(-np.pi, np.pi, size=20)
    yaw_quats = np.stack((np.cos(yaw / 2), 0 * yaw, 0 * yaw, np.sin(yaw / 2)), -1)
    np.testing.assert_allclose(rotations.heading_angle(yaw_quats), yaw, atol=1e-12)
    vec = rng.normal(size=(20, 3))
    expected = Rotation.from_euler("z", -yaw[:, None]).apply(vec)
    np.testing.assert_allclose(rotations.rotate_by_heading_inverse(yaw, vec), expected, atol=1e-12)


# A small model in the shape of the built-in embodiments: a static body before the root (excluded from
# the body list), a free root named "root" with a head and the six tracked leg bodies.
_GENERIC_BODIES = ("head", "tibia_l", "tibia_r", "talus_l", "talus_r", "toes_l", "toes_r")


def _generic_xml(with_vel_sensors: bool = True, n_touch: int = 4) -> str:
    bodies = "".join(
        f'<body name="{b}" pos="0 {0.1 * k} -{0.1 * k}"><joint type="hinge" axis="1 0 0"/>'
        f'<geom size="0.03" pos="0.01 0 0"/><site name="s_{b}"/></body>'
        for k, b in enumerate(_GENERIC_BODIES)
    )
    names = ("root", *_GENERIC_BODIES)
    sensors = "".join(
        f'<framelinvel objtype="body" objname="{b}"/><frameangvel objtype="body" objname="{b}"/>' for b in names
    ) if with_vel_sensors else ""
    sensors += "".join(f'<touch site="s_{b}"/>' for b in _GENERIC_BODIES[-n_touch:]) if n_touch else ""
    return f"""<mujoco><worldbody><geom type="plane" size="5 5 .1"/><body name="fixture"><geom size="0.1"/></body>
    <body name="root" pos="0 0 1"><freejoint/><geom size="0.1"/>{bodies}</body></worldbody>
    <sensor>{sensors}</sensor></mujoco>"""


def test_generic_model_layout_and_velocities():
    model = mujoco.MjModel.from_xml_string(_generic_xml())
    tracked = observations.tracked_bodies(model, include_head=True)
    assert tracked == ("root", "head", "tibia_l", "tibia_r", "talus_l", "talus_r", "toes_l", "toes_r")
    layout = observations.body_layout(model, tracked)
    assert layout.body_names == ("root", *_GENERIC_BODIES) and layout.root == 0
    assert layout.proprioception_size == 1 + 4 + 3 * 7 + 12 * 8 + 4
    data = mujoco.MjData(model)
    rng = np.random.default_rng(1)
    data.qvel[:] = rng.normal(size=model.nv)
    mujoco.mj_forward(model, data)
    # Independent check: COM linear velocity in world frame from mj_objectVelocity (rot:lin order).
    vel6 = np.zeros(6)
    mujoco.mj_objectVelocity(model, data, mujoco.mjtObj.mjOBJ_BODY, model.body("toes_r").id, vel6, 0)
    state = observations.body_state(layout, data.xpos, data.xquat, data.qpos, data.sensordata)
    np.testing.assert_allclose(state.linvel[layout.body_names.index("toes_r")], vel6[3:], atol=1e-12)
    np.testing.assert_allclose(state.angvel[layout.body_names.index("toes_r")], vel6[:3], atol=1e-12)


def test_generic_model_missing_sensors_raise():
    with pytest.raises(ValueError, match="framelinvel.*root"):
        observations.body_layout(mujoco.MjModel.from_xml_string(_generic_xml(with_vel_sensors=False)))
    with pytest.raises(ValueError, match="4 touch sensors"):
        observations.body_layout(mujoco.MjModel.from_xml_string(_generic_xml(n_touch=2)))

"""kinesis_tasks.scene against MuJoCo's own forward pass on the 80-muscle legs embodiment."""

import mujoco
import numpy as np
import pytest

from kinesis_tasks import TRACKED_BODIES, load_embodiment
from kinesis_tasks.scene import (
    SceneLayout, Shape, activation_colors, build_scene, matrix_to_quat, reference_frame, set_pose,
)


@pytest.fixture(scope="module")
def legs() -> mujoco.MjModel:
    return load_embodiment("legs")


@pytest.fixture(scope="module")
def posed(legs):
    """(qpos, activation, scene, reference data): a bent, rotated pose; reference from mj_fwdPosition."""
    rng = np.random.default_rng(7)
    qpos = legs.qpos0.copy()
    qpos[:3] = [0.3, -0.2, 0.9]
    qpos[3:7] = np.array([0.9, 0.1, -0.2, 0.3]) / np.linalg.norm([0.9, 0.1, -0.2, 0.3])
    hinge = legs.jnt_type == mujoco.mjtJoint.mjJNT_HINGE
    low, high = legs.jnt_range[hinge].T
    qpos[legs.jnt_qposadr[hinge]] = rng.uniform(low, high)
    activation = rng.uniform(0, 1, legs.nu)
    data = mujoco.MjData(legs)
    set_pose(legs, data, qpos)
    scene = build_scene(SceneLayout.from_model(legs), data, activation=activation,
                        reference=[[0.0, 0.0, 1.0]], goals=[[1.0, 2.0, 0.0], [3.0, 4.0, 0.0]])
    expected = mujoco.MjData(legs)
    expected.qpos[:] = qpos
    mujoco.mj_fwdPosition(legs, expected)
    mujoco.mj_fwdActuation(legs, expected)  # actuator_length for the path-length check
    return qpos, activation, scene, expected


def test_body_poses_equal_mujoco(legs, posed):
    _, _, scene, expected = posed
    assert scene.body_names == tuple(legs.body(i).name for i in range(1, legs.nbody))
    np.testing.assert_array_equal(scene.body_pos, expected.xpos[1:])
    np.testing.assert_array_equal(scene.body_quat, expected.xquat[1:])
    ids = [legs.body(name).id for name in TRACKED_BODIES]
    np.testing.assert_array_equal(scene.keypoints, expected.xpos[ids])


def test_one_polyline_per_muscle_through_mujoco_wrap_points(legs, posed):
    _, activation, scene, expected = posed
    muscles = scene.muscles
    assert len(muscles.names) == len(muscles.counts) == 80
    assert muscles.names == tuple(legs.actuator(i).name for i in range(legs.nu))
    wrap_xpos = expected.wrap_xpos.reshape(-1, 3)
    for i, name in enumerate(muscles.names):
        tendon = legs.tendon(f"{name}_tendon").id
        start, count = expected.ten_wrapadr[tendon], expected.ten_wrapnum[tendon]
        np.testing.assert_array_equal(muscles.path(i), wrap_xpos[start:start + count], err_msg=name)
    assert muscles.counts.min() >= 2 and len(muscles.points) == muscles.counts.sum()


def test_site_only_paths_are_as_long_as_the_muscle(legs, posed):
    """Where a tendon wraps no geom, MuJoCo's length is the polyline length: independent of wrap_xpos."""
    _, _, scene, expected = posed
    muscles = scene.muscles
    wrap_obj = expected.wrap_obj.ravel()
    checked = 0
    for i in range(len(muscles.names)):
        rows = slice(expected.ten_wrapadr[legs.actuator_trnid[i, 0]], None)
        if np.all(wrap_obj[rows][:muscles.counts[i]] == -1):
            length = np.linalg.norm(np.diff(muscles.path(i), axis=0), axis=1).sum()
            assert length == pytest.approx(expected.actuator_length[i], rel=1e-12), muscles.names[i]
            checked += 1
    assert checked > 40


def test_muscle_colours_follow_activation(posed):
    _, activation, scene, _ = posed
    np.testing.assert_array_equal(scene.muscles.activation, activation)
    np.testing.assert_allclose(scene.muscles.rgba[:, 0], activation)
    np.testing.assert_allclose(scene.muscles.rgba[:, 2], 1 - activation)
    np.testing.assert_array_equal(scene.muscles.rgba[:, [1, 3]], np.tile([0.0, 1.0], (80, 1)))
    np.testing.assert_array_equal(activation_colors([0.0, 1.0, 2.0, -1.0]),
                                  [[0, 0, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 1, 1]])


def test_primitives_follow_geoms(legs, posed):
    _, _, scene, expected = posed
    shapes = scene.primitives
    t = mujoco.mjtGeom
    drawn = np.isin(legs.geom_group, (0, 4)) & (legs.geom_type != t.mjGEOM_PLANE) & (legs.geom_rgba[:, 3] > 0)
    capsules = drawn & (legs.geom_type == t.mjGEOM_CAPSULE)
    assert len(shapes.kind) == drawn.sum() + 2 * capsules.sum()
    assert set(shapes.geom_id) == set(np.flatnonzero(drawn))
    meshes = np.flatnonzero(drawn & (legs.geom_type == t.mjGEOM_MESH))
    assert len(meshes) == 38 and np.all(shapes.kind[np.isin(shapes.geom_id, meshes)] == Shape.BOX)

    for s, g in enumerate(shapes.geom_id):
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, expected.geom_xmat[g])
        np.testing.assert_allclose(shapes.quat[s], quat * np.sign(quat[0]), atol=1e-12)
    for g in np.flatnonzero(capsules):
        rows = np.flatnonzero(shapes.geom_id == g)
        axis = expected.geom_xmat[g].reshape(3, 3)[:, 2] * legs.geom_size[g, 1]
        centres = {tuple(np.round(shapes.pos[r], 12)) for r in rows}
        want = {tuple(np.round(expected.geom_xpos[g] + k * axis, 12)) for k in (0, 1, -1)}
        assert centres == want
        cylinder = rows[shapes.kind[rows] == Shape.CYLINDER][0]
        np.testing.assert_allclose(shapes.size[cylinder], 2 * legs.geom_size[g, [0, 0, 1]])


def test_points_and_validation(legs, posed):
    _, _, scene, _ = posed
    np.testing.assert_array_equal(scene.goals, [[1, 2, 0], [3, 4, 0]])
    np.testing.assert_array_equal(scene.reference, [[0, 0, 1]])
    data = mujoco.MjData(legs)
    with pytest.raises(ValueError, match="qpos"):
        set_pose(legs, data, np.zeros(3))
    layout = SceneLayout.from_model(legs)
    with pytest.raises(ValueError, match="goals"):
        build_scene(layout, data, goals=[1.0, 2.0])
    with pytest.raises(ValueError, match="activation"):
        build_scene(layout, data, activation=np.zeros(5))
    with pytest.raises(ValueError, match="tracked_bodies"):
        SceneLayout.from_model(legs, tracked_bodies=("no_such_body",))
    assert build_scene(layout, data, muscles=False).muscles is None


def test_matrix_to_quat_matches_mujoco():
    rng = np.random.default_rng(3)
    quats = rng.normal(size=(200, 4))
    quats[:4] = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1e-9, 0.6, 0.8, 0]]  # 180-degree turns
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    mats = np.zeros((len(quats), 9))
    for q, m in zip(quats, mats):
        mujoco.mju_quat2Mat(m, q)
    expected = quats * np.where(quats[:, :1] < 0, -1.0, 1.0)
    np.testing.assert_allclose(matrix_to_quat(mats.reshape(-1, 3, 3)), expected, atol=1e-9)


def test_reference_frame_loops():
    keypoints = np.zeros((30, 7, 3))
    assert [reference_frame(keypoints, 30.0, t) for t in (0.0, 0.5, 1.0, 1.01)] == [0, 15, 0, 0]


PULLEY_XML = """
<mujoco>
  <worldbody>
    <site name="a" pos="0 0 1"/><site name="b" pos="0.2 0 1"/><site name="c" pos="-0.2 0 1"/>
    <body pos="0 0 0.5"><joint type="slide" axis="0 0 1"/><geom size="0.05" mass="1"/><site name="d"/></body>
  </worldbody>
  <tendon>
    <spatial name="split"><site site="d"/><site site="a"/><pulley divisor="2"/><site site="d"/><site site="b"/>
    <pulley divisor="2"/><site site="d"/><site site="c"/></spatial>
  </tendon>
  <actuator><muscle tendon="split" lengthrange="0.5 1.5"/></actuator>
</mujoco>
"""


def test_pulley_muscles_are_refused():
    model = mujoco.MjModel.from_xml_string(PULLEY_XML)
    with pytest.raises(ValueError, match="'split' has a pulley"):
        SceneLayout.from_model(model, tracked_bodies=())

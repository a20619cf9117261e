"""AMASS/KIT converter on a generated SMPL model file and generated AMASS clips."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kinesis_tasks.motions import library_splits, load_library
from kinesis_tasks.motions.amass import SMPL_JOINTS, SmplSkeleton, convert_clip, read_amass_clip

#: SMPL kinematic tree (parent of each of the 24 joints).
SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
VERTICES = 60


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory):
    """A small SMPL-format model: the arrays smplx reads, with random but valid values."""
    rng = np.random.default_rng(0)
    regressor = rng.random((24, VERTICES))
    weights = rng.random((VERTICES, 24))
    model = {
        "v_template": rng.normal(0.0, 0.3, (VERTICES, 3)),
        "shapedirs": rng.normal(0.0, 0.01, (VERTICES, 3, 10)),
        "posedirs": rng.normal(0.0, 0.01, (VERTICES, 3, 207)),
        "J_regressor": regressor / regressor.sum(axis=1, keepdims=True),
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "kintree_table": np.array([[4294967295, *SMPL_PARENTS[1:]], list(range(24))], dtype=np.int64),
        "f": rng.integers(0, VERTICES, (40, 3)).astype(np.uint32),
    }
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        model[key] = model[key].astype(np.float32)  # as the official file; smplx reads float32 anyway
    folder = tmp_path_factory.mktemp("smpl")
    with open(folder / "SMPL_NEUTRAL.pkl", "wb") as stream:
        pickle.dump(model, stream)
    return folder, model


def write_clip(path, poses, trans, rate=60.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, poses=poses, trans=trans, mocap_framerate=np.asarray(rate), betas=np.zeros(16),
             gender=np.asarray("neutral"))
    return path


def reference_joints(model, poses, trans):
    """Independent forward kinematics: rest joints J = J_regressor @ v_template, chained rotations."""
    rest = model["J_regressor"].astype(np.float64) @ model["v_template"].astype(np.float64)
    out = np.zeros((len(poses), 22, 3))
    for frame, pose in enumerate(poses):
        rotation = [None] * 22
        for joint in range(22):
            local = Rotation.from_rotvec(pose[3 * joint:3 * joint + 3])
            parent = SMPL_PARENTS[joint]
            if parent < 0:
                rotation[joint], out[frame, joint] = local, rest[0]
            else:
                rotation[joint] = rotation[parent] * local
                out[frame, joint] = out[frame, parent] + rotation[parent].apply(rest[joint] - rest[parent])
    return out + trans[:, None]


def test_zero_pose_keypoints_are_regressed_rest_joints_plus_trans(tmp_path, smpl_dir):
    folder, model = smpl_dir
    frames = 61
    trans = np.column_stack([np.linspace(0, 1.2, frames), np.zeros(frames), np.full(frames, 0.9)])
    clip = write_clip(tmp_path / "KIT" / "3" / "walking_slow01_poses.npz", np.zeros((frames, 156)), trans)
    motion = convert_clip(clip, SmplSkeleton(folder))
    assert motion.name == "0-KIT_3_walking_slow01_poses" and motion.fps == 30.0 and motion.num_frames == 31
    rest = (model["J_regressor"].astype(np.float64) @ model["v_template"])[list(SMPL_JOINTS.values())]
    np.testing.assert_allclose(motion.keypoints, rest[None] + trans[::2, None], atol=1e-9)
    # zero global orientation = SMPL's y-up rest frame; as a MyoLegs root that is lying face up: Rx(-90 deg)
    np.testing.assert_allclose(np.abs(motion.root_quat[0]), [np.sqrt(0.5), np.sqrt(0.5), 0, 0], atol=1e-12)


def test_posed_keypoints_match_independent_forward_kinematics(tmp_path, smpl_dir):
    folder, model = smpl_dir
    rng = np.random.default_rng(1)
    frames = 21
    poses = np.zeros((frames, 156))
    poses[:, :66] = rng.normal(0.0, 0.4, (frames, 66))
    poses[:, :3] = [np.pi / 2, 0.0, 0.0]  # AMASS upright: y-up rest frame turned z-up
    trans = rng.normal(0.0, 0.5, (frames, 3))
    clip = write_clip(tmp_path / "KIT" / "7" / "turn01_poses.npz", poses, trans, rate=60.0)
    motion = convert_clip(clip, SmplSkeleton(folder))
    expected = reference_joints(model, poses, trans)[::2][:, list(SMPL_JOINTS.values())]
    np.testing.assert_allclose(motion.keypoints, expected, atol=1e-9)  # 60 -> 30 fps: every other frame
    np.testing.assert_allclose(np.abs(motion.root_quat[:, 0]), 1.0, atol=1e-12)  # upright = MyoLegs identity


def test_cli_converts_a_folder_with_kit_splits(tmp_path, smpl_dir, capsys):
    from kinesis.cli import main

    folder, _ = smpl_dir
    poses, trans = np.zeros((12, 156)), np.zeros((12, 3))
    write_clip(tmp_path / "KIT" / "4" / "WalkInCounterClockwiseCircle04_poses.npz", poses, trans)  # a test key
    write_clip(tmp_path / "KIT" / "12" / "LeftTurn03_poses.npz", poses, trans)  # a train key
    np.savez(tmp_path / "KIT" / "12" / "shape.npz", betas=np.zeros(16))  # AMASS per-subject file: skipped
    out = tmp_path / "kit.npz"
    status = main(["motions", "convert-amass", "--amass-dir", str(tmp_path / "KIT"), "--smpl-model-dir", str(folder),
                   "--out", str(out)])
    assert status == 0, capsys.readouterr()
    assert library_splits(out) == {"train": ("0-KIT_12_LeftTurn03_poses",),
                                   "test": ("0-KIT_4_WalkInCounterClockwiseCircle04_poses",)}
    assert len(load_library(out)) == 2


def test_missing_smpl_model_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"smpl\.is\.tue\.mpg\.de.*v1\.1\.0.*SMPL_NEUTRAL\.pkl"):
        SmplSkeleton(tmp_path)


def test_malformed_amass_clips_are_named(tmp_path):
    broken = tmp_path / "broken_poses.npz"
    np.savez(broken, poses=np.zeros((5, 156)), mocap_framerate=np.asarray(100.0))
    with pytest.raises(ValueError, match=r"broken_poses\.npz: not an AMASS clip, missing \['trans'\]"):
        read_amass_clip(broken)
    nan = write_clip(tmp_path / "nan_poses.npz", np.full((5, 156), np.nan), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="nan_poses.npz: poses or trans contain NaN"):
        read_amass_clip(nan)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="garbage.npz: not a readable AMASS"):
        read_amass_clip(garbage)

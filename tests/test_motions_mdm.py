"""MDM results.npy importer on a generated file in the real format."""

from __future__ import annotations

import numpy as np
import pytest

from kinesis_tasks.motions import load_library
from kinesis_tasks.motions.amass import SMPL_JOINTS
from kinesis_tasks.motions.mdm import import_mdm


def write_results(path, motion, text, lengths, **extra):
    np.save(path, {"motion": motion, "text": text, "lengths": np.asarray(lengths), **extra}, allow_pickle=True)
    return path


def walking_joints(frames: int) -> np.ndarray:
    """[22, 3, T] HumanML3D-style joints walking along +z (y-up) at 1 m/s, 20 fps."""
    rng = np.random.default_rng(0)
    rest = rng.normal(0.0, 0.2, (22, 3)) + [0.0, 0.9, 0.0]
    t = np.arange(frames) / 20.0
    return (rest[:, :, None] + np.array([0.0, 0.0, 1.0])[None, :, None] * t).astype(np.float32)


def test_import_turns_y_up_into_z_up_and_resamples(tmp_path):
    motion = np.stack([walking_joints(60), walking_joints(60)])
    path = write_results(tmp_path / "results.npy", motion, ["a person walks forward", "a person walks"], [60, 41],
                         num_samples=1, num_repetitions=2)
    first, second = import_mdm(path)
    assert (first.name, second.name) == ("results_s0_r0", "results_s0_r1")
    assert (first.text, second.text) == ("a person walks forward", "a person walks")
    assert first.fps == 30.0 and abs(first.duration - 59 / 20) <= 0.5 / 30 + 1e-9 and abs(second.duration - 2.0) < 1e-9
    joints = motion[0][list(SMPL_JOINTS.values()), :, 0].astype(np.float64)  # frame 0, y-up
    np.testing.assert_allclose(first.keypoints[0], np.column_stack([joints[:, 0], -joints[:, 2], joints[:, 1]]))
    np.testing.assert_allclose(first.velocities[:, 0], [[0.0, -1.0, 0.0]] * first.num_frames, atol=1e-5)
    out = tmp_path / "mdm.npz"
    from kinesis.cli import main

    assert main(["motions", "import-mdm", str(path), "--out", str(out)]) == 0
    assert list(load_library(out)) == ["results_s0_r0", "results_s0_r1"]


@pytest.mark.parametrize(
    "content, message",
    [({"motion": np.zeros((1, 21, 3, 10)), "text": ["x"], "lengths": [10]}, r"must be \[N, 22, 3, T\]"),
     ({"motion": np.zeros((2, 22, 3, 10)), "text": ["x"], "lengths": [10, 10]}, "must have 2 entries"),
     ({"motion": np.zeros((1, 22, 3, 10)), "text": ["x"]}, r"lack \['lengths'\]"),
     ({"motion": np.zeros((1, 22, 3, 10)), "text": ["x"], "lengths": [11]}, "length 11 is outside"),
     ({"motion": np.full((1, 22, 3, 10), np.nan), "text": ["x"], "lengths": [10]}, "non-finite")],
)
def test_bad_results_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content, allow_pickle=True)
    with pytest.raises(ValueError, match="bad.npy: .*" + message):
        import_mdm(path)


def test_non_dict_file_is_rejected(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="array.npy: expected a pickled dict"):
        import_mdm(path)

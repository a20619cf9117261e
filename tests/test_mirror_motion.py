"""Mirror images of reference motions (kinesis_tasks.motions.mirror)."""

import mujoco
import numpy as np
import pytest

from kinesis_tasks.embodiment import load_embodiment
from kinesis_tasks.motions import load_library
from kinesis_tasks.motions.mirror import mirror_motion, mirrored_text


@pytest.fixture(scope="module")
def legs():
    return load_embodiment("legs")


def test_a_mirrored_left_turn_turns_right_and_its_poses_put_the_bodies_on_its_keypoints(legs):
    turn = load_library("default")["gaitanalysis_turn_left"]
    image = mirror_motion(turn, legs)
    assert image.name == "gaitanalysis_turn_left_mirrored" and image.text == "turn right while walking"
    assert turn.keypoints[-1, 0, 1] > 4.0 and image.keypoints[-1, 0, 1] == pytest.approx(-turn.keypoints[-1, 0, 1])
    left, right = turn.body_names.index("talus_l"), turn.body_names.index("talus_r")
    np.testing.assert_allclose(image.keypoints[:, right], turn.keypoints[:, left] * [1, -1, 1])
    # the mirrored joint angles reproduce the mirrored keypoints (MyoLegs is symmetric to about a millimetre)
    data = mujoco.MjData(legs)
    bodies = [legs.body(name).id for name in turn.body_names]
    for frame in range(0, turn.num_frames, 30):
        data.qpos[:] = image.qpos[frame]
        mujoco.mj_kinematics(legs, data)
        assert np.abs(data.xpos[bodies] - image.keypoints[frame]).max() < 2e-3
    np.testing.assert_allclose(image.root_quat, image.qpos[:, 3:7], atol=1e-12)


def test_mirroring_twice_gives_the_motion_back(legs):
    walk = load_library("default")["myosuite_walk_a"]
    twice = mirror_motion(mirror_motion(walk, legs), legs)
    np.testing.assert_allclose(twice.keypoints, walk.keypoints, atol=1e-12)
    np.testing.assert_allclose(twice.qpos, walk.qpos, atol=1e-9)


def test_text_swaps_whole_words_only():
    assert mirrored_text("Turn left, then right; stay upright") == "Turn right, then left; stay upright"

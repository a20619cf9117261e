"""Randomly scheduled walks (kinesis_tasks.motions.variety): reproducible, labelled, physical."""

from __future__ import annotations

import numpy as np
import pytest

from kinesis_tasks.motions.variety import CLIP_SECONDS, SPEED_RANGE, random_walks


@pytest.fixture(scope="module")
def setup():
    from kinesis_tasks.motions.gait import myosuite_gait_cycle
    from kinesis_tasks.motions.kinematics import LegsKinematics

    return myosuite_gait_cycle(), LegsKinematics("legs")


def draw(setup, seed: int, count: int = 8):
    cycle, kinematics = setup
    return random_walks(cycle, kinematics, 30.0, count, np.random.default_rng(seed))


def test_same_seed_same_clips_other_seed_other_clips(setup):
    first, again, other = draw(setup, 3), draw(setup, 3), draw(setup, 4)
    assert [m.name for m in first] == [m.name for m in again]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.qpos, b.qpos)
    assert not all(a.qpos.shape == b.qpos.shape and np.allclose(a.qpos, b.qpos) for a, b in zip(first, other))


def test_clips_are_named_labelled_and_stand_on_the_floor(setup):
    motions = draw(setup, 0, count=12)
    assert len({m.name for m in motions}) == 12
    kinds = {m.name.split("_")[1] for m in motions}
    assert kinds <= {"walk", "start", "stop"} and "walk" in kinds
    for motion in motions:
        assert motion.duration == pytest.approx(CLIP_SECONDS)
        assert np.all(np.isfinite(motion.qpos)) and motion.text
        feet = [motion.body_index(f"talus_{side}") for side in "lr"]
        assert motion.keypoints[:, feet, 2].min() > 0.03  # ankles above the floor, pelvis at walking height
        assert 0.85 < motion.qpos[:, 2].min() and motion.qpos[:, 2].max() < 1.0


def test_speeds_stay_in_range_and_starts_and_stops_stand_still(setup):
    for motion in draw(setup, 1, count=12):
        kind = motion.name.split("_")[1]
        planar = np.linalg.norm(np.diff(motion.qpos[:, :2], axis=0), axis=1) * motion.fps
        second = int(motion.fps)
        if kind == "walk":
            assert SPEED_RANGE[0] - 0.1 < planar.mean() < SPEED_RANGE[1] + 0.1, (motion.name, planar.mean())
        still = planar[:second] if kind == "start" else planar[-second:]
        if kind != "walk":
            assert still.max() < 1e-9, motion.name


def test_amplitude_transitions_only_when_asked(setup):
    # shares={start, stop} draws transitions only; transitions="amplitude" builds them as the default library's:
    # 1 s still (start: first, stop: last), the stride then opening (start) or closing (stop) with the pace.
    cycle, kinematics = setup
    motions = random_walks(cycle, kinematics, 30.0, 6, np.random.default_rng(5), shares={"start": 1, "stop": 1},
                           transitions="amplitude")
    assert {m.name.split("_")[1] for m in motions} == {"start", "stop"}
    for motion in motions:
        qpos = motion.qpos if motion.name.split("_")[1] == "start" else motion.qpos[::-1]
        second = int(motion.fps)
        assert np.ptp(qpos[:second], axis=0).max() < 1e-9, motion.name
        stride = np.abs(qpos[:, 7:] - qpos[0, 7:]).max(axis=1)  # joint angles away from standing
        assert stride[second + 6] < 0.3 * stride[-second:].max(), motion.name
    with pytest.raises(ValueError, match="shares must weigh kinds of"):
        random_walks(cycle, kinematics, 30.0, 2, np.random.default_rng(0), shares={"jump": 1.0})
    with pytest.raises(ValueError, match="transitions must be one of"):
        random_walks(cycle, kinematics, 30.0, 2, np.random.default_rng(0), transitions="abrupt")

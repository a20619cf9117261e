"""ReferenceMotion, libraries and the embedded default library."""

from __future__ import annotations

import numpy as np
import pytest

from kinesis_tasks.motions import (
    DEFAULT_BODIES,
    ReferenceMotion,
    default_library_path,
    library_splits,
    load_library,
    load_motion,
    save_library,
    save_motion,
)
from kinesis_tasks.motions.library import find_motion
from kinesis_tasks.motions.motion import read_motion_file
from kinesis_tasks.motions.variants import SPEED_WORDS, speed_range


@pytest.fixture(scope="module")
def library():
    return load_library()


@pytest.fixture(scope="module")
def planner():
    """The gait planner's embedded library: the training clips with the cadence start and stop."""
    return load_library("planner")


def straight_line(frames: int = 31, fps: float = 30.0, speed: float = 1.2) -> ReferenceMotion:
    times = np.arange(frames) / fps
    keypoints = np.zeros((frames, 7, 3))
    keypoints[:, :, 0] = speed * times[:, None]
    keypoints[:, :, 2] = np.linspace(0.05, 0.95, 7)
    yaw = 0.5 * times
    quat = np.column_stack([np.cos(yaw / 2), np.zeros(frames), np.zeros(frames), np.sin(yaw / 2)])
    qpos = np.zeros((frames, 9))
    qpos[:, 3:7] = quat
    return ReferenceMotion(name="line", fps=fps, keypoints=keypoints, root_quat=quat, qpos=qpos,
                           embodiment="legs", text="walk forward", source="test", licence="CC0")


def test_default_library_is_embedded_small_and_split(library):
    assert default_library_path().is_file()
    assert default_library_path().stat().st_size < 3e6
    splits = library_splits()
    train, test = set(splits["train"]), set(splits["test"])
    assert len(library) == 21 and len(test) == 5
    assert not train & test and train | test == set(library)
    assert set(load_library(split="test")) == test


def test_default_motions_are_finite_labelled_and_touch_the_floor(library):
    for motion in library.values():
        assert motion.body_names[:7] == DEFAULT_BODIES and motion.body_names[7] == "head"
        assert np.all(np.isfinite(motion.keypoints)) and motion.fps == 30.0 and motion.text
        toes = motion.keypoints[:, [motion.body_index("toes_l"), motion.body_index("toes_r")], 2]
        assert 0.0 < toes.min() < 0.04, motion.name  # toe body origin ~2 cm above the sole when flat
        assert motion.keypoints[..., 2].min() > 0.0
        assert 0.85 < motion.keypoints[:, 0, 2].mean() < 1.0  # pelvis height of MyoLegs


def test_walking_clips_move_forward_at_their_labelled_speed(library):
    walks = [m for m in library.values() if speed_range(m.text) is not None]
    assert {m.text for m in walks} == {"walk forward slowly", "walk forward", "walk forward quickly"}
    for motion in walks:
        low, high = speed_range(motion.text)
        root = motion.keypoints[:, 0]
        speed = (root[-1, 0] - root[0, 0]) / motion.duration
        assert low <= speed <= high, (motion.name, speed)
        assert abs(root[-1, 1] - root[0, 1]) < 0.1  # straight ahead (+x)
    assert SPEED_WORDS["slowly"][1] == SPEED_WORDS[""][0]


def test_turns_go_the_labelled_way_and_standing_stays(library):
    for subject in ("myosuite", "gaitanalysis"):
        assert library[f"{subject}_turn_left"].keypoints[-1, 0, 1] > 3.0
        assert library[f"{subject}_turn_right"].keypoints[-1, 0, 1] < -3.0
        start = library[f"{subject}_start"].keypoints[:, 0]
        assert np.ptp(start[:25, 0]) < 0.01 and start[-1, 0] > 1.5  # still first, walking at the end
        stop = library[f"{subject}_stop"].keypoints[:, 0]
        assert stop[30, 0] > 0.5 and np.ptp(stop[-25:], axis=0).max() < 1e-6  # walking first, still at the end
    assert np.ptp(library["stand_still"].keypoints, axis=0).max() < 1e-9


def test_foot_locking_undoes_sliding():
    from kinesis_tasks.motions.kinematics import LegsKinematics

    kinematics = LegsKinematics("legs")
    sliding = np.tile(kinematics.standing_qpos, (10, 1))
    sliding[:, 0] += 0.02 * np.arange(10)  # a standing body slid forward 2 cm per frame
    locked = kinematics.foot_locked(sliding)
    np.testing.assert_allclose(locked[:, :2], np.tile(sliding[0, :2], (10, 1)), atol=1e-12)
    np.testing.assert_array_equal(locked[:, 2:], sliding[:, 2:])


def test_cadence_starting_and_stopping_move_the_root_with_the_feet(planner):
    # The planner's cadence start and stop: until the pace rises (start) and once it has fallen (stop), the
    # root goes with the feet on the floor (synthesize(feet=...)): re-locking the feet leaves it where it is.
    # The earlier clips scaled the stride's amplitude with the pace while the root kept going: 0.5-1.1 m off
    # their legs over the ramp (now < 0.25 m).
    from kinesis_tasks.motions.kinematics import LegsKinematics

    kinematics = LegsKinematics("legs")
    fps = planner["myosuite_start"].fps
    still = int(round(1.4 * fps))  # standing, then the pose blended into mid-swing with the phase held
    ramp = int(round(2.3 * fps))  # and the cadence ramp
    for subject in ("myosuite", "gaitanalysis"):
        for kind in ("start", "stop"):
            if f"{subject}_{kind}" not in planner:
                continue  # myosuite_stop is a test clip
            qpos = planner[f"{subject}_{kind}"].qpos
            qpos = qpos if kind == "start" else qpos[::-1]
            locked = kinematics.foot_locked(qpos[:ramp])
            drift = np.abs((locked[:, :2] - locked[0, :2]) - (qpos[:ramp, :2] - qpos[0, :2]))
            assert drift[:still].max() < 0.01 and drift.max() < 0.25, (subject, kind, drift[:still].max(), drift.max())


def test_lock_stance_keeps_the_stance_foot_planted(planner):
    # With lock_stance, while the pose blends between standing and mid-swing and the pace is still low, the
    # root goes with the stride's stance foot (stance_sides): re-locking that foot leaves it where it is,
    # except where that would move the root backward (the end of the stop). Without it (the planner's cadence clips) the lowest geom carries, and during the blend the body pivots
    # over the toes of the foot about to swing: the stance foot slides 6-7 cm.
    from kinesis_tasks.motions.cycle import sample_periodic, stance_sides
    from kinesis_tasks.motions.gait import myosuite_gait_cycle
    from kinesis_tasks.motions.kinematics import LegsKinematics
    from kinesis_tasks.motions.variants import cycle_variants, mid_swing_phase

    kinematics, cycle = LegsKinematics("legs"), myosuite_gait_cycle()
    fps = planner["myosuite_start"].fps
    side = sample_periodic(stance_sides(cycle, kinematics), np.array([mid_swing_phase(cycle, kinematics)]))
    assert side.tolist() == [[1.0, 0.0]]  # the left foot carries at MyoSuite's mid-swing
    end = int(round(1.8 * fps))  # still, blend, and the cadence ramp up to about half
    for locked_clips in (True, False):
        clips = {m.name: m for m in cycle_variants(cycle, kinematics, fps, lock_stance=locked_clips)}
        for kind in ("start", "stop"):
            motion = clips[f"myosuite_{kind}"]
            if not locked_clips and motion.name in planner:
                np.testing.assert_array_equal(motion.qpos, planner[motion.name].qpos)  # the planner's clips
            qpos = motion.qpos if kind == "start" else motion.qpos[::-1]
            relocked = kinematics.foot_locked(qpos[:end], stance=np.repeat(side, end, axis=0))
            drift = np.abs((relocked[:, :2] - relocked[0, :2]) - (qpos[:end, :2] - qpos[0, :2])).max()
            if locked_clips and kind == "stop":  # the root never goes back: as the legs close the foot slides
                assert np.diff(motion.qpos[:, 0]).min() > -1e-9 and drift < 0.1, drift
            else:
                assert drift < 0.015 if locked_clips else drift > 0.05, (kind, locked_clips, drift)


def test_stance_restricts_which_foot_carries():
    from kinesis_tasks.motions.kinematics import LegsKinematics

    kinematics = LegsKinematics("legs")
    qpos = np.tile(kinematics.standing_qpos, (2, 1))
    qpos[1, kinematics.model.jnt_qposadr[kinematics.model.joint("hip_flexion_r").id]] = 0.3  # right leg swings up
    left, right = (kinematics.foot_locked(qpos, stance=np.tile(s, (2, 1))) for s in ([1.0, 0.0], [0.0, 1.0]))
    np.testing.assert_allclose(left[1, :2], qpos[0, :2], atol=1e-9)  # the planted left foot holds the root
    assert np.linalg.norm(right[1, :2] - qpos[0, :2]) > 0.01  # locking the lifted right foot would move it
    gaps = kinematics.foot_gaps(qpos)
    assert abs(gaps[0]).max() < 0.01 and gaps[1, 0] < 0.01 < gaps[1, 1]


def test_stored_qpos_reproduces_keypoints(library):
    from kinesis_tasks.motions.kinematics import LegsKinematics

    motion = library["gaitanalysis_walk_a"]
    keypoints, clearance = LegsKinematics(motion.embodiment, motion.body_names).keypoints(motion.qpos[::10])
    np.testing.assert_allclose(keypoints, motion.keypoints[::10], atol=1e-9)
    assert np.all(clearance > -1e-6) and np.all(clearance < 1e-6)  # lowest foot geom on the floor


def test_myosuite_cycle_duration_estimate():
    from kinesis_tasks.motions.gait import myosuite_gait_cycle

    cycle = myosuite_gait_cycle()
    assert 0.95 < cycle.duration < 1.1 and 1.2 < cycle.speed < 1.3


def test_velocities_are_central_differences():
    motion = straight_line()
    np.testing.assert_allclose(motion.velocities[:, :, 0], 1.2, atol=1e-12)
    np.testing.assert_allclose(motion.velocities[:, :, 1:], 0.0, atol=1e-12)
    assert not motion.velocities.flags.writeable and not motion.keypoints.flags.writeable


def test_npz_round_trip_is_exact(tmp_path):
    motion = straight_line()
    for loaded in (read_motion_file(save_motion(motion, tmp_path / "one.npz")),
                   load_library(save_library(tmp_path / "lib.npz", [motion], {"test": ["line"]}))["line"],
                   load_library(save_library(tmp_path / "folder", [motion], {"test": ["line"]}), "test")["line"]):
        for name in ("keypoints", "root_quat", "qpos"):
            np.testing.assert_array_equal(getattr(loaded, name), getattr(motion, name))
        for name in ("name", "fps", "body_names", "embodiment", "text", "source", "licence"):
            assert getattr(loaded, name) == getattr(motion, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "lib.npz", "one.npz"]  # no temporaries left
    assert load_motion(tmp_path / "one.npz").name == "line"


def test_resample_keeps_duration_and_interpolates():
    motion = straight_line(frames=31, fps=30.0)  # 1 s
    for fps in (20.0, 30.0, 45.0, 100.0, 7.0):
        resampled = motion.resample(fps)
        assert abs(resampled.duration - motion.duration) <= 0.5 / fps
        np.testing.assert_allclose(resampled.keypoints[:, 0, 0], 1.2 * resampled.times, atol=1e-12)
        yaw = 2 * np.arctan2(resampled.root_quat[:, 3], resampled.root_quat[:, 0])
        np.testing.assert_allclose(yaw, 0.5 * resampled.times, atol=1e-12)  # slerp of a constant-rate turn
        np.testing.assert_allclose(np.linalg.norm(resampled.qpos[:, 3:7], axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize(
    "change, message",
    [({"fps": 0.0}, "fps must be"), ({"fps": float("nan")}, "fps must be"),
     ({"keypoints": np.zeros((10, 6, 3))}, "shape [T, 7, 3]"), ({"keypoints": np.zeros((1, 7, 3))}, "at least 2"),
     ({"root_quat": np.zeros((31, 4))}, "unit quaternions"), ({"qpos": np.zeros((30, 9))}, "qpos must have shape"),
     ({"embodiment": ""}, "without the embodiment"), ({"name": ""}, "non-empty")],
)
def test_invalid_motions_are_rejected(change, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        straight_line().replace(**change)


def test_nan_frames_are_named():
    keypoints = np.array(straight_line().keypoints)
    keypoints[4, 2, 1] = np.nan
    with pytest.raises(ValueError, match=r"motion 'line': keypoints has non-finite values.*\[4\]"):
        straight_line().replace(keypoints=keypoints)


def test_bad_files_name_the_file_and_problem(tmp_path):
    good = save_motion(straight_line(), tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated.npz: not a readable"):
        read_motion_file(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, poses=np.zeros((3, 156)))
    with pytest.raises(ValueError, match="foreign.npz: not a motion library"):
        load_library(foreign)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.asarray("kinesis-motion-1"), keypoints=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz"):
        read_motion_file(pickled)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_library(tmp_path / "missing.npz")


def test_unknown_names_and_splits_suggest_alternatives(library):
    with pytest.raises(ValueError, match="did you mean myosuite_walk_a"):
        find_motion(library, "myosuite_walk_aa", "default")
    with pytest.raises(ValueError, match=r"no split 'val'; it has \['test', 'train'\]"):
        load_library(split="val")
    with pytest.raises(ValueError, match="duplicate motion names"):
        save_library("unused.npz", [straight_line(), straight_line()])


def test_amplitude_transitions_ramp_the_stride_and_leave_the_walks_alone(library, planner):
    # The shipped start and stop (transitions="amplitude", docs/motions.md) shorten or lengthen the stride with
    # the cadence over AMPLITUDE_RAMP_SECONDS; the walking and turning clips are the planner's (cadence) ones.
    from kinesis_tasks.motions.gait import myosuite_gait_cycle
    from kinesis_tasks.motions.kinematics import LegsKinematics
    from kinesis_tasks.motions.variants import cycle_variants

    fps = library["myosuite_start"].fps
    for name in ("myosuite_walk_a", "myosuite_turn_left", "gaitanalysis_walk_a"):
        np.testing.assert_array_equal(library[name].keypoints, planner[name].keypoints)
    still = int(fps)  # 1 s standing before the start's ramp and after the stop's
    start, stop = library["myosuite_start"].keypoints, library["myosuite_stop"].keypoints
    assert np.ptp(start[:still], axis=0).max() < 1e-9 and np.ptp(stop[-still:], axis=0).max() < 1e-9
    ankles = [library["myosuite_start"].body_names.index(f"talus_{side}") for side in "lr"]
    gap = np.abs(start[:, ankles[0], 0] - start[:, ankles[1], 0])  # the stride opens as the pace rises
    walking = gap[-int(fps):].max()
    assert gap[still + int(0.4 * fps)] < 0.3 * walking and start[-1, 0, 0] > 1.5
    for subject in ("myosuite", "gaitanalysis"):  # the root never goes backward (it did at MyoSuite's stance switch)
        for kind in ("start", "stop"):
            assert np.diff(library[f"{subject}_{kind}"].qpos[:, 0]).min() > -1e-9, (subject, kind)
    with pytest.raises(ValueError, match="transitions must be one of"):
        cycle_variants(myosuite_gait_cycle(), LegsKinematics("legs"), fps, transitions="abrupt")


def test_a_sagittal_stride_shifts_its_weight_over_the_stance_foot():
    # A stride recorded in the sagittal plane only (GaitAnalysisToolKit's) has no lateral sway: its slow first
    # steps lift a foot with the pelvis between the feet, which no body can do. transitions="balanced" gives its
    # starts and stops a weight shift toward the stance foot, the hips ab/adducting so the feet stay put.
    from dataclasses import replace

    from kinesis_tasks.motions.gait import myosuite_gait_cycle
    from kinesis_tasks.motions.kinematics import LegsKinematics
    from kinesis_tasks.motions.variants import BALANCE_SHIFT, cycle_variants

    kinematics, recorded = LegsKinematics("legs"), myosuite_gait_cycle()
    flat = replace(recorded, name="flat", root_velocity=recorded.root_velocity * [1.0, 0.0],
                   angles={joint: values for joint, values in recorded.angles.items() if "adduction" not in joint})
    assert flat.sagittal and not recorded.sagittal
    fps = 30.0
    shifted, plain = ({m.name: m for m in cycle_variants(flat, kinematics, fps, transitions=kind)}["flat_start"]
                      for kind in ("balanced", "amplitude"))
    recorded_clips = {m.name: m for m in cycle_variants(recorded, kinematics, fps, transitions="balanced")}
    amplitude_clips = {m.name: m for m in cycle_variants(recorded, kinematics, fps, transitions="amplitude")}
    for name in ("myosuite_start", "myosuite_stop"):  # a recorded sway is left alone
        np.testing.assert_array_equal(recorded_clips[name].qpos, amplitude_clips[name].qpos)
    root, ankles = 0, [shifted.body_names.index(f"talus_{side}") for side in "lr"]
    offset = shifted.keypoints[:, root, 1] - plain.keypoints[:, root, 1]
    assert 0.5 * BALANCE_SHIFT < np.abs(offset).max() <= BALANCE_SHIFT
    assert np.abs(offset[: int(0.8 * fps)]).max() < 1e-5  # none while standing,
    assert np.ptp(offset[-int(fps):]) < 1e-3  # nor at full stride
    slide = np.abs(shifted.keypoints[:, ankles, 1] - plain.keypoints[:, ankles, 1]).max()
    assert slide < 0.004, slide  # the feet stay where they were (the root moves up to ~36 mm)
    # toward the stance foot: + (left) while the left foot carries
    frames = np.flatnonzero(np.abs(offset) > 0.5 * BALANCE_SHIFT)
    gaps = kinematics.foot_gaps(shifted.qpos[frames])
    lower_left = gaps[:, 0] < gaps[:, 1] - 0.01
    lower_right = gaps[:, 1] < gaps[:, 0] - 0.01
    assert np.all(offset[frames][lower_left] > 0) and np.all(offset[frames][lower_right] < 0)
    assert lower_left.any() or lower_right.any()

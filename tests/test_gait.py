"""GaitPlanner: velocity commands -> walking references composed from the default library's clips.

An ideal tracker follows the reference (each state is the previous reference), so the reference's own
kinematics are checked: where it goes, how fast, how it turns, and that it never jumps.
"""

import numpy as np
import pytest

from kinesis_tasks.motions import load_library
from kinesis_tasks.tasks import DirectionalTask, ReachTask, TaskState, Twist
from kinesis_tasks.tasks.directional import DirectionalConfig
from kinesis_tasks.tasks.gait import GaitCommand, GaitPlanner, starting_part
from kinesis_tasks.tasks.reach import ReachConfig
from kinesis_tasks.tasks.text_to_motion import clip_profile

DT = 1.0 / 30.0
POSE = np.array([[0.0, 0.0, 0.95], [0.0, 0.09, 0.45], [0.0, -0.09, 0.45], [0.0, 0.09, 0.07],
                 [0.0, -0.09, 0.07], [0.15, 0.09, 0.02], [0.15, -0.09, 0.02]])


@pytest.fixture(scope="module")
def library():
    return load_library("planner")  # the clips the task planner composes walks from


def follow(planner, commands, *, start=(1.0, -2.0), heading=np.pi / 2, t0=0.0):
    """Root reference [steps, 3] and all references [steps, K, 3] of an ideal tracker; ``commands`` is a list
    of (seconds, GaitCommand)."""
    pos = POSE - POSE[0] + [start[0], start[1], 0.95]
    vel, time, roots, frames = np.zeros((7, 3)), t0, [], []
    for seconds, command in commands:
        for _ in range(int(round(seconds / DT))):
            state = TaskState(body_pos=pos, body_vel=vel, heading=heading, time=time)
            pos, vel = planner.reference(state, command)
            heading = float(np.arctan2(vel[0, 1], vel[0, 0])) if np.linalg.norm(vel[0, :2]) > 0.3 else heading
            time += DT
            roots.append(pos[0].copy())
            frames.append(pos.copy())
    return np.array(roots), np.array(frames)


def speed(roots, seconds):
    """Mean horizontal root speed over the last ``seconds``."""
    n = int(round(seconds / DT))
    return float(np.linalg.norm(roots[-1, :2] - roots[-n - 1, :2]) / (n * DT))


def test_standing_command_stands_where_the_body_is(library):
    roots, _ = follow(GaitPlanner(library, dt=DT), [(5.0, GaitCommand(0.0))])
    assert np.abs(roots[:, :2] - [1.0, -2.0]).max() < 0.1
    assert speed(roots, 2.0) < 0.05


@pytest.mark.parametrize("target", [0.8, 1.2, 1.5])
def test_forward_command_starts_then_walks_at_the_speed_along_the_heading(library, target):
    roots, _ = follow(GaitPlanner(library, dt=DT), [(10.0, GaitCommand(target))])
    assert speed(roots, 3.0) == pytest.approx(target, abs=0.12)
    travel = roots[-1, :2] - roots[0, :2]
    assert travel[1] > 5.0 and abs(travel[0]) < 0.15 * travel[1]  # facing +y: walked along +y
    start = roots[:int(0.15 / DT)]  # the command joins at once: 0.2 s of the start clip's still lead, then it moves
    assert np.abs(start[:, :2] - start[0, :2]).max() < 0.01 < np.abs(roots[int(1.0 / DT), :2] - start[0, :2]).max()


def test_an_unpaced_start_plays_the_start_clip_at_its_own_pace_then_walks_at_the_command(library):
    # A slow command: the paced start is time-warped down to it (slower, longer); unpaced, the start clip runs
    # as recorded (the start a tracker learned) and the slow walks joined after it set the speed, step by step.
    slow = [(14.0, GaitCommand(0.7))]
    paced, _ = follow(GaitPlanner(library, dt=DT), slow)
    unpaced, _ = follow(GaitPlanner(library, dt=DT, paced_start=False), slow)
    first = int(round(1.5 / DT))
    assert np.linalg.norm(unpaced[first, :2] - unpaced[0, :2]) > 1.3 * np.linalg.norm(paced[first, :2] - paced[0, :2])
    assert speed(unpaced, 3.0) == pytest.approx(0.7, abs=0.12)
    assert DirectionalTask(dt=DT).planner.paced_start is False and ReachTask(dt=DT).planner.paced_start is True


def test_a_change_of_pace_goes_through_the_speeds_in_between(library):
    # From 1.5 to 0.8 m/s: walks at most MAX_SPEED_RATIO slower than the last, SPEED_STEP_S each at most, lead
    # to the new pace (a walker commanded a sudden change of pace fell within a second of the join).
    from kinesis_tasks.tasks.gait import MAX_SPEED_RATIO, SPEED_STEP_S

    fast, slow = GaitCommand(1.5), GaitCommand(0.8)
    roots, _ = follow(GaitPlanner(library, dt=DT), [(8.0, fast), (16.0, slow)])
    second = int(round(1.0 / DT))
    speeds = np.linalg.norm(roots[second:, :2] - roots[:-second, :2], axis=1)  # m/s over each 1 s window
    change = int(round(8.0 / DT))
    assert speeds[change - 2 * second:change - second].mean() == pytest.approx(1.5, abs=0.12)
    assert speeds[-3 * second:].mean() == pytest.approx(0.8, abs=0.12)
    steps = int(np.ceil(np.log(1.5 / 0.8) / np.log(MAX_SPEED_RATIO)))  # 5 speeds: 1.5, ..., 0.8
    between = speeds[change + second:change + int((steps - 1) * SPEED_STEP_S / DT)]
    assert ((between > 0.9) & (between < 1.4)).mean() > 0.5  # mostly at the speeds in between
    assert (speeds[second:] / speeds[:-second]).min() > 0.75  # never a drop of more than a quarter in a second


def test_turn_rate_bends_the_walk(library):
    roots, _ = follow(GaitPlanner(library, dt=DT), [(4.0, GaitCommand(1.2)), (6.0, GaitCommand(1.2, 0.4))])
    step = int(round(1.0 / DT))
    direction = np.unwrap(np.arctan2(*(roots[step:, :2] - roots[:-step, :2]).T[::-1]))
    rate = (direction[-1] - direction[-int(round(3.0 / DT))]) / 3.0
    assert rate == pytest.approx(0.4, abs=0.08)


def test_stop_command_comes_to_rest(library):
    roots, _ = follow(GaitPlanner(library, dt=DT), [(6.0, GaitCommand(1.2)), (6.0, GaitCommand(0.0))])
    assert speed(roots, 2.0) < 0.05
    command = int(round(6.0 / DT))  # the stop slows down at once (stopping_part), not after the clip's lead-in
    assert np.linalg.norm(roots[-1, :2] - roots[command, :2]) < 2.1  # 1.85 m; the whole stop clip: 2.29 m


def test_command_changes_never_make_the_reference_jump(library):
    commands = [(3.0, GaitCommand(1.0)), (3.0, GaitCommand(1.5, -0.3)), (3.0, GaitCommand(0.9, 0.5)),
                (3.0, GaitCommand(0.0)), (3.0, GaitCommand(1.2))]
    _, frames = follow(GaitPlanner(library, dt=DT), commands)
    steps = np.linalg.norm(np.diff(frames, axis=0), axis=2)  # every keypoint, every control step
    assert steps.max() < 6.0 * DT  # no keypoint faster than 6 m/s (a swinging foot reaches ~4-5)


def test_an_earlier_state_starts_a_new_episode(library):
    planner = GaitPlanner(library, dt=DT)
    follow(planner, [(5.0, GaitCommand(1.2))], t0=0.0)
    roots, _ = follow(planner, [(1.0, GaitCommand(0.0))], start=(-3.0, 4.0), t0=0.0)
    assert np.abs(roots[:, :2] - [-3.0, 4.0]).max() < 0.1


def test_directional_task_uses_the_gait_by_default():
    task = DirectionalTask(dt=DT)
    assert task.config.reference == "gait"
    assert task.gait_command(Twist(3.0, 0.4, -2.0)) == GaitCommand(2.0, -1.5)  # clipped; no sidestep
    assert task.gait_command(Twist(-1.0)).speed == 0.0  # no backward gait


def test_a_library_without_start_or_stop_clips_is_a_clear_error(library):
    walks = {name: motion for name, motion in library.items() if "walk" in name}
    with pytest.raises(ValueError, match="no start, stop clip"):
        GaitPlanner(walks, dt=DT)


@pytest.mark.parametrize("goal", [(0.0, 3.0), (-2.0, 1.0), (1.5, -0.5)])  # ahead, left, behind-right (facing +y)
def test_reach_walks_an_ideal_tracker_to_the_goal(goal):
    task = ReachTask(ReachConfig(), dt=DT)
    pos = POSE - POSE[0] + [0.0, 0.0, 0.95]
    vel, heading, goal = np.zeros((7, 3)), np.pi / 2, np.array(goal)
    for step in range(int(20.0 / DT)):
        state = TaskState(body_pos=pos, body_vel=vel, heading=heading, time=step * DT)
        if task.success(state, goal):
            break
        pos, vel = task.reference(state, goal)
        heading = float(np.arctan2(vel[0, 1], vel[0, 0])) if np.linalg.norm(vel[0, :2]) > 0.3 else heading
    assert task.success(state, goal), f"reference root ended {np.linalg.norm(pos[0, :2] - goal):.2f} m from the goal"


def test_start_clip_and_rate_are_chosen_by_name(library):
    planner = GaitPlanner(library, dt=DT, start_clip="myosuite_start", start_rate=0.8)
    # Played at 0.8, from 0.2 s before it moves to a second after it walks at its full (slowed) speed.
    root, full = planner.start_clip.keypoints[:, 0, :2], clip_profile(library["myosuite_start"]).speed
    second = int(round(1.0 / DT))
    assert np.ptp(root[:int(round(0.2 / DT)) - 1], axis=0).max() < 0.01 < np.ptp(root[:second], axis=0).max()
    assert np.linalg.norm(root[-1] - root[-1 - second]) == pytest.approx(0.8 * full, rel=0.1)
    assert planner.start_clip.num_frames < library["myosuite_start"].num_frames / 0.8 - 2 * second
    with pytest.raises(ValueError, match="start_clip 'myosuite_walk_a' is not a start clip"):
        GaitPlanner(library, dt=DT, start_clip="myosuite_walk_a")


def test_the_planner_reads_the_library_it_is_given(library, tmp_path):
    from dataclasses import replace

    from kinesis_tasks.motions import save_library

    stand = library["stand_still"]  # a library whose "myosuite_start" is the GaitAnalysisToolKit start
    clips = dict(library, myosuite_start=replace(library["gaitanalysis_start"], name="myosuite_start"))
    save_library(tmp_path / "lib.npz", clips.values(), {"train": list(clips)})
    planner = GaitPlanner(dt=DT, start_clip="myosuite_start", library=str(tmp_path / "lib.npz"))
    expected = GaitPlanner(dt=DT, start_clip="gaitanalysis_start")
    np.testing.assert_allclose(planner.start_clip.keypoints, expected.start_clip.keypoints)
    save_library(tmp_path / "stand.npz", [stand], {"train": [stand.name]})
    with pytest.raises(ValueError, match="has no start, stop, straight walk clip"):
        GaitPlanner(dt=DT, library=str(tmp_path / "stand.npz"))


def test_an_unknown_reference_is_a_clear_error():
    with pytest.raises(ValueError, match="reach reference must be 'gait' or 'point', got 'walk'"):
        ReachConfig(reference="walk")
    with pytest.raises(ValueError, match="directional reference must be 'gait' or 'point', got 'Gait'"):
        DirectionalConfig(reference="Gait")


def test_each_task_plans_from_its_library():
    # config/tasks.yaml: reach composes walks from the `planner` clips (the cadence start its bundle was tuned on),
    # directional from the default library's (the amplitude start the walker that runs it learned).
    for task, library in ((ReachTask(ReachConfig.from_config(), dt=DT), "planner"),
                          (DirectionalTask(DirectionalConfig.from_config(), dt=DT), "default")):
        start = starting_part(load_library(library)["myosuite_start"])
        np.testing.assert_array_equal(task.planner.start_clip.keypoints, start.keypoints)
    planned, default = (load_library(name)["myosuite_start"].keypoints for name in ("planner", "default"))
    assert planned.shape != default.shape or not np.allclose(planned, default)  # two different start clips

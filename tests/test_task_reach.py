"""Target reach: goal -> reference, progress reward and success on constructed states."""

import numpy as np
import pytest

from kinesis_tasks.tasks import ReachTask, TaskState
from kinesis_tasks.tasks.reach import ReachConfig

# A standing pose facing +x: root, tibiae, tali, toes (m).
POSE = np.array([[0.0, 0.0, 0.95], [0.0, 0.09, 0.45], [0.0, -0.09, 0.45], [0.0, 0.09, 0.07],
                 [0.0, -0.09, 0.07], [0.15, 0.09, 0.02], [0.15, -0.09, 0.02]])


def state_at(x: float, y: float, time: float = 0.0) -> TaskState:
    return TaskState(body_pos=POSE + [x, y, 0.0], body_vel=np.zeros((7, 3)), heading=0.0, time=time)


@pytest.fixture
def task():
    return ReachTask(ReachConfig(success_radius=0.3, max_reference_step=0.5, speed=1.2, slowdown_radius=1.0,
                                 weights={"progress": 1.0, "imitation": 0.2, "success": 1.0}, reference="point"))


def test_config_file_values():
    config = ReachConfig.from_config()
    assert config.success_radius == 0.3 and config.max_reference_step == 0.5


def test_reference_caps_root_step_and_keeps_other_keypoints(task):
    state = state_at(1.0, 1.0)
    ref_pos, ref_vel = task.reference(state, np.array([4.0, 5.0, 0.0]))  # 3-4-5 triangle: 5 m away
    np.testing.assert_allclose(ref_pos[0], [1.0 + 0.3, 1.0 + 0.4, 0.95])  # 0.5 m toward the goal, height kept
    np.testing.assert_array_equal(ref_pos[1:], state.body_pos[1:])
    np.testing.assert_allclose(ref_vel[0], [1.2 * 0.6, 1.2 * 0.8, 0.0])  # cruise speed toward the goal
    np.testing.assert_array_equal(ref_vel[1:], 0.0)


def test_reference_near_goal_is_the_goal_and_slows_down(task):
    ref_pos, ref_vel = task.reference(state_at(0.0, 0.0), np.array([0.2, 0.0]))
    np.testing.assert_allclose(ref_pos[0], [0.2, 0.0, 0.95])
    np.testing.assert_allclose(ref_vel[0], [1.2 * 0.2 / 1.0, 0.0, 0.0])  # linear slow-down inside 1 m


def test_uncapped_reference_puts_root_at_goal_like_kinesis():
    task = ReachTask(ReachConfig(max_reference_step=None, reference="point"))
    ref_pos, _ = task.reference(state_at(0.0, 0.0), np.array([7.0, -3.0, 0.0]))
    np.testing.assert_allclose(ref_pos[0], [7.0, -3.0, 0.95])


def test_progress_reward_is_distance_decrease_over_speed_dt(task):
    goal = np.array([3.0, 4.0])  # 5 m from the origin
    previous, state = state_at(0.0, 0.0, 0.0), state_at(0.03, 0.04, 0.1)  # 0.05 m closer in 0.1 s
    terms = task.reward(previous, state, goal)
    assert terms["progress"] == pytest.approx(0.05 / (1.2 * 0.1))
    assert terms["success"] == 0.0
    # imitation: only the root differs from the reference (0.5 m ahead of the previous root, so 0.45 m away)
    expected = np.exp(-200.0 * 0.45 ** 2 / 21 - 200.0 * np.sum(np.square([0.03, 0.04])) * 6 / 21)
    assert terms["imitation"] == pytest.approx(expected)
    backwards = task.reward(previous, state_at(-0.3, -0.4, 0.1), goal)
    assert backwards["progress"] == -1.0  # clipped
    assert task.total(terms) == pytest.approx(terms["progress"] + 0.2 * terms["imitation"])


def test_success_radius_and_done(task):
    goal = np.array([2.0, 0.0, 0.0])
    assert task.success(state_at(1.75, 0.0), goal)  # 0.25 m
    assert not task.success(state_at(1.65, 0.0), goal)  # 0.35 m
    assert task.done(state_at(1.75, 0.0), goal)
    assert not task.done(state_at(0.0, 0.0, time=5.0), goal)
    assert task.done(state_at(0.0, 0.0, time=20.0), goal)
    fallen = TaskState(body_pos=POSE * [1, 1, 0.3], body_vel=np.zeros((7, 3)), heading=0.0, time=1.0)
    assert task.done(fallen, goal)


def test_bad_goal_and_state_are_clear_errors(task):
    with pytest.raises(ValueError, match="goal"):
        task.reference(state_at(0, 0), np.array([1.0]))
    with pytest.raises(ValueError, match="body_pos"):
        TaskState(body_pos=np.zeros((3, 3)), body_vel=np.zeros((7, 3)), heading=0.0, time=0.0)
    with pytest.raises(ValueError, match="after"):
        task.reward(state_at(0, 0, 1.0), state_at(0, 0, 1.0), np.array([1.0, 0.0]))

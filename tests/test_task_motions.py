"""Task references recorded as motions (kinesis_tasks.task_motions, `kinesis motions from-task`)."""

import argparse

import numpy as np
import pytest

from kinesis import motions_cli
from kinesis_tasks.motions import load_library
from kinesis_tasks.task_env import TaskEnv, TwistSchedule
from kinesis_tasks.task_motions import task_motion, task_motions
from kinesis_tasks.tasks import Twist


@pytest.fixture(scope="module")
def directional():
    return TaskEnv("directional")


def test_a_forward_command_is_recorded_as_a_start_then_a_walk_along_the_heading(directional):
    goal = TwistSchedule((0.0, 10.0), (Twist(1.0, 0.0, 0.0), Twist()))
    motion = task_motion(directional, goal, name="walk", seconds=16.0)
    root, start = motion.keypoints[:, 0], directional.start_state
    assert motion.fps == pytest.approx(1.0 / directional.dt)
    assert motion.num_frames == int(round(16.0 / directional.dt)) + 1
    np.testing.assert_allclose(motion.keypoints[0], start.body_pos)  # from the task's standing start
    heading = np.array([np.cos(start.heading), np.sin(start.heading)])
    late = slice(int(6.0 * motion.fps), int(10.0 * motion.fps))
    speed = (root[late.stop, :2] - root[late.start, :2]) @ heading / 4.0
    assert 0.85 < speed < 1.15  # walking at the commanded 1 m/s along the facing direction
    assert np.abs(np.diff(motion.keypoints, axis=0)).max() * motion.fps < 7.0  # never jumps (swing feet < 7 m/s)
    assert np.ptp(root[-30:, :2], axis=0).max() < 0.01  # stopped and standing at the end


def test_reach_references_come_to_their_goals():
    env = TaskEnv("reach")
    rng = np.random.default_rng(3)
    for motion in task_motions("reach", 2, seed=3, seconds=15.0):
        goal = env.sample_goal(rng)
        distance = np.linalg.norm(motion.keypoints[:, 0, :2] - goal[:2], axis=1)
        reached = int(np.argmax(distance <= env.task.config.success_radius))  # the task's success, its end
        assert distance[reached] <= env.task.config.success_radius
        assert motion.num_frames == reached + 1 + int(round(2.0 * motion.fps))  # then 2 s to settle
        assert motion.text == "reach goal" and "point" in motion.source


def test_from_task_writes_a_training_library_with_poses(tmp_path):
    parser = argparse.ArgumentParser()
    motions_cli.register(parser.add_subparsers())
    out = tmp_path / "refs.npz"
    args = parser.parse_args(["motions", "from-task", "directional", "--count", "1", "--seconds", "1.0",
                              "--with", "default:test", "--out", str(out)])
    assert args.func(args) == 0
    library = load_library(out, split="train")
    assert set(library) == {"directional_0_000", *load_library("default", split="test")}
    recorded = library["directional_0_000"]
    assert recorded.qpos.shape == (recorded.num_frames, 35) and recorded.embodiment == "legs"
    with pytest.raises(ValueError, match="--count must be at least 1"):
        args.func(parser.parse_args(["motions", "from-task", "reach", "--count", "0", "--out", str(out)]))


def test_a_reached_goal_is_stood_at_not_circled():
    env = TaskEnv("reach")
    goal = env.start_state.root_pos + [0.0, -2.0, 0.0]  # 2 m ahead: the start faces -y
    motion = task_motion(env, goal, name="reach", seconds=20.0, settle=8.0)
    distance = np.linalg.norm(motion.keypoints[:, 0, :2] - goal[:2], axis=1)
    assert distance.min() <= env.task.config.success_radius
    # Stopping overruns the success radius; the body then stands within settle_radius instead of walking back.
    assert distance[-1] < env.task.config.settle_radius
    assert np.ptp(motion.keypoints[-int(4 * motion.fps):, 0, :2], axis=0).max() < 0.01


def test_the_reach_reference_itself_reaches_the_evaluation_goals():
    # A tracker can only succeed where its reference does: over the goals of `kinesis eval --task reach
    # --goals 50 --seed 0`, the planned walk (pure pursuit, config/tasks.yaml) passes within the success radius
    # of all 50 (a bearing-proportional turn with half speed beyond 60 deg: 42).
    from kinesis_tasks.evaluation import goal_rng

    env = TaskEnv("reach")
    reached = 0
    for index in range(50):
        goal = env.sample_goal(goal_rng(0, index))
        motion = task_motion(env, goal, name="reach", settle=0.0)
        reached += np.linalg.norm(motion.keypoints[:, 0, :2] - goal[:2], axis=1).min() <= env.task.config.success_radius
    assert reached >= 48

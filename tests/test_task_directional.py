"""Directional control: Twist -> moving goal, velocity/heading rewards on constructed states."""

import numpy as np
import pytest

from kinesis_tasks.tasks import DirectionalTask, TaskState, Twist, twist_to_goal
from kinesis_tasks.tasks.directional import DirectionalConfig
from kinesis_tasks.tasks.base import facing_heading

POSE = np.array([[0.0, 0.0, 0.95], [0.0, 0.09, 0.45], [0.0, -0.09, 0.45], [0.0, 0.09, 0.07],
                 [0.0, -0.09, 0.07], [0.15, 0.09, 0.02], [0.15, -0.09, 0.02]])
DT = 1.0 / 30.0


def state(x, y, heading=0.0, time=0.0, vel=(0.0, 0.0)):
    body_vel = np.zeros((7, 3))
    body_vel[0, :2] = vel
    return TaskState(body_pos=POSE + [x, y, 0.0], body_vel=body_vel, heading=heading, time=time)


@pytest.fixture
def task():
    return DirectionalTask(DirectionalConfig(horizon=0.5, k_velocity=2.0, k_heading=2.0, velocity_tolerance=0.3,
                                           reference="point"), dt=DT)


def test_forward_command_in_heading_frame():
    goal = twist_to_goal(np.array([1.0, 2.0, 0.95]), np.pi / 2, Twist(1.0, 0.0, 0.0), DT, horizon=0.5)
    np.testing.assert_allclose(goal.velocity, [0.0, 1.0], atol=1e-12)  # facing +y
    np.testing.assert_allclose(goal.point, [1.0, 2.5, 0.0], atol=1e-12)
    assert goal.heading == pytest.approx(np.pi / 2)


def test_sideways_and_turning_command():
    # linear.y = 0.4 (left), angular.z = 0.6 rad/s over 0.5 s: heading 0 -> 0.3 rad, then left of that
    goal = twist_to_goal(np.zeros(3), 0.0, Twist(0.0, 0.4, 0.6), 0.5, horizon=2.0)
    assert goal.heading == pytest.approx(0.3)
    np.testing.assert_allclose(goal.velocity, [-0.4 * np.sin(0.3), 0.4 * np.cos(0.3)])
    np.testing.assert_allclose(goal.point[:2], 2.0 * goal.velocity)


def test_heading_wraps_and_limits_clip():
    goal = twist_to_goal(np.zeros(2), 3.1, Twist(3.0, 4.0, 10.0), 0.1, max_speed=1.0, max_turn_rate=1.0)
    assert goal.heading == pytest.approx(3.2 - 2 * np.pi)
    assert np.linalg.norm(goal.velocity) == pytest.approx(1.0)


def test_zero_command_means_stop(task):
    s = state(2.0, -1.0, heading=0.7)
    ref_pos, ref_vel = task.reference(s, Twist())
    np.testing.assert_allclose(ref_pos, s.body_pos)
    np.testing.assert_array_equal(ref_vel, 0.0)


def test_reference_puts_root_ahead_by_speed_times_horizon(task):
    s = state(0.0, 0.0, heading=0.0)
    ref_pos, ref_vel = task.reference(s, Twist(1.2, 0.0, 0.0))
    np.testing.assert_allclose(ref_pos[0], [0.6, 0.0, 0.95])
    np.testing.assert_allclose(ref_vel[0], [1.2, 0.0, 0.0])
    np.testing.assert_array_equal(ref_pos[1:], s.body_pos[1:])


def test_velocity_and_heading_rewards(task):
    twist = Twist(1.0, 0.0, 0.3)
    previous = state(0.0, 0.0, heading=0.0, time=0.0)
    # Moved 0.03 m along x in 1/30 s (0.9 m/s) and turned 0.005 rad instead of 0.01 rad.
    commanded = np.array([np.cos(0.3 * DT), np.sin(0.3 * DT)])
    now = state(0.03, 0.0, heading=0.005, time=DT)
    terms = task.reward(previous, now, twist)
    assert terms["velocity"] == pytest.approx(np.exp(-2.0 * np.sum(np.square([0.9, 0.0] - commanded))))
    assert terms["heading"] == pytest.approx(np.exp(-2.0 * 0.005 ** 2))
    perfect = task.reward(previous, state(*(commanded * DT), heading=0.3 * DT, time=DT), twist)
    assert perfect["velocity"] == pytest.approx(1.0) and perfect["heading"] == pytest.approx(1.0)


def test_success_is_velocity_within_tolerance(task):
    assert task.success(state(0, 0, heading=np.pi, vel=(-1.0, 0.1)), Twist(1.0, 0.0, 0.0))
    assert not task.success(state(0, 0, heading=0.0, vel=(0.5, 0.0)), Twist(1.0, 0.0, 0.0))
    assert not task.done(state(0, 0, time=10.0), Twist(1.0))


def test_twist_from_message_shape_and_facing_heading():
    class Vector:
        def __init__(self, x, y, z):
            self.x, self.y, self.z = x, y, z

    class Msg:
        linear, angular = Vector(0.5, -0.2, 9.0), Vector(1.0, 2.0, 0.4)

    assert Twist.from_msg(Msg()) == Twist(0.5, -0.2, 0.4)
    # The MyoLegs root faces its local -y: a yaw of +90 deg about z faces +x.
    quats = np.array([[np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)], [1.0, 0, 0, 0]])
    np.testing.assert_allclose(facing_heading(quats), [0.0, -np.pi / 2], atol=1e-12)
    with pytest.raises(ValueError, match="dt"):
        twist_to_goal(np.zeros(3), 0.0, Twist(1.0), 0.0)


def test_teleop_keymap_drives_a_twist_within_limits():
    from kinesis import teleop

    config = teleop.TeleopConfig.load(teleop.DEFAULT_CONFIG)
    command = teleop.Command()
    for chars in ["8", "8", "\x1b[A", "4", "\x1b[D", "9"]:  # numpad 8 twice, up arrow, numpad 4, left arrow, numpad 9
        command = teleop.apply(command, config.keys[teleop.key_name(chars)], config)
    assert command == teleop.Command(linear_x=0.3, linear_y=-0.1, angular_z=0.2)
    for _ in range(40):
        command = teleop.apply(command, config.keys["w"], config)
    assert command.linear_x == config.max_linear == 2.0
    assert teleop.apply(command, config.keys["5"], config) == teleop.Command()
    goal = twist_to_goal(np.zeros(3), 0.0, Twist(command.linear_x, command.linear_y, command.angular_z), DT, horizon=0.5)
    assert goal.point[0] == pytest.approx(1.0, abs=1e-3)  # 2 m/s * 0.5 s ahead


def test_state_velocities_are_those_of_the_body_origins():
    """A root spinning in place with a known linear velocity: TaskState reads the free joint's linear
    velocity (the frame origin's), not the sensor's centre-of-mass value."""
    import mujoco

    from kinesis_tasks import observations
    from kinesis_tasks.embodiment import load_embodiment
    from kinesis_tasks.tasks import state_from_data

    model = load_embodiment("legs")
    data = mujoco.MjData(model)
    data.qvel[:6] = [0.4, -0.2, 0.0, 1.5, -2.0, 3.0]  # free joint: world linear, local angular velocity
    mujoco.mj_forward(model, data)
    layout = observations.body_layout(model)
    raw = observations.body_state(layout, data.xpos, data.xquat, data.qpos, data.sensordata).linvel[layout.tracked[0]]
    root = state_from_data(layout, data).body_vel[0]
    np.testing.assert_allclose(root, [0.4, -0.2, 0.0], atol=1e-9)
    assert np.linalg.norm(raw - root) > 0.5  # the sensor alone would add w x (COM offset of ~1 m)

"""The directional policy driven over ROS (issue 14, end to end): a /cmd_vel turn makes the body walk a
left-hand arc.

sim_node (legs, lockstep) + policy_node (task directional, its bundled policy: no checkpoint parameter, speed
0: standing) run as processes on a private domain. With the simulation paused, the twist (1.2 m/s forward,
0.3 rad/s to the left) arrives on /cmd_vel; the simulation is reset to its standing start and resumed
(``TaskClient.goal_from_standing``). After 6 s of simulated time the test checks, on the simulation's own
state, that the pelvis is still up, that the body walked forward (the start clip takes ~1.5 s, then 1.2 m/s)
and that its facing turned left, by about the commanded rate over the time it walked.
"""

import numpy as np
import pytest
from geometry_msgs.msg import Twist

from kinesis_tasks.tasks.base import wrap_angle
from task_over_ros import TaskClient
from test_policy_node import POLICY, SIM, running_nodes
from test_reach_over_ros import COMMON, LOCKSTEP_SIM

pytestmark = pytest.mark.ros
WALK_S = 6.0  # simulated seconds after the reset


def facing(qpos) -> float:
    """Facing heading (rad) of the free joint's quaternion (w, x, y, z): MyoLegs faces its pelvis' -y axis."""
    w, x, y, z = qpos[3:7]
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))) - np.pi / 2


def test_a_cmd_vel_turn_makes_the_directional_policy_walk_a_left_arc(tmp_path):
    with running_nodes(tmp_path, TaskClient) as (client, start):
        start(SIM, LOCKSTEP_SIM)
        start(POLICY, [*COMMON, "task:=directional", "speed:=0.0"])
        twist = Twist()
        twist.linear.x, twist.angular.z = 1.2, 0.3
        client.goal_from_standing("/cmd_vel", Twist, twist)
        client.spin_until(lambda: client.after_reset is not None, "the reset state")
        standing = np.array(client.after_reset.qpos)
        client.spin_until(lambda: client.state.sim_time >= WALK_S, f"{WALK_S} s of walking", timeout=120.0)
        end = np.array(client.state.qpos)
    heading = facing(standing)
    forward = np.array([np.cos(heading), np.sin(heading)])
    travel = end[:2] - standing[:2]
    assert end[2] > 0.7  # still up (the pelvis; a fall ends below 0.5 m)
    assert travel @ forward > 3.0  # forward: ~4.5 s at up to 1.2 m/s
    assert forward[0] * travel[1] - forward[1] * travel[0] > 0.5  # the arc bends to the left
    assert 0.5 < wrap_angle(facing(end) - heading) < 2.5  # turned left: 0.3 rad/s over the ~4.5 s walked

"""The reach policy driven over ROS (issue 14, end to end): a /clicked_point makes the body walk to it.

sim_node (legs, lockstep) + policy_node (task target_reach, its bundled policy: no checkpoint parameter) run
as processes on a private domain. With the simulation paused, a point 2 m ahead arrives on /clicked_point;
the simulation is then reset to its standing start and resumed (``TaskClient.goal_from_standing``). The test
follows TrackingStatus until the reach task reports success and checks, on the simulation's own state, that
the pelvis is still up and that its path came to within the success radius of the clicked point, 2 m from where
it stood.
"""

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped

from kinesis_tasks.tasks.reach import ReachConfig
from task_over_ros import TaskClient
from test_policy_node import POLICY, SIM, running_nodes

pytestmark = pytest.mark.ros
GOAL = (0.0, -2.0)  # 2 m ahead: the body starts at the origin facing -y
COMMON = ["embodiment:=legs", "control_mode:=target_length"]
LOCKSTEP_SIM = [*COMMON, "clock:=lockstep", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"]


def test_a_clicked_point_makes_the_reach_policy_walk_to_it(tmp_path):
    with running_nodes(tmp_path, TaskClient) as (client, start):
        start(SIM, LOCKSTEP_SIM)
        start(POLICY, [*COMMON, "task:=target_reach", "target:=[0.0, 0.0]"])  # stand where it is
        msg = PointStamped()
        msg.header.frame_id = "world"
        msg.point.x, msg.point.y = GOAL
        seen = client.goal_from_standing("/clicked_point", PointStamped, msg)
        client.spin_until(lambda: any(s.task == "reach" and s.success for s in client.tracking[seen:]),
                          "the body to reach the clicked point", timeout=120.0)
        root, path = np.array(client.state.qpos[:3]), np.array(client.trail)
    assert root[2] > 0.7  # still up (the pelvis; a fall ends below 0.5 m)
    # On its path, not where it is once the client reads the success: by then the body may have walked on (with
    # the machine loaded it was 0.65 m past the point).
    assert np.linalg.norm(path[:, :2] - GOAL, axis=1).min() < ReachConfig.from_config().success_radius + 0.1

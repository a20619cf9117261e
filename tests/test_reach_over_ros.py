"""The reach policy driven over ROS (issue 14, end to end): a /clicked_point makes the body walk to it.

sim_node (legs, lockstep) + policy_node (task target_reach, its bundled policy: no checkpoint parameter) run
as processes on a private domain. With the simulation paused, a point 2 m ahead arrives on /clicked_point;
the simulation is then reset to its standing start and resumed (the reach policy does not yet stand for
long: waiting for the click, it fell within ~15 s). The test follows TrackingStatus until the reach task
reports success and checks, on the simulation's own state, that the pelvis is still up and came to within
the success radius of the clicked point, 2 m from where it stood.
"""

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped
from std_srvs.srv import SetBool

from kinesis_msgs.msg import SimState, TrackingStatus
from kinesis_msgs.srv import Reset
from kinesis_sim_node.messages import SIM_STATE_QOS
from kinesis_tasks.tasks.reach import ReachConfig
from ros_client import RosTestClient
from test_policy_node import POLICY, SIM, TIMEOUT_S, running_nodes

pytestmark = pytest.mark.ros
GOAL = (0.0, -2.0)  # 2 m ahead: the body starts at the origin facing -y


class ReachClient(RosTestClient):
    """Records TrackingStatus and the latest SimState (one kept: a client taking every state falls behind)."""

    def __init__(self, domain_id: int, processes: dict) -> None:
        super().__init__("reach_test_client", domain_id, processes, TIMEOUT_S)
        self.tracking: list[TrackingStatus] = []
        self.state: SimState | None = None
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.tracking.append, 1000)
        self.node.create_subscription(SimState, "/kinesis/sim_state", self.on_state, SIM_STATE_QOS)

    def on_state(self, msg: SimState) -> None:
        self.state = msg


def test_a_clicked_point_makes_the_reach_policy_walk_to_it(tmp_path):
    with running_nodes(tmp_path, ReachClient) as (client, start):
        common = ["embodiment:=legs", "control_mode:=target_length"]
        start(SIM, [*common, "clock:=lockstep", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"])
        start(POLICY, [*common, "task:=target_reach", "target:=[0.0, 0.0]"])  # stand where it is
        client.spin_until(lambda: client.tracking and client.state is not None, "the policy to run")
        click = client.node.create_publisher(PointStamped, "/clicked_point", 10)
        client.spin_until(lambda: click.get_subscription_count() > 0, "the policy's /clicked_point", timeout=60.0)
        assert client.call(SetBool, "/sim_node/pause", SetBool.Request(data=True)).success
        msg = PointStamped()
        msg.header.frame_id = "world"
        msg.point.x, msg.point.y = GOAL
        click.publish(msg)
        client.spin_for(1.0)  # delivered while paused
        assert client.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1)).success
        seen = len(client.tracking)
        assert client.call(SetBool, "/sim_node/pause", SetBool.Request(data=False)).success
        client.spin_until(lambda: any(s.task == "reach" and s.success for s in client.tracking[seen:]),
                          "the body to reach the clicked point", timeout=120.0)
        root = np.array(client.state.qpos[:3])
    assert root[2] > 0.7  # still up (the pelvis; a fall ends below 0.5 m)
    assert np.linalg.norm(root[:2] - GOAL) < ReachConfig.from_config().success_radius + 0.1

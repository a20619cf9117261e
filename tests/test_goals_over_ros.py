"""Goals over ROS: /clicked_point, /cmd_vel, /kick_target and /text_command each change what policy_node publishes.

sim_node (lockstep) + policy_node (v1 model, conformance Lattice checkpoint) + text_to_motion_node run as
processes on a private domain; after each goal the tracking task, the published reference and the
commands must differ from before.
"""

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped, Twist
from std_msgs.msg import String

from test_policy_node import CHECKPOINT, MOTION, POLICY, SIM, V1_MODEL, running_nodes

pytestmark = pytest.mark.ros
TEXT = "kinesis_policy_node.text_to_motion_node"


def point(x: float, y: float, z: float = 0.0) -> PointStamped:
    msg = PointStamped()
    msg.header.frame_id = "world"
    msg.point.x, msg.point.y, msg.point.z = x, y, z
    return msg


def test_each_goal_changes_what_the_policy_publishes(tmp_path):
    common = [f"embodiment:={V1_MODEL}", "control_mode:=target_length"]
    with running_nodes(tmp_path) as (client, start):
        start(SIM, [*common, "clock:=lockstep", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"])
        start(POLICY, [*common, "task:=imitation", f"checkpoint:={CHECKPOINT}", f"motion:={MOTION}"])
        start(TEXT, ["motion_library:=default"])
        client.spin_until(lambda: client.tracking and client.references, "the policy to run")
        assert client.tracking[-1].task == "imitation" and client.references[-1].name == MOTION
        pubs = {topic: client.node.create_publisher(kind, topic, 10) for topic, kind in
                (("/clicked_point", PointStamped), ("/cmd_vel", Twist), ("/kick_target", PointStamped), ("/text_command", String))}
        twist = Twist()
        twist.linear.x, twist.angular.z = 1.0, 0.5
        goals = [("/clicked_point", point(3.0, 1.0), "reach", "reach_goal"),
                 ("/cmd_vel", twist, "directional", "directional_goal"),
                 ("/kick_target", point(12.0, 0.5, 0.5), "kick", "kick_goal"),
                 ("/text_command", String(data="walk forward slowly"), "imitation", None)]
        for topic, msg, task, reference in goals:
            client.spin_until(lambda: pubs[topic].get_subscription_count() > 0, f"a subscriber of {topic}", timeout=60.0)
            before_task, before_ref = client.tracking[-1].task, client.references[-1].name
            before_values = np.array(client.command_log[-1].values)
            pubs[topic].publish(msg)
            client.spin_until(lambda: client.tracking[-1].task == task and client.references[-1].name != before_ref,
                              f"the policy to take the goal on {topic}", timeout=60.0)
            assert (before_task, before_ref) != (task, client.references[-1].name)
            if reference is not None:
                assert client.references[-1].name == reference
            else:  # the text node's composed motion, tracked from its first frame
                assert client.references[-1].text == "walk forward slowly"
                client.spin_until(lambda: client.tracking[-1].motion == client.references[-1].name, "tracking the text motion")
            # The newest command, by arrival: a motion start resets the simulation, so state steps restart at 0.
            received = len(client.command_log)
            client.spin_until(lambda: len(client.command_log) > received, "a command for the new goal")
            assert not np.array_equal(np.array(client.command_log[-1].values), before_values)
        # The policy never tracks its own references (it publishes them for the viewers; a late own message
        # taken as a new goal once made it alternate between two of them): it stays on the text motion.
        text_motion, seen = client.references[-1].name, len(client.tracking)
        client.spin_for(1.0)
        assert {(m.task, m.motion) for m in client.tracking[seen:]} == {("imitation", text_motion)}

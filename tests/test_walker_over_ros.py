"""The bundled walker driven over ROS (issue 14, end to end): a prompt on /text_command makes the body walk.

sim_node (legs, lockstep) + policy_node (task text_to_motion, the bundled checkpoint: no checkpoint
parameter) + text_to_motion_node run as processes on a private domain. After the prompt the policy tracks
the generated motion from its initial state (the policy node resets the lockstep sim to it): the test follows
TrackingStatus to the motion's last frame and checks that no step terminated and the tracked bodies stayed
within 0.5 m of a reference that walks 5.7 m forward, so the body walked along, upright.
"""

import numpy as np
import pytest
from std_msgs.msg import String

from kinesis_tasks.tasks.text_to_motion import TextToMotion
from kinesis_msgs.msg import ReferenceMotion, TrackingStatus
from kinesis_sim_node.messages import SIM_STATE_QOS
from ros_client import TIMEOUT_S, RosTestClient
from test_policy_node import POLICY, SIM, running_nodes, split_attempts

pytestmark = pytest.mark.ros
TEXT = "kinesis_policy_node.text_to_motion_node"
PROMPT = "walk forward"


class StatusClient(RosTestClient):
    """Records TrackingStatus and references only: a client that also takes every SimState falls behind a
    lockstep simulation under load."""

    def __init__(self, domain_id: int, processes: dict) -> None:
        super().__init__("walker_test_client", domain_id, processes, TIMEOUT_S)
        self.tracking: list[TrackingStatus] = []
        self.references: list[ReferenceMotion] = []
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.tracking.append, 1000)
        self.node.create_subscription(ReferenceMotion, "/kinesis/reference_motion", self.references.append, SIM_STATE_QOS)


def test_text_prompt_makes_the_bundled_walker_walk(tmp_path):
    reference = TextToMotion.from_source("default")(PROMPT).motion
    frames = reference.num_frames
    with running_nodes(tmp_path, StatusClient) as (client, start):
        common = ["embodiment:=legs", "control_mode:=target_length"]
        start(SIM, [*common, "clock:=lockstep", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"])
        start(POLICY, [*common, "task:=text_to_motion"])
        start(TEXT, ["motion_library:=default"])
        client.spin_until(lambda: client.tracking, "the policy to run")
        prompt = client.node.create_publisher(String, "/text_command", 10)
        client.spin_until(lambda: prompt.get_subscription_count() > 0, "the text node", timeout=60.0)
        prompt.publish(String(data=PROMPT))
        client.spin_until(lambda: client.references and client.references[-1].text == PROMPT, "the text motion")
        name = client.references[-1].name

        def first_attempt() -> list:
            """TrackingStatus of the first attempt at the text motion (frames rise until it ends or restarts)."""
            statuses = [s for s in client.tracking if s.motion == name]
            return next(iter(split_attempts(statuses, lambda s: s.frame)), [])

        client.spin_until(lambda: any(s.terminated or s.frame >= frames - 1 for s in first_attempt()),
                          "the walk to end", timeout=120.0)
        walk = first_attempt()
        assert walk[0].frame <= 1 and walk[-1].frame == frames - 1  # from the motion's start to its end
        assert not any(s.terminated for s in walk) and all(s.task == "imitation" for s in walk)
        # Within 0.5 m of a reference that walks 5.7 m forward at every frame: the body walked along, upright.
        assert max(s.mpjpe_mm for s in walk) < 500.0
    travel = reference.keypoints[-1, 0, :2] - reference.keypoints[0, 0, :2]
    assert np.linalg.norm(travel) > 5.0

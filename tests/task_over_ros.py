"""Shared by the task end-to-end tests: a client that follows a lockstep simulation, and a goal given while
the simulation is paused, then a reset to the standing start and a resume (the task policies do not yet stand
for long: waiting for the goal, they fell within ~15 s)."""

from __future__ import annotations

import numpy as np
from std_srvs.srv import SetBool

from kinesis_msgs.msg import SimState, TrackingStatus
from kinesis_msgs.srv import Reset
from kinesis_sim_node.messages import SIM_STATE_QOS
from ros_client import TIMEOUT_S, RosTestClient


class TaskClient(RosTestClient):
    """Records TrackingStatus, the latest SimState (one kept: a client taking every state falls behind), the
    first state after the simulation went back in time (a reset) and the root positions [3] of the states it
    received since then (``trail``: the body's path, sampled; the simulation runs on while the client reads)."""

    def __init__(self, domain_id: int, processes: dict) -> None:
        super().__init__("task_test_client", domain_id, processes, TIMEOUT_S)
        self.tracking: list[TrackingStatus] = []
        self.state: SimState | None = None
        self.after_reset: SimState | None = None
        self.trail: list[np.ndarray] = []
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.tracking.append, 1000)
        self.node.create_subscription(SimState, "/kinesis/sim_state", self.on_state, SIM_STATE_QOS)

    def on_state(self, msg: SimState) -> None:
        if self.state is not None and msg.sim_time < self.state.sim_time:
            self.after_reset, self.trail = msg, []
        self.trail.append(np.array(msg.qpos[:3]))
        self.state = msg

    def goal_from_standing(self, topic: str, msg_type, msg) -> int:
        """Publishes ``msg`` on ``topic`` to the running policy with the simulation paused, resets it to the
        standing start and resumes it; returns the index of the first TrackingStatus after the reset."""
        # A step first: the reset is seen as simulated time going back, which it cannot do from time 0 (paused
        # before the policy's first command was applied, as happened with the machine loaded, no reset was seen).
        self.spin_until(lambda: self.tracking and self.state is not None and self.state.sim_time > 0, "the policy to run")
        publisher = self.node.create_publisher(msg_type, topic, 10)
        self.spin_until(lambda: publisher.get_subscription_count() > 0, f"the policy's {topic}", timeout=60.0)
        assert self.call(SetBool, "/sim_node/pause", SetBool.Request(data=True)).success
        publisher.publish(msg)
        self.spin_for(1.0)  # delivered while paused
        assert self.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1)).success
        seen = len(self.tracking)
        assert self.call(SetBool, "/sim_node/pause", SetBool.Request(data=False)).success
        return seen

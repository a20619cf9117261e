"""Motion starts over ROS: the policy node resets the simulation to a motion's initial state.

``SimReset(node, sim_node)`` calls the simulation node's ``<sim_node>/reset`` service (kinesis_msgs/Reset)
without ever blocking a callback: the sim and policy nodes may share one executor (a component container),
so a callback that waited for the response would wait for itself. Instead, a motion start is *pending*:

1. ``begin(qpos, qvel, motion, answer)`` at the state where the node decides to start a motion (the first
   state it sees, or the one that ended the last attempt). The node does not answer that state; in lockstep
   the simulation waits for it.
2. Once the service is there, the sim's ``clock`` parameter is read (``<sim_node>/get_parameters``): resets
   are used only with the lockstep clock, where the simulation does not move while the node is silent.
3. The reset request goes out (``call_async``); the sim resets, publishes state 0, then answers.
4. ``accepts(state)``: the first state with step 0 after the request is the motion's first state; the node
   answers it and every state after as usual.

When resets cannot be used (no service within ``SERVICE_WAIT_S``, a realtime clock, a refused reset or no
response within ``RESPONSE_TIMEOUT_S``) it is logged once (a warning, except for the realtime clock), resets stay off for the node's life, and
``answer()`` answers the state that was held back, so the run goes on with motions starting where the body
is. ``poll()`` advances all this; the node calls it from a timer and whenever a state comes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rcl_interfaces.msg import ParameterType
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node
from rclpy.task import Future

from kinesis_msgs.srv import Reset

#: Seconds to wait at the first motion start for the sim node's reset service to appear.
SERVICE_WAIT_S = 3.0
#: Seconds to wait for the clock parameter or a reset response before giving resets up.
RESPONSE_TIMEOUT_S = 5.0


@dataclass
class _Pending:
    """A motion start waiting for the simulation's reset."""

    request: Reset.Request
    answer: Callable[[], None]
    since: float
    clock: Future | None = None
    reset: Future | None = None
    sent: float = 0.0


class SimReset:
    """Resets the simulation node ``sim_node`` (a node name, resolved like a topic name; empty: never) at motion
    starts.

    ``enabled``: None until known, then True (resets in use) or False (off for good, with the reason logged).
    ``sim_node``: the fully qualified node name ("" when empty).
    """

    def __init__(self, node: Node, sim_node: str) -> None:
        self.node = node
        self.enabled: bool | None = None
        self.pending: _Pending | None = None
        sim_node = sim_node.rstrip("/")
        if not sim_node:
            self.enabled, self.sim_node = False, ""
            node.get_logger().info("parameter sim_node is empty: motions start where the body is, without resets")
            return
        self.reset_client = node.create_client(Reset, f"{sim_node}/reset")
        self.parameter_client = node.create_client(GetParameters, f"{sim_node}/get_parameters")
        self.service = self.reset_client.service_name
        self.sim_node = self.service.rsplit("/", 1)[0]  # fully qualified

    def begin(self, qpos: np.ndarray, qvel: np.ndarray, motion: str, answer: Callable[[], None]) -> bool:
        """Start a motion with a reset to (qpos [nq], qvel [nv]); False when resets are off (the caller answers
        the current state itself). ``answer`` answers the held-back state if resets turn out unusable."""
        if self.enabled is False:
            return False
        request = Reset.Request(motion=motion, qpos=qpos.astype(np.float64).tolist(), seed=-1,
                                qvel=qvel.astype(np.float64).tolist())
        self.pending = _Pending(request, answer, since=time.monotonic())
        self.poll()
        return True

    def accepts(self, step: int) -> bool:
        """Whether the state of step ``step`` is the first one after the pending reset (and the start is over)."""
        pending = self.pending
        if pending is None:
            return True
        if pending.reset is not None and step == 0:
            self.pending = None
            return True
        self.poll()
        return False

    def poll(self) -> None:
        """Advance the pending motion start: find the service, check the clock, send the reset, check the answer."""
        pending, now = self.pending, time.monotonic()
        if pending is None:
            return
        if self.enabled is None:
            if pending.clock is None:
                if self.reset_client.service_is_ready() and self.parameter_client.service_is_ready():
                    pending.clock, pending.sent = self.parameter_client.call_async(GetParameters.Request(names=["clock"])), now
                elif now - pending.since > SERVICE_WAIT_S:
                    self.give_up(f"no service {self.service} after {SERVICE_WAIT_S:g} s")
                return
            if not pending.clock.done():
                if now - pending.sent > RESPONSE_TIMEOUT_S:
                    self.give_up(f"no answer from {self.parameter_client.service_name}")
                return
            values = pending.clock.result().values if pending.clock.result() is not None else []
            clock = values[0].string_value if values and values[0].type == ParameterType.PARAMETER_STRING else ""
            if clock not in ("", "lockstep"):
                self.give_up(f"the simulation runs the {clock} clock", warn=False)
                return
            self.enabled = True
            self.node.get_logger().info(f"each motion starts from its initial state: resetting the simulation "
                                        f"through {self.service}")
        if pending.reset is None:
            pending.reset, pending.sent = self.reset_client.call_async(pending.request), now
        elif pending.reset.done():
            response = pending.reset.result()
            if response is None or not response.success:
                self.give_up(f"the reset was refused ({response.message if response is not None else 'no response'})")
        elif now - pending.sent > RESPONSE_TIMEOUT_S:
            self.give_up(f"no response from {self.service} within {RESPONSE_TIMEOUT_S:g} s")

    def give_up(self, reason: str, *, warn: bool = True) -> None:
        """Resets off for good (logged: a warning, or information for a realtime sim); the held-back state is answered."""
        self.enabled, pending, self.pending = False, self.pending, None
        log = self.node.get_logger().warning if warn else self.node.get_logger().info
        log(f"{reason}: motions start where the body is, without resetting the simulation")
        if pending is not None:
            pending.answer()

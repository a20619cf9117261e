"""policy_node: the imitation policy answering every /kinesis/sim_state with a /kinesis/muscle_command.

Run: ``python -m kinesis_policy_node.policy_node [--ros-args -p checkpoint:=model.pth -p task:=reach ...]``.
Parameters and their defaults: ``config/policy_node.yaml``.

Each SimState (step k) is turned into the policy input by ``tracking.GoalTracker`` with the same
kinesis_tasks functions as offline training, the checkpoint's mean action (``kinesis_training.load_policy``)
is published as the MuscleCommand answering step k, and /kinesis/tracking gets the step's metrics (when
someone subscribes it).
The ``checkpoint`` parameter resolves as everywhere (``kinesis_tasks.bundled.resolve_policy``): empty (the
default), ``bundled`` or ``default`` is the bundled policy of the node's embodiment and task (for ``legs``:
the trained walker, and for reach and directional their own bundles, which track the references their goals
give); ``hold-pose`` or
``zero-action`` runs that fallback controller (``kinesis_tasks.controllers.fallback_action``); a path or
kinesis:NAME a checkpoint file. Left empty for an embodiment without a bundled policy (``legs_back``: the
kick), the node runs the hold-pose fallback and says so once.
The reference is published on /kinesis/reference_motion when it changes: the motion when it starts, a
two-frame motion (now, one step later) at every state for the downstream tasks. Kick: the ball comes from
the state when the simulation runs the soccer scene (``sim_node`` ``scene: soccer``), else it lies still on
the penalty spot (``ball_radius`` high). Goals: /kinesis/reference_motion (track that motion from its first frame),
/goal_point and /clicked_point (reach), /cmd_vel (directional), /kick_target (kick); a goal switches to
its task. Unusable messages are logged and counted in the parameter ``rejected.<topic>``.

Motions of the playlist run as in ``kinesis eval``: each attempt starts from the motion's initial state
(``GoalTracker.initial_state``, the function ImitationEnv uses) at frame 0 and ends when the mean tracked-body
distance exceeds 0.5 m (TrackingStatus ``terminated``, not ``success``) or at the motion's last frame; then
the next motion starts. At each start (the first state the node sees, and the state that ended an attempt)
the node resets the simulation through the sim node's ``~/reset`` service (parameter ``sim_node``,
``sim_reset.SimReset``): it does not answer that state, and answers the sim's state 0 after the reset.
This needs the lockstep clock; otherwise (or without the service, or with ``sim_node`` empty) motions
start where the body is. A motion received on /kinesis/reference_motion (a text prompt's, say) starts the
same way, with a reset to its initial state at the next state, and starts over when it ends (without the
reset it would start wherever the body is, usually meters from the reference, and terminate at once). The
state that ended an attempt is the last one reported for that motion (``finished``).

Commands: each command is published once, when the simulation's subscription is matched: a command
published before would be lost, so until the command publisher has matched every subscription of
/kinesis/muscle_command the graph lists, the sim node's among them (at start-up), the command waits
(checked every TIMER_S; after COMMAND_WAIT_S it goes out anyway, and from then on without waiting). It is
never published again: a lockstep sim that already applied it would reject the copy as stale (the node once
resent any command left without a new state for 0.5 s, and a control step that took longer, such as the
first one while numba compiles, drew a "rejected muscle command (stale ...)" warning).
"""

from __future__ import annotations

import time
from collections import deque
from collections import Counter
from functools import partial

import numpy as np
import rclpy
from geometry_msgs.msg import PointStamped, Twist
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from kinesis_msgs.msg import MuscleCommand, ReferenceMotion, SimState, TrackingStatus
from kinesis_policy_node import goals
from kinesis_policy_node.sim_reset import SimReset
from kinesis_policy_node.tracking import GoalTracker, canonical_task
from kinesis_sim_node.messages import SIM_STATE_QOS
from kinesis_tasks.config import load_config
from kinesis_tasks.bundled import PolicyChoice, resolve_policy
from kinesis_tasks.controllers import fallback_action
from kinesis_tasks.motions import load_library
from kinesis_tasks.tasks import base
from kinesis_sim_node.spin import spin_node

REFERENCE = "/kinesis/reference_motion"
OWN_REFERENCES_KEPT = 16  # own references remembered, to recognise them when they come back on REFERENCE
TIMER_S = 0.05  # motion starts waiting for the simulation's reset, a command waiting for the sim's subscription
COMMAND_WAIT_S = 3.0  # the longest a command waits for the sim node's subscription
TRACKING_DEPTH = 1000  # /kinesis/tracking history (reliable): how far a slow reader may lag without losing statuses
GOAL_TOPICS = {"/goal_point": (PointStamped, "reach", goals.point_from_msg),
               "/clicked_point": (PointStamped, "reach", goals.point_from_msg),
               "/cmd_vel": (Twist, "directional", goals.twist_from_msg),
               "/kick_target": (PointStamped, "kick", goals.point_from_msg)}


class PolicyNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("policy_node", **kwargs)
        numeric = ParameterDescriptor(dynamic_typing=True)
        p = {name: self.declare_parameter(name, value, numeric if isinstance(value, float) else ParameterDescriptor()).value
             for name, value in load_config("policy_node")["/**"]["ros__parameters"].items()}
        self.embodiment, self.mode = str(p["embodiment"]), str(p["control_mode"])
        task = canonical_task(str(p["task"]))
        library = load_library(p["motion_library"]) if p["motion_library"] else {}
        if p["motion"] and p["motion"] not in library:
            raise ValueError(f"parameter motion: no motion {p['motion']!r} in library {p['motion_library']!r}")
        playlist = [library[p["motion"]]] if p["motion"] else list(library.values())
        spot = base.task_config("soccer")["penalty_spot"]
        initial = {"reach": goal_point(p["target"], 0.0), "kick": goal_point(p["kick_target"], 0.5),
                   "directional": goals.Twist(float(p["speed"]) * np.cos(p["heading"]), float(p["speed"]) * np.sin(p["heading"]))}
        self.tracker = GoalTracker(self.embodiment, task, playlist, initial,
                                   ball=np.array([spot[0], spot[1], float(p["ball_radius"])]))
        model = self.tracker.model
        self.policy, self.fallback = self.load_policy(str(p["checkpoint"]), str(p["weights"]), model, task)
        self.rejected: Counter[str] = Counter()
        self.published_references: deque[tuple[str, int, int]] = deque(maxlen=OWN_REFERENCES_KEPT)
        self.started = False  # a state was handled (the first one starts the first motion)
        self.start_pending = False  # a motion came on /kinesis/reference_motion: the next state starts it
        self.sim_reset = SimReset(self, str(p["sim_node"]))
        self.waiting: tuple[float, MuscleCommand] | None = None  # (since, command) until the sim listens
        self.sim_listening, self.listening_count, self.wait_for_sim = False, 0, True

        self.command_pub = self.create_publisher(MuscleCommand, "/kinesis/muscle_command", 10)
        # One status per control step: a reader (the demo's table) that falls behind a lockstep simulation for a
        # moment must not lose the last steps of a motion.
        self.tracking_pub = self.create_publisher(TrackingStatus, "/kinesis/tracking", TRACKING_DEPTH)
        self.reference_pub = self.create_publisher(ReferenceMotion, REFERENCE, SIM_STATE_QOS)
        self.create_subscription(SimState, "/kinesis/sim_state", self.on_state, SIM_STATE_QOS)
        self.create_subscription(ReferenceMotion, REFERENCE, self.on_reference, 10)
        for topic, (msg_type, goal_task, convert) in GOAL_TOPICS.items():
            self.create_subscription(msg_type, topic, partial(self.on_goal, topic, goal_task, convert), 10)
        self.create_timer(TIMER_S, self.on_timer)
        self.get_logger().info(f"ready: task {task}, {self.embodiment} ({model.nu} muscles), {self.mode} control, "
                               f"{len(playlist)} motion(s), observation size {self.tracker.layout.full_size}")

    def load_policy(self, checkpoint: str, weights: str, model, task: str):
        """(loaded policy, None), or (None, the fallback's constant action) for a fallback controller."""
        if weights not in ("float32", "float16"):  # checked here too: a fallback never loads torch
            raise ValueError(f"parameter weights must be float32 or float16, got {weights!r}")
        choice = policy_choice(checkpoint, self.embodiment, self.mode, task)
        if choice.checkpoint is None:
            self.get_logger().warning(f"not a trained policy: running the {choice.description}")
            return None, fallback_action(choice.fallback, model, self.mode)
        from kinesis_training import load_policy

        policy = load_policy(choice.checkpoint, obs_dim=self.tracker.layout.full_size, action_dim=model.nu,
                             weights=weights)
        self.get_logger().info(f"policy: {choice.description}: {policy.kind}, obs {policy.obs_dim}, "
                               f"actions {policy.action_dim}, {weights} weights")
        return policy, None

    def on_state(self, msg: SimState) -> None:
        if msg.embodiment != self.embodiment:
            self.reject("/kinesis/sim_state", f"state of {msg.embodiment!r}, this node controls {self.embodiment!r}")
            return
        if not self.sim_reset.accepts(int(msg.step)):
            return  # a motion start waits for the reset's state 0
        if not self.started:
            self.started = True
            self.start_pending = self.start_pending or self.tracker.in_playlist()
        if self.start_pending:
            self.start_pending = False
            if self.start_motion(lambda: self.on_state(msg)):
                return
        try:
            result = self.tracker.observe(np.asarray(msg.qpos), np.asarray(msg.sensordata), msg.sim_time, int(msg.step),
                                          qvel=np.asarray(msg.qvel))
        except ValueError as error:
            self.reject("/kinesis/sim_state", str(error))
            return
        if self.tracking_pub.get_subscription_count():
            self.tracking_pub.publish(goals.tracking_msg(result, msg.header.stamp))
        answer = partial(self.answer, msg, result.obs)
        if result.finished:  # the attempt is over: the next motion starts from its initial state
            self.tracker.advance()
            if self.start_motion(answer):
                return
        answer()

    def answer(self, msg: SimState, obs: np.ndarray) -> None:
        """Publish the command answering ``msg`` (and the reference when it changed)."""
        action = self.fallback if self.policy is None else self.policy.mean_action(obs)
        command = goals.command_msg(msg, action, embodiment=self.embodiment, mode=self.mode)
        if self.sim_listens():
            self.command_pub.publish(command)
        else:  # (realtime: the newest command waits, since the first one began to)
            self.waiting = (time.monotonic() if self.waiting is None else self.waiting[0], command)
        if self.tracker.take_changed():
            self.publish_reference(msg)

    def start_motion(self, answer) -> bool:
        """Reset the simulation to the initial state of the motion now tracked; False when the current state is
        to be answered instead (resets off, or no initial state)."""
        try:
            qpos, qvel = self.tracker.initial_state()
        except ValueError as error:
            self.get_logger().warning(f"motion {self.tracker.motion.name!r} starts where the body is: {error}",
                                      throttle_duration_sec=1.0)
            return False
        return self.sim_reset.begin(qpos, qvel, self.tracker.motion.name, answer)

    def on_timer(self) -> None:
        self.sim_reset.poll()
        if self.waiting is not None:
            since, command = self.waiting
            if not self.sim_listens() and time.monotonic() - since > COMMAND_WAIT_S:
                self.wait_for_sim = False
                self.get_logger().warning(f"no subscription of {self.sim_reset.sim_node or 'a simulation'} on "
                                          f"{self.command_pub.topic_name} matched after {COMMAND_WAIT_S:g} s: "
                                          "commands go out without waiting for it")
            if not self.wait_for_sim or self.sim_listens():
                self.waiting = None
                self.command_pub.publish(command)

    def sim_listens(self) -> bool:
        """Whether a command published now reaches the simulation: the command publisher has matched every
        subscription the graph lists (the sim node's among them, when ``sim_node`` names one). Once true, it
        stays true while no matched subscription goes away (a sim that restarts is waited for again)."""
        if not self.wait_for_sim:
            return True
        matched = self.command_pub.get_subscription_count()
        if self.sim_listening and matched >= self.listening_count:
            return True
        listed = self.get_subscriptions_info_by_topic(self.command_pub.topic_name)
        sim = self.sim_reset.sim_node
        named = not sim or any(f"{info.node_namespace.rstrip('/')}/{info.node_name}" == sim for info in listed)
        self.sim_listening = named and 0 < len(listed) <= matched
        self.listening_count = matched
        return self.sim_listening

    def publish_reference(self, state: SimState) -> None:
        motion = self.tracker.reference_motion()
        if motion is None:
            if self.tracker.task == "imitation":
                return
            motion = self.tracker.goal_reference_motion()
        msg = goals.motion_msg(motion, state.header.stamp)
        self.published_references.append(reference_key(msg))
        self.reference_pub.publish(msg)

    def on_reference(self, msg: ReferenceMotion) -> None:
        if reference_key(msg) in self.published_references:
            return  # published by this node for the viewers (possibly delivered after newer ones): never tracked
        try:
            motion = goals.motion_from_msg(msg)
            self.tracker.track_motion(motion)
        except ValueError as error:
            self.reject(REFERENCE, str(error))
            return
        self.start_pending = True
        self.get_logger().info(f"tracking reference motion {motion.name!r} ({motion.duration:.1f} s) from its first frame")

    def on_goal(self, topic: str, task: str, convert, msg) -> None:
        try:
            goal = convert(msg)
        except ValueError as error:
            self.reject(topic, str(error))
            return
        if self.tracker.task != task:
            self.get_logger().info(f"goal on {topic}: switching task {self.tracker.task} -> {task}")
        self.tracker.set_goal(task, goal)

    def reject(self, topic: str, reason: str) -> None:
        self.rejected[topic] += 1
        name = f"rejected.{topic.strip('/').replace('/', '.')}"
        if not self.has_parameter(name):
            self.declare_parameter(name, 0, ParameterDescriptor(description="output: unusable messages"))
        self.set_parameters([Parameter(name, value=self.rejected[topic])])
        self.get_logger().warning(f"ignored a message on {topic} ({reason}); {self.rejected[topic]} so far",
                                  throttle_duration_sec=1.0)


def policy_choice(checkpoint: str, embodiment: str, control_mode: str, task: str | None = None) -> PolicyChoice:
    """What the ``checkpoint`` parameter runs for the node's ``task`` (``resolve_policy``: the task's own bundle
    where it has one; empty without a bundle: the hold-pose fallback)."""
    return resolve_policy(checkpoint, embodiment, control_mode=control_mode, unbundled="fallback", task=task)


def reference_key(msg: ReferenceMotion) -> tuple[str, int, int]:
    """Name and stamp of a reference: the stamp is that of the state it was published at, so another node's
    reference does not share both with one of ours."""
    return msg.name, msg.header.stamp.sec, msg.header.stamp.nanosec


def goal_point(values, z: float) -> np.ndarray:
    """[3] point from a parameter [x, y] (at height ``z``) or [x, y, z]."""
    if len(values) not in (2, 3):
        raise ValueError(f"a goal point parameter needs [x, y] or [x, y, z], got {list(values)}")
    return np.array([*values, z][:3], dtype=np.float64)


def main(args: list[str] | None = None) -> int:
    return spin_node(PolicyNode, "policy_node", args)


if __name__ == "__main__":
    raise SystemExit(main())

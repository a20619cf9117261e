"""Visualization node: RViz markers, a Foxglove WebSocket server and MCAP recording.

Run: ``python -m kinesis_sim_node.viz_node --ros-args --params-file config/viz_node.yaml``.
Keeps a kinematic copy of the embodiment (or of its ``scene``, as the sim node's: ``scenes.load_scene``,
e.g. the soccer ball, goal and keeper), poses it from every /kinesis/sim_state and publishes
/kinesis/markers (MarkerArray, frame "world") at ``rate_hz``, when something changed or at least
once a second. With ``foxglove`` it serves ws://127.0.0.1:<port>; with ``record`` it writes every
topic of the stack (``TOPICS``: states, commands, goals, text commands and their feedback; as CDR with
ros2msg schemas) plus the scene (/kinesis/scene, /kinesis/transforms) into one MCAP file, closed
cleanly on SIGINT/SIGTERM. Without a sink only the drawn topics are subscribed.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import foxglove
import mujoco
import numpy as np
import rclpy
from foxglove.channels import FrameTransformsChannel, SceneUpdateChannel
from geometry_msgs.msg import PointStamped, Twist
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from kinesis_msgs.msg import MuscleCommand, MuscleState, ReferenceMotion, SimState, TrackingStatus
from kinesis_sim_node import foxglove_scene, ros_channels, rviz_markers, scenes
from kinesis_tasks.scene import SceneLayout, build_scene, reference_frame, set_pose
from kinesis_sim_node.spin import spin_node

SIM_STATE = "/kinesis/sim_state"
REFERENCE = "/kinesis/reference_motion"
TRACKING = "/kinesis/tracking"
GOAL_TOPICS = ("/goal_point", "/clicked_point", "/kick_target")
TEXT_FEEDBACK = "/text_feedback"
#: Every topic the stack uses and its type: all are recorded (and served), the ones with handlers also drawn.
#: Simulation (sim_node), control (policy_node), goals (reference motion, points, Twist, text) and the
#: text-to-motion node's answers, so that a recorded run can be analysed or replayed.
TOPICS = {
    SIM_STATE: SimState, "/joint_states": JointState, "/kinesis/muscle_state": MuscleState,
    "/kinesis/muscle_command": MuscleCommand, REFERENCE: ReferenceMotion, TRACKING: TrackingStatus,
    **{topic: PointStamped for topic in GOAL_TOPICS}, "/cmd_vel": Twist, "/text_command": String,
    TEXT_FEEDBACK: String,
}
#: Topics published latched (transient local): subscribed with LATCHED_QOS to get the last message on joining.
LATCHED_TOPICS = (SIM_STATE, TEXT_FEEDBACK)
SCENE_TOPIC, TRANSFORMS_TOPIC, MARKERS_TOPIC = "/kinesis/scene", "/kinesis/transforms", "/kinesis/markers"
#: Reliable subscriptions match reliable publishers of any durability; the sim state is latched.
LATCHED_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
STREAM_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
KEEPALIVE_S = 1.0


class VizNode(Node):
    """Subscribes the KINESIS topics, draws the scene for RViz and Foxglove, records MCAP."""

    def __init__(self, **kwargs) -> None:
        super().__init__("kinesis_viz", **kwargs)
        self.embodiment = self.declare_parameter("embodiment", "legs").value
        scene = str(self.declare_parameter("scene", "").value)
        rate_hz = float(self.declare_parameter("rate_hz", 15.0).value)
        serve = bool(self.declare_parameter("foxglove", False).value)
        port = int(self.declare_parameter("port", 8765).value)
        record = str(self.declare_parameter("record", "").value)
        self.draw_muscles = bool(self.declare_parameter("muscles", True).value)
        geom_groups = tuple(self.declare_parameter("geom_groups", [0, 4]).value)
        if rate_hz <= 0:
            raise ValueError(f"rate_hz: must be positive, got {rate_hz}")

        self.model = scenes.load_scene(self.embodiment, scene)
        self.data = mujoco.MjData(self.model)
        self.layout = SceneLayout.from_model(self.model, geom_groups=geom_groups)
        self.state: SimState | None = None
        self.reference: ReferenceMotion | None = None
        self.tracking: TrackingStatus | None = None
        self.goals: dict[str, np.ndarray] = {}
        self.dirty, self.last_publish = False, 0.0

        if record:
            Path(record).parent.mkdir(parents=True, exist_ok=True)
        self.recorder = foxglove.open_mcap(record, allow_overwrite=True) if record else None
        self.server = foxglove.start_server(name="kinesis", host="127.0.0.1", port=port) if serve else None
        self.scene_channel = SceneUpdateChannel(SCENE_TOPIC)
        self.transforms_channel = FrameTransformsChannel(TRANSFORMS_TOPIC)
        sinks = self.recorder is not None or self.server is not None
        self.ros_channels = {t: ros_channels.ros2msg_channel(t, cls) for t, cls in TOPICS.items()} if sinks else {}
        handlers = {SIM_STATE: self.on_state, REFERENCE: self.on_reference, TRACKING: self.on_tracking}
        handlers.update({topic: partial(self.on_goal, topic) for topic in GOAL_TOPICS})
        for topic, msg_type in TOPICS.items():
            if topic in handlers or topic in self.ros_channels:
                qos = LATCHED_QOS if topic in LATCHED_TOPICS else STREAM_QOS
                callback = partial(self.on_message, topic, msg_type, handlers.get(topic))
                self.create_subscription(msg_type, topic, callback, qos, raw=True)
        self.marker_pub = self.create_publisher(MarkerArray, MARKERS_TOPIC, 10)
        self.create_timer(1.0 / rate_hz, self.publish)
        self.get_logger().info(
            f"viz: {self.embodiment}, {rate_hz:g} Hz, foxglove {'ws://127.0.0.1:%d' % port if serve else 'off'}, "
            f"record {record or 'off'}")

    def on_message(self, topic: str, msg_type: type, handler, raw: bytes) -> None:
        """Record the serialized message, then hand the decoded one to its handler (if any)."""
        if topic in self.ros_channels:
            self.ros_channels[topic].log(raw, log_time=time.time_ns())
        if handler is not None:
            handler(deserialize_message(raw, msg_type))

    def on_state(self, msg: SimState) -> None:
        if len(msg.qpos) != self.model.nq or len(msg.activation) != self.model.nu:
            self.get_logger().warn(
                f"sim_state of {msg.embodiment!r} has {len(msg.qpos)} qpos and {len(msg.activation)} activations, "
                f"the viz model {self.embodiment!r} has {self.model.nq} and {self.model.nu}: ignored",
                throttle_duration_sec=5.0)
            return
        self.state, self.dirty = msg, True

    def on_reference(self, msg: ReferenceMotion) -> None:
        self.reference, self.dirty = msg, True

    def on_tracking(self, msg: TrackingStatus) -> None:
        self.tracking, self.dirty = msg, True

    def on_goal(self, topic: str, msg: PointStamped) -> None:
        self.goals[topic] = np.array([msg.point.x, msg.point.y, msg.point.z])
        self.dirty = True

    def reference_keypoints(self) -> np.ndarray | None:
        """Keypoints [K, 3] of the reference frame being tracked (TrackingStatus.frame, else by time)."""
        ref = self.reference
        if ref is None or ref.num_frames == 0:
            return None
        keypoints = np.asarray(ref.keypoints, dtype=float).reshape(ref.num_frames, -1, 3)
        if self.tracking is not None and self.tracking.motion == ref.name:
            return keypoints[min(self.tracking.frame, ref.num_frames - 1)]
        return keypoints[reference_frame(keypoints, ref.fps, self.state.sim_time)]

    def publish(self) -> None:
        """Timer: draw the latest state when it changed, or once per KEEPALIVE_S for late joiners."""
        now = time.monotonic()
        if self.state is None or not (self.dirty or now - self.last_publish >= KEEPALIVE_S):
            return
        self.dirty, self.last_publish = False, now
        set_pose(self.model, self.data, np.asarray(self.state.qpos))
        goals = np.array(list(self.goals.values())) if self.goals else None
        scene = build_scene(self.layout, self.data, activation=np.asarray(self.state.activation),
                            reference=self.reference_keypoints(), goals=goals, muscles=self.draw_muscles)
        self.marker_pub.publish(rviz_markers.marker_array(scene, self.state.header.stamp))
        if self.scene_channel.has_sinks():
            log_time = time.time_ns()
            stamp = foxglove_scene.timestamp(log_time)
            self.scene_channel.log(foxglove_scene.scene_update(scene, stamp), log_time=log_time)
            self.transforms_channel.log(foxglove_scene.frame_transforms(scene, stamp), log_time=log_time)

    def close(self) -> None:
        """Finish the MCAP file and stop the WebSocket server."""
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if self.server is not None:
            self.server.stop()
            self.server = None


def main(args: list[str] | None = None) -> int:
    return spin_node(VizNode, "viz_node", args)


if __name__ == "__main__":
    raise SystemExit(main())

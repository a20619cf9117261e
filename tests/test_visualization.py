"""Visualization: RViz markers and Foxglove messages from a scene, the viz node live over the
Foxglove WebSocket protocol (subprotocol ``foxglove.sdk.v1``), and its MCAP recording.

The node tests start ``python -m kinesis_sim_node.viz_node`` as a child process on a private ROS
domain, publish from this process, and stop the child with SIGINT or SIGTERM.
"""

import base64
import json
import signal
import socket
import struct
import subprocess
import sys
import time

import mujoco
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from kinesis_sim_node import foxglove_scene, rviz_markers
from kinesis_sim_node.ros_channels import ros2msg_definition, type_name
from kinesis_tasks import load_embodiment
from kinesis_tasks.scene import SceneLayout, Shape, build_scene, set_pose
from ros_client import TIMEOUT_S, RosTestClient, mcap_channels, private_domain


@pytest.fixture(scope="module")
def legs() -> mujoco.MjModel:
    return load_embodiment("legs")


@pytest.fixture(scope="module")
def scene(legs):
    data = mujoco.MjData(legs)
    qpos = legs.qpos0.copy()
    qpos[7:] = np.random.default_rng(1).uniform(-0.3, 0.3, legs.nq - 7)
    set_pose(legs, data, qpos)
    return build_scene(SceneLayout.from_model(legs), data, activation=np.linspace(0, 1, legs.nu),
                       reference=np.zeros((7, 3)), goals=[[1.0, 2.0, 0.0]])


def proto_class(schema_name: str, file_descriptor_set: bytes):
    """Message class of ``schema_name`` built from a serialized FileDescriptorSet (as Foxglove does)."""
    pool = descriptor_pool.DescriptorPool()
    for proto in descriptor_pb2.FileDescriptorSet.FromString(file_descriptor_set).file:
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(schema_name))


# --- translators ----------------------------------------------------------------------------------

def test_marker_array_counts_frame_and_geometry(scene):
    markers = rviz_markers.marker_array(scene, Time(sec=3, nanosec=5)).markers
    by_ns = {}
    for marker in markers:
        by_ns.setdefault(marker.ns, []).append(marker)
    assert {ns: len(v) for ns, v in by_ns.items()} == {
        "geoms": len(scene.primitives.kind), "muscles": 80, "keypoints": 1, "reference": 1, "goals": 1}
    assert all(m.header.frame_id == "world" and m.header.stamp == Time(sec=3, nanosec=5) for m in markers)
    assert [m.id for m in by_ns["muscles"]] == list(range(80))

    kinds = {1: Shape.BOX, 2: Shape.ELLIPSOID, 3: Shape.CYLINDER}
    assert [kinds[m.type] for m in by_ns["geoms"]] == list(scene.primitives.kind)
    shape = by_ns["geoms"][-1]
    p, q, s = shape.pose.position, shape.pose.orientation, shape.scale
    np.testing.assert_allclose([p.x, p.y, p.z], scene.primitives.pos[-1])
    np.testing.assert_allclose([q.w, q.x, q.y, q.z], scene.primitives.quat[-1])
    np.testing.assert_allclose([s.x, s.y, s.z], scene.primitives.size[-1])

    muscle = by_ns["muscles"][79]
    assert muscle.type == 4  # LINE_STRIP
    np.testing.assert_allclose([[pt.x, pt.y, pt.z] for pt in muscle.points], scene.muscles.path(79))
    assert (muscle.color.r, muscle.color.g, muscle.color.b) == (1.0, 0.0, 0.0)
    assert [[pt.x, pt.y, pt.z] for pt in by_ns["goals"][0].points] == [[1.0, 2.0, 0.0]]
    assert len(by_ns["keypoints"][0].points) == 7


def test_scene_update_decodes_to_the_scene(scene):
    update = foxglove_scene.scene_update(scene, foxglove_scene.timestamp(5_000_000_007))
    schema = update.get_schema()
    decoded = proto_class(schema.name, schema.data).FromString(update.encode())
    entities = {e.id: e for e in decoded.entities}
    assert set(entities) == {"geoms", "muscles", "keypoints", "reference", "goals"}
    geoms = entities["geoms"]
    assert geoms.frame_id == "world" and (geoms.timestamp.seconds, geoms.timestamp.nanos) == (5, 7)
    kinds = scene.primitives.kind
    assert (len(geoms.cubes), len(geoms.spheres), len(geoms.cylinders)) == tuple(
        int(np.sum(kinds == k)) for k in (Shape.BOX, Shape.ELLIPSOID, Shape.CYLINDER))
    lines = entities["muscles"].lines
    assert len(lines) == 80
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in lines[10].points], scene.muscles.path(10))
    np.testing.assert_allclose([lines[i].color.r for i in range(80)], np.linspace(0, 1, 80), atol=1e-12)
    assert len(entities["keypoints"].spheres) == 7 and len(entities["goals"].spheres) == 1

    message = foxglove_scene.frame_transforms(scene, foxglove_scene.timestamp(0))
    schema = message.get_schema()
    transforms = proto_class(schema.name, schema.data).FromString(message.encode()).transforms
    assert [t.child_frame_id for t in transforms] == list(scene.body_names)
    assert {t.parent_frame_id for t in transforms} == {"world"}
    t = transforms[3]
    np.testing.assert_allclose([t.translation.x, t.translation.y, t.translation.z], scene.body_pos[3])
    np.testing.assert_allclose([t.rotation.w, t.rotation.x, t.rotation.y, t.rotation.z], scene.body_quat[3])


def test_ros2msg_definition_lists_nested_types():
    from kinesis_msgs.msg import SimState

    text = ros2msg_definition(SimState)
    assert type_name(SimState) == "kinesis_msgs/msg/SimState"
    assert text.startswith("# Physics state published by the simulation node")
    assert [line for line in text.splitlines() if line.startswith("MSG: ")] == [
        "MSG: std_msgs/Header", "MSG: builtin_interfaces/Time"]
    assert "\n" + "=" * 80 + "\nMSG: std_msgs/Header\n" in text


# --- the node in a child process --------------------------------------------------------------------

@pytest.fixture(scope="module")
def ros():
    """(executor, node) on a private domain; viz children see the same environment."""
    with private_domain(range(100, 200)) as domain_id:
        client = RosTestClient("viz_test", domain_id, {}, TIMEOUT_S)
        try:
            yield client.executor, client.node
        finally:
            client.close()


def start_viz(*params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "kinesis_sim_node.viz_node", "--ros-args"]
    for param in params:
        args += ["-p", param]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(child: subprocess.Popen, sig: int) -> int:
    """Send ``sig``, wait (bounded), kill if needed; the exit code."""
    if child.poll() is None:
        child.send_signal(sig)
    try:
        return child.wait(timeout=TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def spin_until(executor, child, done, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert child.poll() is None, f"viz node exited with {child.returncode}: {child.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out after {TIMEOUT_S} s waiting for {what}"
        executor.spin_once(timeout_sec=0.05)


def publishers(node):
    from geometry_msgs.msg import PointStamped, Twist
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from kinesis_msgs.msg import MuscleCommand, ReferenceMotion, SimState, TrackingStatus

    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return {
        "/kinesis/sim_state": node.create_publisher(SimState, "/kinesis/sim_state", latched),
        "/kinesis/reference_motion": node.create_publisher(ReferenceMotion, "/kinesis/reference_motion", 10),
        "/kinesis/tracking": node.create_publisher(TrackingStatus, "/kinesis/tracking", 10),
        "/clicked_point": node.create_publisher(PointStamped, "/clicked_point", 10),
        "/kinesis/muscle_command": node.create_publisher(MuscleCommand, "/kinesis/muscle_command", 10),
        "/cmd_vel": node.create_publisher(Twist, "/cmd_vel", 10),
        "/text_command": node.create_publisher(String, "/text_command", 10),
        "/text_feedback": node.create_publisher(String, "/text_feedback", latched),
    }


def sim_state(model: mujoco.MjModel, step: int, activation: float):
    from kinesis_msgs.msg import SimState

    qpos = model.qpos0.copy()
    qpos[0] = 0.1 * step
    return SimState(embodiment="legs", sim_time=step / 30, qpos=qpos.tolist(), qvel=[0.0] * model.nv,
                    activation=[activation] * model.nu, step=step)


def _points(marker_array, namespace: str) -> list[list[float]]:
    marker = next(m for m in marker_array.markers if m.ns == namespace)
    return [[p.x, p.y, p.z] for p in marker.points]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.ros
def test_foxglove_client_receives_the_scene(ros, legs):
    from websockets.sync.client import connect

    executor, node = ros
    port = free_port()
    child = start_viz(f"port:={port}", "foxglove:=true", "rate_hz:=30.0")
    pubs = publishers(node)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            assert child.poll() is None, f"viz node exited: {child.stderr.read()}"
            try:
                ws = connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"], open_timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "Foxglove server did not start"
                time.sleep(0.2)
        with ws:
            assert ws.subprotocol == "foxglove.sdk.v1"
            channels = {}
            while "/kinesis/scene" not in channels:
                message = json.loads(ws.recv(timeout=TIMEOUT_S))
                if message["op"] == "advertise":
                    channels.update({c["topic"]: c for c in message["channels"]})
            scene_channel = channels["/kinesis/scene"]
            assert scene_channel["schemaName"] == "foxglove.SceneUpdate"
            ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": scene_channel["id"]}]}))

            spin_until(executor, child, lambda: pubs["/kinesis/sim_state"].get_subscription_count() > 0, "match")
            pubs["/kinesis/sim_state"].publish(sim_state(legs, 3, activation=1.0))
            while True:
                frame = ws.recv(timeout=TIMEOUT_S)
                if isinstance(frame, bytes) and frame[0] == 0x01:
                    break
        subscription, _log_time = struct.unpack_from("<IQ", frame, 1)
        assert subscription == 7
        update_class = proto_class("foxglove.SceneUpdate", base64.b64decode(scene_channel["schema"]))
        entities = {e.id: e for e in update_class.FromString(frame[13:]).entities}
        lines = entities["muscles"].lines
        assert len(lines) == 80 and all((ln.color.r, ln.color.b) == (1.0, 0.0) for ln in lines)
        keypoints = entities["keypoints"].spheres
        data = mujoco.MjData(legs)
        set_pose(legs, data, np.asarray(sim_state(legs, 3, 1.0).qpos))
        assert keypoints[0].pose.position.x == pytest.approx(data.xpos[legs.body("root").id, 0])
        assert stop(child, signal.SIGTERM) == 0
    finally:
        stop(child, signal.SIGKILL)
        for pub in pubs.values():
            node.destroy_publisher(pub)


@pytest.mark.ros
def test_mcap_records_topics_and_scene(ros, legs, tmp_path):
    from geometry_msgs.msg import Point, PointStamped, Twist, Vector3
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message
    from std_msgs.msg import String
    from visualization_msgs.msg import MarkerArray

    from kinesis_msgs.msg import MuscleCommand, ReferenceMotion, SimState, TrackingStatus

    executor, node = ros
    path = tmp_path / "run.mcap"
    child = start_viz(f"record:={path}", "rate_hz:=30.0")
    pubs = publishers(node)
    markers = []
    sub = node.create_subscription(MarkerArray, "/kinesis/markers", markers.append, 10)
    states = [sim_state(legs, step, activation=0.25) for step in range(3)]
    reference = ReferenceMotion(name="walk", fps=30.0, body_names=["root"], num_frames=2,
                                keypoints=[0.0, 0.0, 1.0, 0.1, 0.0, 1.0])
    # What the rest of the stack publishes: a policy's command, a teleop Twist, a text prompt and its answer.
    others = {"/kinesis/muscle_command": MuscleCommand(embodiment="legs", mode="direct", state_step=2,
                                                       values=[0.5] * legs.nu),
              "/cmd_vel": Twist(linear=Vector3(x=1.0), angular=Vector3(z=0.25)),
              "/text_command": String(data="walk in a circle counterclockwise"),
              "/text_feedback": String(data='{"prompt": "walk in a circle counterclockwise", "ok": true}')}
    try:
        spin_until(executor, child, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), "match")
        data = mujoco.MjData(legs)
        for state in states:  # one at a time, so that discovery has completed both ways
            set_pose(legs, data, np.asarray(state.qpos))
            root_x = data.xpos[legs.body("root").id, 0]
            pubs["/kinesis/sim_state"].publish(state)
            spin_until(executor, child, lambda: markers and _points(markers[-1], "keypoints")[0][0] == root_x,
                       f"markers of step {state.step}")
        for topic, msg in others.items():
            pubs[topic].publish(msg)
        pubs["/kinesis/reference_motion"].publish(reference)
        pubs["/kinesis/tracking"].publish(TrackingStatus(motion="walk", frame=1, mpjpe_mm=12.5))
        pubs["/clicked_point"].publish(PointStamped(point=Point(x=1.0, y=2.0, z=0.0)))
        spin_until(executor, child, lambda: _points(markers[-1], "goals") == [[1.0, 2.0, 0.0]]
                   and _points(markers[-1], "reference")[0] == [0.1, 0.0, 1.0],
                   "markers with the goal and the tracked reference frame")
        assert stop(child, signal.SIGINT) == 0
    finally:
        stop(child, signal.SIGKILL)
        node.destroy_subscription(sub)
        for pub in pubs.values():
            node.destroy_publisher(pub)

    with open(path, "rb") as stream:
        reader = make_reader(stream)
        counts, schemas = mcap_channels(reader)
        recorded = [deserialize_message(message.data, SimState)
                    for _, channel, message in reader.iter_messages(topics=["/kinesis/sim_state"])]
        types = {"/kinesis/muscle_command": MuscleCommand, "/cmd_vel": Twist, "/text_command": String,
                 "/text_feedback": String}
        received = {channel.topic: deserialize_message(message.data, types[channel.topic])
                    for _, channel, message in reader.iter_messages(topics=list(types))}
    assert {k: v for k, v in counts.items() if not k.startswith("/kinesis/scene") and "transforms" not in k} == {
        "/kinesis/sim_state": 3, "/kinesis/reference_motion": 1, "/kinesis/tracking": 1, "/clicked_point": 1,
        "/kinesis/muscle_command": 1, "/cmd_vel": 1, "/text_command": 1, "/text_feedback": 1}
    assert counts["/kinesis/scene"] >= 1 and counts["/kinesis/transforms"] >= 1
    assert schemas["/kinesis/sim_state"] == ("kinesis_msgs/msg/SimState", "ros2msg", "cdr")
    assert schemas["/clicked_point"] == ("geometry_msgs/msg/PointStamped", "ros2msg", "cdr")
    assert schemas["/kinesis/muscle_command"] == ("kinesis_msgs/msg/MuscleCommand", "ros2msg", "cdr")
    assert schemas["/cmd_vel"] == ("geometry_msgs/msg/Twist", "ros2msg", "cdr")
    assert schemas["/text_command"] == schemas["/text_feedback"] == ("std_msgs/msg/String", "ros2msg", "cdr")
    assert received == others
    assert schemas["/kinesis/scene"] == ("foxglove.SceneUpdate", "protobuf", "protobuf")
    assert recorded == states

"""kinesis_msgs round trips between two processes.

A child process runs a small rclpy echo node: it republishes every kinesis_msgs message it gets
on /kinesis_test/in/<Type> to /kinesis_test/out/<Type> and serves Reset and Step with answers
computed from the request. The test process publishes one message of every type, calls both
services, and checks what comes back. Needs kinesis_msgs built into the venv
(scripts/build_msgs.sh); the test fails, not skips, when it is missing.
"""

import array
import subprocess
import sys
import time

import pytest
from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from kinesis_msgs.msg import MuscleCommand, MuscleState, ReferenceMotion, SimState, TrackingStatus
from kinesis_msgs.srv import Reset, Step
from ros_client import TIMEOUT_S, RosTestClient, private_domain

pytestmark = pytest.mark.ros


ECHO_NODE = """
import rclpy
from rclpy.executors import ExternalShutdownException
import kinesis_msgs.msg as m
from kinesis_msgs.srv import Reset, Step

TYPES = ("SimState", "MuscleState", "MuscleCommand", "ReferenceMotion", "TrackingStatus")

def reset(request, response):
    response.success = request.seed >= 0
    response.message = f"{request.motion}|{request.seed}|{len(request.qpos)}|{sum(request.qpos):.3f}"
    return response

def step(request, response):
    response.success = True
    response.message = f"stepped {request.n}"
    response.step = 1000 + request.n
    return response

try:
    with rclpy.init():
        node = rclpy.create_node("kinesis_msgs_echo")
        for name in TYPES:
            pub = node.create_publisher(getattr(m, name), f"/kinesis_test/out/{name}", 10)
            node.create_subscription(getattr(m, name), f"/kinesis_test/in/{name}", pub.publish, 10)
        node.create_service(Reset, "/kinesis_test/reset", reset)
        node.create_service(Step, "/kinesis_test/step", step)
        rclpy.spin(node)
except (KeyboardInterrupt, ExternalShutdownException):
    pass
"""


def _header(frame_id: str) -> Header:
    return Header(stamp=Time(sec=12, nanosec=345_000_000), frame_id=frame_id)


SAMPLES = {
    "SimState": SimState(
        header=_header("world"), sim_time=12.345, embodiment="legs",
        qpos=[0.0, 0.0, 0.95, 1.0, 0.0, 0.0, 0.0, 0.25, -0.5], qvel=[0.1, -0.2, 0.3],
        activation=[0.0, 0.5, 1.0], foot_contacts=[120.5, 0.0, 310.25, 4.0], step=2**40 + 3),
    "MuscleState": MuscleState(
        header=_header("world"), names=["addbrev_r", "tibant_l"], excitation=[0.2, 0.9],
        activation=[0.15, 0.85], force=[-35.5, -410.0], length=[0.121, 0.305],
        velocity=[0.01, -0.02], fatigue=[]),
    "MuscleCommand": MuscleCommand(
        header=_header(""), state_stamp=Time(sec=12, nanosec=345_000_000), state_step=2**40 + 3,
        embodiment="legs_back", mode=MuscleCommand.MODE_TARGET_LENGTH, values=[-1.0, 0.0, 0.75]),
    "ReferenceMotion": ReferenceMotion(
        header=_header("world"), name="gait_cycle", text="a person walks forward", fps=30.0,
        body_names=["pelvis", "tibia_l"], num_frames=2,
        keypoints=[0.0, 0.0, 0.9, 0.1, 0.1, 0.5, 0.03, 0.0, 0.9, 0.13, 0.1, 0.5]),
    "TrackingStatus": TrackingStatus(
        header=_header("world"), motion="gait_cycle", frame=57, mpjpe_mm=23.75, reward=0.8125,
        terminated=True, task="imitation", success=False),
}


@pytest.fixture(scope="module")
def ros():
    """(executor, node, child): a fresh context on a private domain, with the echo child running."""
    with private_domain(range(1, 100)) as domain_id:
        child = subprocess.Popen([sys.executable, "-c", ECHO_NODE],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            client = RosTestClient("kinesis_msgs_test", domain_id, {}, TIMEOUT_S)
            try:
                yield client.executor, client.node, child
            finally:
                client.close()
        finally:
            child.kill()
            child.communicate(timeout=TIMEOUT_S)


def _spin_until(executor, child, done, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not done():
        assert child.poll() is None, f"echo node exited with {child.returncode}: {child.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out after {TIMEOUT_S} s waiting for {what}"
        executor.spin_once(timeout_sec=0.05)


@pytest.mark.parametrize("type_name", list(SAMPLES))
def test_message_round_trip(ros, type_name):
    executor, node, child = ros
    sent = SAMPLES[type_name]
    received = []
    pub = node.create_publisher(type(sent), f"/kinesis_test/in/{type_name}", 10)
    sub = node.create_subscription(type(sent), f"/kinesis_test/out/{type_name}", received.append, 10)
    try:
        _spin_until(executor, child,
                    lambda: pub.get_subscription_count() > 0 and sub.get_publisher_count() > 0,
                    f"{type_name} topics to match")
        # Matched on this side does not mean the echo's writer has matched this reader yet: publish again
        # until the echo comes back (a volatile message sent before that match is dropped).
        last = [-1.0]

        def echoed() -> bool:
            if not received and time.monotonic() - last[0] > 0.5:
                pub.publish(sent)
                last[0] = time.monotonic()
            return bool(received)

        _spin_until(executor, child, echoed, f"{type_name} echo")
    finally:
        node.destroy_publisher(pub)
        node.destroy_subscription(sub)

    echo = received[0]
    assert echo is not sent
    assert echo == sent
    for field, ros_type in sent.get_fields_and_field_types().items():
        if ros_type == "sequence<double>":
            value = getattr(echo, field)
            assert isinstance(value, array.array) and value.typecode == "d", field
            assert list(value) == list(getattr(sent, field)), field


def _call(ros, srv_type, name: str, request):
    executor, node, child = ros
    client = node.create_client(srv_type, name)
    try:
        _spin_until(executor, child, client.service_is_ready, f"service {name}")
        future = client.call_async(request)
        _spin_until(executor, child, future.done, f"response of {name}")
        return future.result()
    finally:
        node.destroy_client(client)


def test_reset_service(ros):
    request = Reset.Request(motion="gait_cycle", qpos=[0.0, 0.0, 0.95, 1.0, 0.5], seed=2**33 + 1)
    response = _call(ros, Reset, "/kinesis_test/reset", request)
    assert response.success is True
    assert response.message == f"gait_cycle|{2**33 + 1}|5|2.450"

    response = _call(ros, Reset, "/kinesis_test/reset", Reset.Request(motion="", qpos=[], seed=-1))
    assert response.success is False
    assert response.message == "|-1|0|0.000"


def test_step_service(ros):
    response = _call(ros, Step, "/kinesis_test/step", Step.Request(n=4_000_000_000))
    assert response.success is True
    assert response.message == "stepped 4000000000"
    assert response.step == 4_000_001_000

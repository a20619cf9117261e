"""sim_node in a real process, driven by an rclpy client in the test process.

Lockstep runs must equal an offline MuscleSim run with the same actions bit for bit; bad commands
are rejected, counted (parameters rejected.<reason>) and never applied; the realtime watchdog
relaxes the muscles when commands stop. Each node gets a private ROS domain on localhost.
"""

import os
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from rcl_interfaces.srv import GetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool

from kinesis.launch import interrupt_group, private_ros_environment
from kinesis_msgs.msg import MuscleCommand, MuscleState, SimState
from kinesis_msgs.srv import Reset, Step
from kinesis_tasks import MuscleSim, load_embodiment
from ros_client import TIMEOUT_S, RosTestClient

pytestmark = pytest.mark.ros

NU = 80  # muscles of the `legs` embodiment
LATCHED = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
REASONS = ("embodiment", "mode", "length", "non_finite", "range", "stale")


class Client(RosTestClient):
    """The test node on the sim node's domain: records states, publishes commands."""

    def __init__(self, domain_id: int, process: subprocess.Popen, log_path) -> None:
        super().__init__("sim_node_test_client", domain_id, {"sim_node": (process, log_path)}, TIMEOUT_S)
        self.log_path = log_path
        self.states: list[SimState] = []
        self.node.create_subscription(SimState, "/kinesis/sim_state", self.states.append, LATCHED)
        self.commands = self.node.create_publisher(MuscleCommand, "/kinesis/muscle_command", 10)

    def wait_state(self, step: int) -> SimState:
        self.spin_until(lambda: self.states and self.states[-1].step == step, f"state {step}")
        return self.states[-1]

    def reset(self) -> SimState:
        self.states.clear()
        assert self.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1)).success
        state = self.wait_state(0)
        assert state.sim_time == 0.0
        return state

    def send(self, values, *, step: int, embodiment: str = "legs", mode: str = "target_length") -> None:
        self.commands.publish(MuscleCommand(state_step=step, embodiment=embodiment, mode=mode,
                                            values=[float(v) for v in values]))

    def rejected(self) -> dict[str, int]:
        names = [f"rejected.{reason}" for reason in REASONS]
        response = self.call(GetParameters, "/sim_node/get_parameters", GetParameters.Request(names=names))
        return {reason: value.integer_value for reason, value in zip(REASONS, response.values)}


@contextmanager
def running_sim_node(tmp_path, *params: str, executor: str = "events"):
    """A sim_node process with ``params`` (name:=value) and a connected Client; always stopped."""
    domain_id, env = private_ros_environment(range(1, 100))
    env["KINESIS_ROS_EXECUTOR"] = executor
    ros_args = [arg for param in params for arg in ("-p", param)]
    log_path = tmp_path / f"sim_node_{domain_id}_{time.time_ns()}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-P", "-m", "kinesis_sim_node.sim_node", "--ros-args", *ros_args],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = None
    try:
        client = Client(domain_id, process, log_path)
        client.spin_until(lambda: client.states and client.commands.get_subscription_count() > 0, "sim_node to connect")
        yield client
    finally:
        if client is not None:
            client.close()
        interrupt_group(process)
    assert process.returncode == 0, f"sim_node did not stop cleanly on SIGINT ({process.returncode}):\n{log_path.read_text()}"


@pytest.fixture(scope="module")
def lockstep(tmp_path_factory):
    with running_sim_node(tmp_path_factory.mktemp("sim_node"), "clock:=lockstep") as client:
        yield client


def test_lockstep_equals_offline_run(lockstep):
    lockstep.reset()
    actions = np.random.default_rng(7).uniform(-1.0, 1.0, (100, NU))
    for k, action in enumerate(actions):
        state = lockstep.wait_state(k)
        lockstep.commands.publish(MuscleCommand(state_stamp=state.header.stamp, state_step=k, embodiment="legs",
                                                mode="target_length", values=action.tolist()))
    final = lockstep.wait_state(100)

    offline = MuscleSim(load_embodiment("legs"), control_mode="target_length")
    for action in actions:
        offline.step(action)
    assert final.embodiment == "legs"
    assert final.sim_time == offline.data.time
    assert_array_equal(np.asarray(final.qpos), offline.data.qpos)
    assert_array_equal(np.asarray(final.qvel), offline.data.qvel)
    assert_array_equal(np.asarray(final.activation), offline.data.act)
    assert len(final.foot_contacts) == 4
    assert abs(offline.data.qpos - offline.model.qpos0).max() > 1e-3  # the actions moved the body


def test_bad_commands_are_rejected_counted_and_never_applied(lockstep):
    lockstep.reset()
    before = lockstep.rejected()
    good = np.linspace(-0.9, 0.9, NU)
    nan, too_big = good.copy(), good.copy()
    nan[3], too_big[5] = np.nan, 1.5
    lockstep.send(good, step=0, embodiment="legs_back")
    lockstep.send(good, step=0, mode="direct")
    lockstep.send(good[:-1], step=0)
    lockstep.send(nan, step=0)
    lockstep.send(-too_big, step=0)
    lockstep.send(good, step=7)
    lockstep.send(good, step=0)  # the only one to apply (topics keep order)
    state = lockstep.wait_state(1)

    offline = MuscleSim(load_embodiment("legs"), control_mode="target_length")
    offline.step(good)
    assert_array_equal(np.asarray(state.qpos), offline.data.qpos)
    after = lockstep.rejected()
    assert {reason: after[reason] - before[reason] for reason in REASONS} == dict.fromkeys(REASONS, 1)
    lockstep.send(good, step=1)  # still stepping
    lockstep.wait_state(2)


def test_pause_step_and_reset_services(lockstep):
    lockstep.reset()
    assert lockstep.call(Step, "/sim_node/step", Step.Request(n=1)).success is False  # not paused
    assert lockstep.call(SetBool, "/sim_node/pause", SetBool.Request(data=True)).success
    lockstep.send(np.zeros(NU), step=0)  # held while paused
    lockstep.spin_for(0.2)
    assert lockstep.states[-1].step == 0
    response = lockstep.call(Step, "/sim_node/step", Step.Request(n=3))
    assert (response.success, response.step) == (True, 3)
    lockstep.wait_state(3)
    offline = MuscleSim(load_embodiment("legs"), control_mode="target_length")
    for _ in range(3):
        offline.step(np.zeros(NU))  # the held command, then zero-order hold
    assert_array_equal(np.asarray(lockstep.states[-1].qpos), offline.data.qpos)
    assert lockstep.call(SetBool, "/sim_node/pause", SetBool.Request(data=False)).success

    qpos = offline.model.qpos0.copy()
    qpos[2] += 0.05
    lockstep.states.clear()
    assert lockstep.call(Reset, "/sim_node/reset", Reset.Request(motion="walk", qpos=qpos.tolist(), seed=3)).success
    state = lockstep.wait_state(0)
    assert_array_equal(np.asarray(state.qpos), qpos)
    assert not np.any(state.qvel)  # no qvel: zero
    qvel = np.linspace(-0.5, 0.5, offline.model.nv)
    lockstep.states.clear()
    assert lockstep.call(Reset, "/sim_node/reset", Reset.Request(motion="walk", qpos=qpos.tolist(), seed=-1,
                                                                 qvel=qvel.tolist())).success
    state = lockstep.wait_state(0)
    offline.reset(qpos, qvel)
    assert_array_equal(np.asarray(state.qvel), qvel)
    assert_array_equal(np.asarray(state.sensordata), offline.data.sensordata)  # evaluated as MuscleSim.reset does
    for bad in (Reset.Request(qpos=[0.0] * 3, seed=-1), Reset.Request(qvel=[0.0] * 3, seed=-1),
                Reset.Request(qvel=[float("nan")] * offline.model.nv, seed=-1)):
        refused = lockstep.call(Reset, "/sim_node/reset", bad)
        assert refused.success is False and ("qpos" if bad.qpos else "qvel") in refused.message
    lockstep.spin_for(0.1)
    assert lockstep.states[-1] == state  # a refused reset changes nothing


def test_realtime_watchdog_relaxes_muscles(tmp_path):
    timeout = 0.3
    with running_sim_node(tmp_path, "clock:=realtime", "control_mode:=direct", f"watchdog_timeout_s:={timeout}") as client:
        excitations: list[tuple[float, np.ndarray]] = []
        client.node.create_subscription(MuscleState, "/kinesis/muscle_state",
                                        lambda msg: excitations.append((time.monotonic(), np.asarray(msg.excitation))), 10)
        client.spin_until(lambda: excitations, "muscle states")
        assert np.all(excitations[-1][1] == 0.0)  # relaxed before any command

        deadline = time.monotonic() + TIMEOUT_S
        while not np.all(excitations[-1][1] == 1.0):  # full excitation once a command is applied
            assert time.monotonic() < deadline, "commands were not applied"
            client.send(np.ones(NU), step=0, mode="direct")
            client.spin_for(0.03)
        client.spin_for(0.1)
        last_sent = time.monotonic()
        client.send(np.ones(NU), step=0, mode="direct")
        client.spin_for(timeout / 2)
        assert np.all(excitations[-1][1] == 1.0)  # the last command is held
        client.spin_until(lambda: np.all(excitations[-1][1] == 0.0), "relaxed muscles", timeout=timeout + 2.0)
        relaxed_after = excitations[-1][0] - last_sent
        assert timeout <= relaxed_after < timeout + 0.7
    assert "watchdog: no muscle command for 0.3 s" in client.log_path.read_text()


def test_single_threaded_executor_steps_and_stops(tmp_path):
    with running_sim_node(tmp_path, "clock:=lockstep", executor="single") as client:
        client.reset()
        client.send(np.zeros(NU), step=0)
        state = client.wait_state(1)
    offline = MuscleSim(load_embodiment("legs"), control_mode="target_length")
    offline.step(np.zeros(NU))
    assert_array_equal(np.asarray(state.qpos), offline.data.qpos)


def test_unknown_executor_is_a_clear_error():
    result = subprocess.run([sys.executable, "-P", "-m", "kinesis_sim_node.sim_node"], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, KINESIS_ROS_EXECUTOR="fast", ROS_DOMAIN_ID="98"))
    assert result.returncode == 2
    assert "KINESIS_ROS_EXECUTOR must be one of ['events', 'single'], got 'fast'" in result.stderr

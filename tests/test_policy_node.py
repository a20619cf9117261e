"""policy_node: observations from SimState equal ImitationEnv's, and lockstep over ROS equals the offline run.

Setup: the KINESIS v1 model (tests/data/conformance) with the conformance Lattice checkpoint (obs 309,
80 actions), motion myosuite_walk_a of the default library; both runs start from the model's default
state (sim_node after a reset; offline: ImitationEnv.reset with that qpos and zero qvel). The nodes run
as two processes and composed in one (kinesis_sim_node.component_container, as the launch files run them).
"""

import os
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped, Twist
from numpy.testing import assert_array_equal
from std_srvs.srv import SetBool

from kinesis.launch import interrupt_group, private_ros_environment
from kinesis_msgs.msg import MuscleCommand, ReferenceMotion, SimState, TrackingStatus
from kinesis_msgs.srv import Reset
from kinesis_policy_node import goals
from kinesis_policy_node.tracking import GoalTracker, canonical_task
from kinesis_sim_node.messages import SIM_STATE_QOS
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.motions import load_library
from kinesis_training import load_policy
from ros_client import RosTestClient

DATA = Path(__file__).parent / "data" / "conformance"
V1_MODEL = str(DATA / "kinesis_v1_model" / "myolegs.xml")
CHECKPOINT = str(DATA / "policy_lattice.pt")
MOTION = "myosuite_walk_a"
STEPS = 100
TIMEOUT_S = 30.0


def offline_run(steps: int):
    """(observations [S, 309], actions [S, 80], qpos [S + 1, nq]) of ImitationEnv with the checkpoint's mean action."""
    motion = load_library("default")[MOTION]
    env = ImitationEnv(ImitationConfig.default(embodiment=V1_MODEL, evaluation=True), [motion])
    policy = load_policy(CHECKPOINT)
    obs, _ = env.reset(options={"motion": MOTION, "start": 0, "qpos": env.model.qpos0.copy(), "qvel": np.zeros(env.model.nv)})
    all_obs, actions, qpos, sensordata = [], [], [env.sim.data.qpos.copy()], [env.sim.data.sensordata.copy()]
    for _ in range(steps):
        action = policy.mean_action(obs)
        all_obs.append(obs), actions.append(action)
        obs, *_ = env.step(action)
        qpos.append(env.sim.data.qpos.copy()), sensordata.append(env.sim.data.sensordata.copy())
    return np.array(all_obs), np.array(actions), np.array(qpos), np.array(sensordata)


def test_tracker_observation_equals_imitation_env():
    obs, _, qpos, sensordata = offline_run(30)
    tracker = GoalTracker(V1_MODEL, "imitation", [load_library("default")[MOTION]], {})
    for k in range(30):
        assert_array_equal(tracker.observe(qpos[k], sensordata[k], k / 30, step=7 + k).obs, obs[k])
    with pytest.raises(ValueError, match="sensordata"):
        tracker.observe(qpos[0], sensordata[0][:-1], 0.0, step=0)


def test_goal_conversions_and_task_names():
    point = PointStamped()
    point.point.x, point.point.y = 2.0, -1.0
    assert_array_equal(goals.point_from_msg(point), [2.0, -1.0, 0.0])
    point.point.z = float("nan")
    with pytest.raises(ValueError, match="finite"):
        goals.point_from_msg(point)
    twist = Twist()
    twist.linear.x, twist.angular.z = 1.1, 0.3
    assert (goals.twist_from_msg(twist).linear_x, goals.twist_from_msg(twist).angular_z) == (1.1, 0.3)
    motion = load_library("default")[MOTION]
    back = goals.motion_from_msg(goals.motion_msg(motion, SimState().header.stamp))
    assert_array_equal(back.keypoints, motion.keypoints) and back.body_names == motion.body_names
    broken = goals.motion_msg(motion, SimState().header.stamp)
    broken.num_frames += 1
    with pytest.raises(ValueError, match="keypoints"):
        goals.motion_from_msg(broken)
    assert [canonical_task(t) for t in ("target_reach", "text_to_motion", "kick")] == ["reach", "imitation", "kick"]
    with pytest.raises(ValueError, match="task"):
        canonical_task("dance")


# --- real processes ------------------------------------------------------------------------------


class Client(RosTestClient):
    """A test node on a private domain recording what the nodes publish."""

    def __init__(self, domain_id: int, processes: dict) -> None:
        super().__init__("policy_node_test_client", domain_id, processes, TIMEOUT_S)
        self.states: dict[int, SimState] = {}
        self.commands: dict[int, MuscleCommand] = {}
        self.tracking: list[TrackingStatus] = []
        self.references: list[ReferenceMotion] = []
        self.node.create_subscription(SimState, "/kinesis/sim_state", lambda m: self.states.setdefault(m.step, m), SIM_STATE_QOS)
        self.node.create_subscription(MuscleCommand, "/kinesis/muscle_command", lambda m: self.commands.setdefault(m.state_step, m), 200)
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.tracking.append, 200)
        self.node.create_subscription(ReferenceMotion, "/kinesis/reference_motion", self.references.append, SIM_STATE_QOS)


@contextmanager
def running_nodes(tmp_path):
    """(client, start): ``start(module, params)`` runs ``python -P -m <module> --ros-args -p ...`` on the
    client's private localhost domain, ``start(CONTAINER, [], {plugin: params})`` a component container with
    those nodes, as the launch files do; every process is stopped at exit."""
    domain_id, env = private_ros_environment(range(100, 200))
    processes = {}
    with ExitStack() as stack:
        client = Client(domain_id, processes)
        stack.callback(client.close)

        def start(module: str, params: list[str], components: dict[str, list[str]] | None = None) -> None:
            log = tmp_path / f"{module.rsplit('.', 1)[-1]}_{domain_id}.log"
            loads = [a for plugin, node_params in (components or {}).items() for a in ("--load", plugin, *ros_params(node_params))]
            with log.open("w") as out:
                process = subprocess.Popen([sys.executable, "-P", "-m", module, *loads, "--ros-args", *ros_params(params)],
                                           env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            processes[module] = (process, log)
            stack.callback(interrupt_group, process)

        yield client, start


def ros_params(params: list[str]) -> list[str]:
    return [a for p in params for a in ("-p", p)]


SIM = "kinesis_sim_node.sim_node"
POLICY = "kinesis_policy_node.policy_node"
CONTAINER = "kinesis_sim_node.component_container"


@pytest.mark.ros
@pytest.mark.parametrize("composed", [False, True], ids=["two_processes", "composed"])
def test_lockstep_over_ros_equals_offline_run(tmp_path, composed):
    common = [f"embodiment:={V1_MODEL}", "control_mode:=target_length"]
    sim = [*common, "clock:=lockstep", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"]
    policy = ["task:=imitation", f"checkpoint:={CHECKPOINT}", f"motion:={MOTION}"]
    with running_nodes(tmp_path) as (client, start):
        if composed:  # one component container, as the launch files run them
            start(CONTAINER, [], {"kinesis_sim_node.sim_node.SimNode": sim,
                                  "kinesis_policy_node.policy_node.PolicyNode": [*common, *policy]})
        else:
            start(SIM, sim)
            start(POLICY, [*common, *policy])
        client.spin_until(lambda: client.commands, "the policy's commands")
        # The run from the default state: reset the paused sim, take the policy's answer to state 0, resume.
        assert client.call(SetBool, "/sim_node/pause", SetBool.Request(data=True)).success
        client.spin_for(0.3)
        client.states.clear(), client.commands.clear()
        assert client.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1)).success
        client.spin_until(lambda: 0 in client.commands, "the answer to state 0")
        assert client.call(SetBool, "/sim_node/pause", SetBool.Request(data=False)).success
        client.spin_until(lambda: max(client.states) >= STEPS, f"{STEPS} answered states", timeout=60.0)
    # The loop runs on while this client reads, so a slow reader may skip states (depth-1 topic) and commands.
    # Compared: the whole motion (150 steps; then the node starts it over while ImitationEnv holds its end).
    horizon = int(round(load_library("default")[MOTION].duration * 30))
    _, actions, qpos, _ = offline_run(horizon)
    commands = [k for k in range(horizon) if k in client.commands]
    states = [k for k in range(horizon + 1) if k in client.states]
    assert 0 in commands and len(commands) >= 10 and max(states) >= STEPS // 2
    for k in commands:
        assert_array_equal(np.array(client.commands[k].values), actions[k].astype(np.float64), err_msg=f"action {k}")
    for k in states:
        assert_array_equal(np.array(client.states[k].qpos), qpos[k], err_msg=f"qpos of state {k}")
    assert {m.task for m in client.tracking} == {"imitation"} and {m.motion for m in client.tracking} == {MOTION}
    assert client.references and client.references[0].name == MOTION


@pytest.mark.ros
def test_checkpoint_size_mismatch_exits_with_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-P", "-m", POLICY, "--ros-args", "-p", "embodiment:=legs",
                             "-p", f"checkpoint:={CHECKPOINT}"], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, ROS_DOMAIN_ID="201", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST"))
    assert result.returncode == 2
    assert "observation size 309" in result.stderr and "504" in result.stderr

"""policy_node: observations from SimState equal ImitationEnv's, and lockstep over ROS equals the offline run.

Setup: the KINESIS v1 model (tests/data/conformance) with the conformance Lattice checkpoint (obs 309,
80 actions), motion myosuite_walk_a of the default library. A first attempt starts from the model's default
state (sim_node reset by the test; offline: ImitationEnv.reset with that qpos and zero qvel); when it
terminates, the policy node resets the simulation to the motion's initial state (an IK fit: the motion's qpos
is for ``legs``) and the next attempt equals ``kinesis eval``'s episode (ImitationEnv in evaluation mode). The
nodes run as two processes and composed in one (kinesis_sim_node.component_container, as the launch files
run them). A playlist run (``legs``, a fresh small Lattice network) checks motion starts, the table of
``kinesis demo`` against ``kinesis_tasks.evaluation`` and a log without rejected commands.
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
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool

from kinesis.demo_cli import Attempts
from kinesis.launch import interrupt_group, private_ros_environment
from kinesis_msgs.msg import MuscleCommand, ReferenceMotion, SimState, TrackingStatus
from kinesis_msgs.srv import Reset
from kinesis_policy_node import goals
from kinesis_policy_node.tracking import GoalTracker, canonical_task
from kinesis_sim_node.messages import SIM_STATE_QOS
from kinesis_tasks.embodiment import rest_qpos
from kinesis_tasks.evaluation import evaluate_motion, evaluation_config
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.motions import load_library, save_library
from kinesis_training import load_policy
from ros_client import TIMEOUT_S, RosTestClient

DATA = Path(__file__).parent / "data" / "conformance"
V1_MODEL = str(DATA / "kinesis_v1_model" / "myolegs.xml")
CHECKPOINT = str(DATA / "policy_lattice.pt")
MOTION = "myosuite_walk_a"
#: Every state the sim publishes (its writer keeps one; a deep reader queue keeps a busy client from losing any).
ALL_STATES = QoSProfile(depth=5000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


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


def offline_episode(env: ImitationEnv, policy, **initial):
    """(actions [T], qpos [T + 1, nq], qvel [T + 1, nv]) of one evaluation episode of MOTION from frame 0 until it
    terminates or ends (``initial``: qpos and qvel instead of the motion's initial state)."""
    obs, _ = env.reset(options={"motion": MOTION, "start": 0, **initial})
    actions, qpos, qvel = [], [env.sim.data.qpos.copy()], [env.sim.data.qvel.copy()]
    terminated = truncated = False
    while not (terminated or truncated):
        actions.append(policy.mean_action(obs))
        obs, _, terminated, truncated, _ = env.step(actions[-1])
        qpos.append(env.sim.data.qpos.copy()), qvel.append(env.sim.data.qvel.copy())
    return np.array(actions), np.array(qpos), np.array(qvel)


def split_attempts(items, step):
    """Consecutive runs of ``items`` whose ``step(item)`` increases (a reset starts the next run)."""
    runs = []
    for item in items:
        if not runs or step(item) <= step(runs[-1][-1]):
            runs.append([])
        runs[-1].append(item)
    return runs


def test_tracker_observation_equals_imitation_env():
    obs, _, qpos, sensordata = offline_run(30)
    tracker = GoalTracker(V1_MODEL, "imitation", [load_library("default")[MOTION]], {})
    results = [tracker.observe(qpos[k], sensordata[k], k / 30, step=7 + k) for k in range(16)]
    for k, result in enumerate(results[:14]):  # the attempt terminates at state 13 (kinesis eval's step 13)
        assert_array_equal(result.obs, obs[k])
        assert (result.frame, result.terminated, result.finished) == (k, k == 13, k == 13)
    # Then the motion starts over at frame 0 (without a reset of the simulation, from the state it is in).
    assert [(r.motion, r.frame, r.finished) for r in results[14:]] == [(MOTION, 0, False), (MOTION, 1, False)]
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
        self.state_log: list[SimState] = []  # in arrival order
        self.states: dict[int, SimState] = {}  # the first state of each step
        self.command_log: list[MuscleCommand] = []
        self.commands: dict[int, MuscleCommand] = {}  # the last command answering each step
        self.tracking: list[TrackingStatus] = []
        self.references: list[ReferenceMotion] = []
        self.node.create_subscription(SimState, "/kinesis/sim_state", self.on_state, ALL_STATES)
        self.node.create_subscription(MuscleCommand, "/kinesis/muscle_command", self.on_command, 1000)
        self.node.create_subscription(TrackingStatus, "/kinesis/tracking", self.tracking.append, 200)
        self.node.create_subscription(ReferenceMotion, "/kinesis/reference_motion", self.references.append, SIM_STATE_QOS)

    def on_state(self, msg: SimState) -> None:
        self.state_log.append(msg)
        self.states.setdefault(msg.step, msg)

    def on_command(self, msg: MuscleCommand) -> None:
        self.command_log.append(msg)
        self.commands[msg.state_step] = msg


@contextmanager
def running_nodes(tmp_path, client_class=None):
    """(client, start): ``start(module, params)`` runs ``python -P -m <module> --ros-args -p ...`` on the
    client's private localhost domain, ``start(CONTAINER, [], {plugin: params})`` a component container with
    those nodes, as the launch files do; every process is stopped at exit. ``client_class(domain_id,
    processes)``: another client than ``Client``."""
    domain_id, env = private_ros_environment(range(100, 200))
    processes = {}
    with ExitStack() as stack:
        client = (client_class or Client)(domain_id, processes)
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
        states, commands = len(client.state_log), len(client.command_log)
        assert client.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=[], seed=-1)).success
        client.spin_until(lambda: any(c.state_step == 0 for c in client.command_log[commands:]), "the answer to state 0")
        assert client.call(SetBool, "/sim_node/pause", SetBool.Request(data=False)).success
        # That attempt terminates (step 13); the node resets the sim to the motion's start for the next (24 steps).
        client.spin_until(lambda: len(split_attempts(client.state_log[states:], lambda m: m.step)) >= 3, "two attempts",
                          timeout=60.0)
        log = "".join(log.read_text() for _, log in client.processes.values())
    env = ImitationEnv(ImitationConfig.default(embodiment=V1_MODEL, evaluation=True), [load_library("default")[MOTION]])
    policy = load_policy(CHECKPOINT)
    offline = [offline_episode(env, policy, qpos=rest_qpos(env.model), qvel=np.zeros(env.model.nv)),
               offline_episode(env, policy)]
    state_runs = split_attempts(client.state_log[states:], lambda m: m.step)[:2]
    command_runs = split_attempts(client.command_log[commands:], lambda m: m.state_step)[:2]
    for (actions, qpos, qvel), state_run, command_run in zip(offline, state_runs, command_runs):
        # Every state until the terminating one, which the node does not answer: it resets the simulation.
        assert [m.step for m in state_run] == list(range(len(qpos)))
        assert [m.state_step for m in command_run] == list(range(len(actions)))
        for k, state in enumerate(state_run):
            assert_array_equal(np.array(state.qpos), qpos[k], err_msg=f"qpos of state {k}")
            assert_array_equal(np.array(state.qvel), qvel[k], err_msg=f"qvel of state {k}")
        for k, command in enumerate(command_run):
            assert_array_equal(np.array(command.values), actions[k].astype(np.float64), err_msg=f"action {k}")
    assert [len(a) for a, _, _ in offline] == [13, 24]  # both attempts terminate (mean tracked distance > 0.5 m)
    assert_array_equal(offline[1][1][0], env.initial_state(MOTION, 0)[0])  # the motion's start (an IK fit)
    assert {m.task for m in client.tracking} == {"imitation"} and {m.motion for m in client.tracking} == {MOTION}
    assert client.references and client.references[0].name == MOTION
    assert "rejected muscle command" not in log


@pytest.mark.ros
def test_playlist_motions_start_from_their_initial_state_and_end_as_in_eval(tmp_path, small_checkpoint):
    library = load_library("default")
    motions = [library["myosuite_walk_a"], library["myosuite_turn_left"].replace(qpos=None, embodiment=""),  # IK start
               library["stand_still"]]
    save_library(tmp_path / "playlist.npz", motions)
    sim = ["embodiment:=legs", "clock:=lockstep", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"]
    policy = ["embodiment:=legs", "task:=imitation", f"checkpoint:={small_checkpoint}",
              f"motion_library:={tmp_path / 'playlist.npz'}"]
    attempts = Attempts()
    with running_nodes(tmp_path) as (client, start):
        client.node.create_subscription(TrackingStatus, "/kinesis/tracking",
                                        lambda m: attempts.add(m.motion, m.frame, m.mpjpe_mm, m.terminated), 1000)
        start(CONTAINER, [], {"kinesis_sim_node.sim_node.SimNode": sim, "kinesis_policy_node.policy_node.PolicyNode": policy})
        client.spin_until(lambda: sum(a.complete for a in attempts.attempts) >= len(motions) + 1,
                          "every motion run once and the playlist wrapped around", timeout=60.0)
        log = client.processes[CONTAINER][1].read_text()
    env = ImitationEnv(evaluation_config(ImitationConfig.default(embodiment="legs")), motions)
    network = load_policy(small_checkpoint)
    # The table of `kinesis demo`: one row per motion, as kinesis eval computes it.
    rows = attempts.rows([m.name for m in motions])
    assert list(rows) == [m.name for m in motions]
    for motion in motions:
        attempt, count = rows[motion.name]
        expected = evaluate_motion(env, network.mean_action, motion.name)
        assert attempt.complete and count >= 1
        assert (attempt.steps, attempt.success, attempt.terminated) == (
            expected.frames_tracked + int(not expected.success), expected.success, not expected.success)
        assert attempt.mean_mpjpe_mm == pytest.approx(expected.mpjpe_mm, rel=1e-9)
    # Each attempt starts from its motion's initial state (the state after each reset), in playlist order.
    starts = [env.initial_state(m.name, 0) for m in motions]
    runs = split_attempts(client.state_log, lambda m: m.step)
    if runs[0][0].step != 0 or np.array_equal(runs[0][0].qpos, rest_qpos(env.model)):
        runs = runs[1:]  # the state the sim started with, before the first reset (or a run joined late)
    order = []
    for run in runs:
        matches = [i for i, (qpos, qvel) in enumerate(starts)
                   if np.array_equal(run[0].qpos, qpos) and np.array_equal(run[0].qvel, qvel)]
        assert run[0].step == 0 and len(matches) == 1, f"a run starting at step {run[0].step} from an unknown state"
        order.append(matches[0])
    assert len(order) >= len(motions) + 1 and order == [(order[0] + i) % len(motions) for i in range(len(order))]
    assert "rejected muscle command" not in log and "starts where the body is" not in log


@pytest.mark.ros
def test_checkpoint_size_mismatch_exits_with_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-P", "-m", POLICY, "--ros-args", "-p", "embodiment:=legs",
                             "-p", f"checkpoint:={CHECKPOINT}"], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, ROS_DOMAIN_ID="201", ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST"))
    assert result.returncode == 2
    assert "observation size 309" in result.stderr and "504" in result.stderr


@pytest.mark.ros
def test_realtime_sim_runs_the_playlist_without_resets(tmp_path, small_checkpoint):
    sim = ["embodiment:=legs", "clock:=realtime", "joint_state_rate_hz:=0.0", "muscle_state_rate_hz:=0.0"]
    policy = ["embodiment:=legs", "task:=imitation", f"checkpoint:={small_checkpoint}"]
    with running_nodes(tmp_path) as (client, start):
        start(CONTAINER, [], {"kinesis_sim_node.sim_node.SimNode": sim, "kinesis_policy_node.policy_node.PolicyNode": policy})
        client.spin_until(lambda: len(client.tracking) >= 10, "the policy to track in realtime")
        log = client.processes[CONTAINER][1].read_text()
    assert "the simulation runs the realtime clock: motions start where the body is" in log
    steps = [m.step for m in client.state_log]
    assert steps == sorted(steps)  # never reset

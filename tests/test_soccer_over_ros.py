"""The penalty kick over ROS: sim_node runs the soccer scene, policy_node kicks the ball the sim moves.

The soccer scene (kinesis_tasks.soccer) puts the ball's free joint after the legs_back kicker in
qpos/qvel. Expected ball values come from config/tasks.yaml (penalty spot) and MyoSuite's ball asset
(radius), not from the nodes; the policy node's use of the sim's ball shows in its published
reference (run-up toward the moved ball) and in the kick's success (ball placed in the goal).
"""

import subprocess
import sys

import mujoco
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from numpy.testing import assert_allclose, assert_array_equal
from std_srvs.srv import SetBool

from kinesis import launch_file
from kinesis_msgs.msg import MuscleCommand
from kinesis_msgs.srv import Reset
from kinesis_policy_node.tracking import GoalTracker
from kinesis_sim_node import rviz_markers
from kinesis_sim_node.component_container import parse_components
from kinesis_sim_node.scenes import load_scene
from kinesis_tasks import MuscleSim, load_embodiment, soccer
from kinesis_tasks.scene import SceneLayout, Shape, build_scene, set_pose
from kinesis_tasks.tasks import KickTask
from kinesis_tasks.tasks.base import capped_step, task_config
from test_policy_node import POLICY, SIM, running_nodes

KICKER = load_embodiment("legs_back")
NQ, NV = KICKER.nq, KICKER.nv
SPOT = task_config("soccer")["penalty_spot"]
RADIUS = soccer.read_ball_asset().radius
TARGET = np.array([12.0, 0.5, 0.5])
SOCCER_SIM = [SIM, ["embodiment:=legs_back", "scene:=soccer", "clock:=lockstep", "joint_state_rate_hz:=0.0",
                    "muscle_state_rate_hz:=0.0"]]


@pytest.fixture(scope="module")
def scene_model() -> mujoco.MjModel:
    return load_scene("legs_back", "soccer")


def with_ball(model: mujoco.MjModel, position) -> np.ndarray:
    """The scene's default qpos with the ball centre at ``position`` (upright)."""
    qpos = model.qpos0.copy()
    qpos[NQ:NQ + 7] = (*position, 1.0, 0.0, 0.0, 0.0)
    return qpos


def expected_root_reference(model: mujoco.MjModel, qpos: np.ndarray, ball: np.ndarray) -> np.ndarray:
    """[2] approach-phase root reference of the kick toward TARGET for the kicker posed at ``qpos``."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    root = data.xpos[model.body("root").id, :2]
    task = KickTask()
    return capped_step(root, task.run_up_point(ball[:2], TARGET), task.config.max_reference_step)


def test_scene_parameter_is_checked():
    assert load_scene("legs", "").nq == load_embodiment("legs").nq
    with pytest.raises(ValueError, match="'soccer' needs embodiment 'legs_back'.*'legs'"):
        load_scene("legs", "soccer")
    with pytest.raises(ValueError, match="scene must be one of.*'beach'"):
        load_scene("legs_back", "beach")
    result = subprocess.run([sys.executable, "-P", "-m", SIM, "--ros-args", "-p", "scene:=soccer"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "'soccer' needs embodiment 'legs_back'" in result.stderr


def test_tracker_takes_the_ball_from_a_soccer_state(scene_model):
    tracker = GoalTracker("legs_back", "kick", [], {"kick": TARGET}, ball=np.array([*SPOT, RADIUS]))
    data = mujoco.MjData(scene_model)
    ball = np.array([2.0, 1.5, RADIUS])
    qpos = with_ball(scene_model, ball)
    qvel = np.zeros(scene_model.nv)
    result = tracker.observe(qpos, data.sensordata, 0.0, step=0, qvel=qvel)
    assert result.obs.shape == (513,)  # the legs_back observation: the kinematic model is the embodiment
    pos, vel = tracker.last_reference
    assert_allclose(pos[0, :2], expected_root_reference(scene_model, qpos, ball), atol=1e-12)
    head = tracker.layout.tracked_names.index("head")
    data.qpos[:] = qpos
    mujoco.mj_kinematics(scene_model, data)
    assert_allclose(pos[head], data.xpos[scene_model.body("head").id], atol=1e-12)  # kept where it is
    assert_array_equal(vel[head], 0.0)

    static = GoalTracker("legs_back", "kick", [], {"kick": TARGET}, ball=np.array([*SPOT, RADIUS]))
    static.observe(qpos[:NQ], data.sensordata, 0.0, step=0)
    assert_allclose(static.last_reference[0][0, :2],
                    expected_root_reference(scene_model, qpos, np.array([*SPOT, RADIUS])), atol=1e-12)

    in_goal = tracker.observe(with_ball(scene_model, [12.5, -2.0, RADIUS]), data.sensordata, 0.0, step=0, qvel=qvel)
    assert in_goal.success and in_goal.terminated  # step 0 again: a reset, the ball is in the goal
    with pytest.raises(ValueError, match="qvel: a state with a ball needs 58"):
        tracker.observe(qpos, data.sensordata, 0.1, step=1, qvel=qvel[:NV])
    with pytest.raises(ValueError, match="qpos: expected 53 values.*60 with a ball"):
        tracker.observe(qpos[:-1], data.sensordata, 0.1, step=1, qvel=qvel)


def test_viz_draws_the_ball(scene_model):
    data = mujoco.MjData(scene_model)
    set_pose(scene_model, data, with_ball(scene_model, [3.0, -1.0, RADIUS]))
    scene = build_scene(SceneLayout.from_model(scene_model), data, muscles=False)
    ball = np.flatnonzero(scene.primitives.geom_id == scene_model.geom("ball_geom").id)
    assert len(ball) == 1 and scene.primitives.kind[ball[0]] == Shape.ELLIPSOID
    assert_allclose(scene.primitives.pos[ball[0]], [3.0, -1.0, RADIUS])
    assert_allclose(scene.primitives.size[ball[0]], [2 * RADIUS] * 3)
    markers = [m for m in rviz_markers.marker_array(scene, Time()).markers
               if m.ns == "geoms" and m.type == m.SPHERE and abs(m.scale.x - 2 * RADIUS) < 1e-9]
    assert [(m.pose.position.x, m.pose.position.y) for m in markers] == [(3.0, -1.0)]


def test_ball_kick_launch_runs_the_soccer_scene():
    plan = launch_file.load_launch(launch_file.resolve_launch_file("ball_kick"), {"headless": "true"})
    cmds = {p.name: p.cmd for p in plan.processes}
    container = cmds.pop("control_container")
    (sim_plugin, sim), (policy_plugin, policy) = parse_components(list(container[container.index("-m") + 2:]))[0]
    assert sim_plugin.endswith("SimNode") and policy_plugin.endswith("PolicyNode")
    for args in (sim, cmds["viz_node"], policy):
        assert "embodiment:=legs_back" in args
    assert "scene:=soccer" in sim and "scene:=soccer" in cmds["viz_node"]
    assert "task:=kick" in policy


@pytest.mark.ros
def test_sim_node_soccer_state_carries_the_ball(tmp_path, scene_model):
    actions = np.random.default_rng(3).uniform(-1.0, 1.0, (3, KICKER.nu))
    with running_nodes(tmp_path) as (client, start):
        start(*SOCCER_SIM)
        client.spin_until(lambda: 0 in client.states, "sim_node's first state")
        first = client.states[0]
        assert (len(first.qpos), len(first.qvel), first.embodiment) == (NQ + 7, NV + 6, "legs_back")
        assert_array_equal(np.asarray(first.qpos)[NQ:NQ + 7], [*SPOT, RADIUS, 1.0, 0.0, 0.0, 0.0])
        assert_array_equal(np.asarray(first.qvel)[NV:], 0.0)
        commands = client.node.create_publisher(MuscleCommand, "/kinesis/muscle_command", 10)
        client.spin_until(lambda: commands.get_subscription_count() > 0, "sim_node to subscribe")
        for k, action in enumerate(actions):
            commands.publish(MuscleCommand(state_step=k, embodiment="legs_back", mode="target_length", values=action.tolist()))
            client.spin_until(lambda: k + 1 in client.states, f"state {k + 1}")
    offline = MuscleSim(scene_model, control_mode="target_length")
    for action in actions:
        offline.step(action)
    assert_array_equal(np.asarray(client.states[len(actions)].qpos), offline.data.qpos)
    assert_array_equal(np.asarray(client.states[len(actions)].qvel), offline.data.qvel)


@pytest.mark.ros
def test_kick_policy_uses_the_ball_of_the_soccer_sim(tmp_path, scene_model):
    with running_nodes(tmp_path) as (client, start):
        start(*SOCCER_SIM)
        start(POLICY, ["embodiment:=legs_back", "task:=kick", f"kick_target:=[{TARGET[0]}, {TARGET[1]}]"])
        client.spin_until(lambda: client.tracking and client.references, "the policy to run", timeout=60.0)
        assert client.call(SetBool, "/sim_node/pause", SetBool.Request(data=True)).success
        client.spin_for(0.3)

        def reset_and_answer(ball):
            """Reset the paused sim with the ball at ``ball``; the policy's reference and tracking of state 0."""
            client.references.clear(), client.tracking.clear()
            qpos = with_ball(scene_model, ball)
            assert client.call(Reset, "/sim_node/reset", Reset.Request(motion="", qpos=qpos.tolist(), seed=-1)).success
            at_zero = lambda msgs: [m for m in msgs if (m.header.stamp.sec, m.header.stamp.nanosec) == (0, 0)]
            client.spin_until(lambda: at_zero(client.references) and at_zero(client.tracking), "the policy's answer")
            return qpos, at_zero(client.references)[-1], at_zero(client.tracking)[-1]

        ball = np.array([2.0, 1.5, RADIUS])
        qpos, reference, tracking = reset_and_answer(ball)
        assert (reference.name, tracking.task) == ("kick_goal", "kick")
        root = np.asarray(reference.keypoints)[:2]  # frame 0, body 0 (root): x, y
        assert_allclose(root, expected_root_reference(scene_model, qpos, ball), atol=1e-9)
        assert not tracking.success
        _, _, tracking = reset_and_answer([12.5, -2.0, RADIUS])  # in the goal (MyoChallenge box)
        assert tracking.success and tracking.terminated

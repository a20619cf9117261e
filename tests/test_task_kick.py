"""Penalty kick: the soccer scene, the MyoChallenge scoring rule and the kick reference."""

import mujoco
import numpy as np
import pytest

from kinesis_tasks import observations, soccer
from kinesis_tasks.embodiment import muscle_actuators
from kinesis_tasks.tasks import GoalMouth, KickTask, TaskState, ball_in_goal, state_from_data
from kinesis_tasks.tasks.kick import KickConfig

MOUTH = GoalMouth(line_x=12.0, centre_y=0.0, half_width=3.3, height=2.2)
POSE = np.array([[0.0, 0.0, 0.95], [0.0, 0.09, 0.45], [0.0, -0.09, 0.45], [0.0, 0.09, 0.07],
                 [0.0, -0.09, 0.07], [0.15, 0.09, 0.02], [0.15, -0.09, 0.02]])


@pytest.fixture(scope="module")
def scene():
    model, layout = soccer.build_soccer_model(goalkeeper=True)
    return model, layout


def state(root_xy, ball, ball_vel=(0.0, 0.0, 0.0), time=0.0):
    return TaskState(body_pos=POSE + [*root_xy, 0.0], body_vel=np.zeros((7, 3)), heading=0.0, time=time,
                     ball_pos=np.asarray(ball, float), ball_vel=np.asarray(ball_vel, float))


def test_scene_has_290_muscles_a_free_ball_and_the_goal_11m_away(scene):
    model, layout = scene
    assert len(muscle_actuators(model)) == 290 and model.nu == 290
    joint = model.body(soccer.BALL_BODY).jntadr[0]
    assert model.jnt_type[joint] == mujoco.mjtJoint.mjJNT_FREE
    assert layout.ball_qposadr == model.nq - 7  # the ball comes after the embodiment's 53 qpos
    geom = model.geom("ball_geom")
    assert geom.size[0] == pytest.approx(0.117) and model.body_mass[layout.ball_body] == pytest.approx(0.45)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    ball, _ = soccer.ball_state(layout, data)
    np.testing.assert_allclose(ball, [1.0, 0.0, 0.117])
    assert layout.goal_line_x - ball[0] == pytest.approx(11.0)
    # Goal posts (left/right meshes) start at the goal line; the kicker faces +x with feet on the floor.
    left = model.geom("goal_left").id
    assert data.geom_xpos[left][0] > layout.goal_line_x - 0.5
    toes_r, toes_l = data.xpos[model.body("toes_r").id], data.xpos[model.body("toes_l").id]
    assert toes_r[1] < toes_l[1] and toes_r[0] > 0.0  # right foot on the -y side when facing +x
    assert soccer.set_goalkeeper(layout, data, 5.0) == pytest.approx(3.3)
    # The observation layout still finds the kicker (the ball's free joint is not the root).
    task_state = state_from_data(observations.body_layout(model), data, ball_pos=ball, ball_vel=np.zeros(3))
    assert task_state.heading == pytest.approx(0.0, abs=1e-6)  # facing the goal
    np.testing.assert_allclose(task_state.body_pos[6], toes_r)
    assert KickTask(KickConfig(), GoalMouth.from_config()).phase(task_state, np.array([12.0, 0.0, 1.0])) == "approach"


def test_ball_asset_values_read_from_myosuite():
    ball = soccer.read_ball_asset()
    assert (ball.radius, ball.mass, ball.condim) == (0.117, 0.45, 6)


@pytest.mark.parametrize("position, scored", [
    ((12.2, 0.0, 0.117), True),    # inside
    ((12.0, 3.2, 2.1), True),      # on the line, inside the scoring box corner
    ((12.3, 3.5, 0.117), False),   # wide
    ((12.3, -4.0, 1.0), False),    # wide on the other side
    ((12.3, 0.0, 2.4), False),     # over the bar
    ((11.9, 0.0, 0.117), False),   # not yet crossed
])
def test_success_detection_by_placing_the_ball(scene, position, scored):
    model, layout = scene
    data = mujoco.MjData(model)
    soccer.place_ball(layout, data, np.array(position))
    mujoco.mj_forward(model, data)
    ball_pos, ball_vel = soccer.ball_state(layout, data)
    task = KickTask(KickConfig(), GoalMouth.from_config())
    assert task.success(state((0.0, 0.0), ball_pos, ball_vel), np.array([12.0, 0.0, 1.0])) is scored
    assert ball_in_goal(np.array(position), MOUTH) is scored


def test_ball_rolled_into_the_goal_is_scored(scene):
    model, layout = scene
    data = mujoco.MjData(model)
    soccer.place_ball(layout, data, np.array([10.0, 1.0, 0.117]), velocity=np.array([8.0, 0.0, 0.0]))
    for _ in range(75):  # 0.5 s at 150 Hz
        mujoco.mj_step(model, data)
    ball, _ = soccer.ball_state(layout, data)
    assert ball_in_goal(ball, GoalMouth.from_config()), ball


def test_vectorized_rule():
    balls = np.array([[12.5, 0.0, 0.5], [12.5, 0.0, -0.1], [11.0, 0.0, 0.5]])
    np.testing.assert_array_equal(ball_in_goal(balls, MOUTH), [True, False, False])


def test_reference_phases_aim_the_kicking_toe_through_the_ball():
    task = KickTask(KickConfig(kicking_foot="right", approach_distance=0.6, lateral_offset=0.12, kick_radius=0.25,
                               plant_back=0.1, follow_through=0.3, kick_speed=6.0, max_reference_step=0.5), MOUTH)
    ball, target = np.array([1.0, 0.0, 0.117]), np.array([12.0, 2.0, 1.0])
    u = (target[:2] - ball[:2]) / np.linalg.norm(target[:2] - ball[:2])
    left = np.array([-u[1], u[0]])
    run_up = ball[:2] - 0.6 * u + 0.12 * left
    np.testing.assert_allclose(task.run_up_point(ball[:2], target), run_up)
    far = state((-2.0, 0.0), ball)
    assert task.phase(far, target) == "approach"
    ref_pos, _ = task.reference(far, target)
    step = run_up - [-2.0, 0.0]
    np.testing.assert_allclose(ref_pos[0, :2], [-2.0, 0.0] + 0.5 * step / np.linalg.norm(step))
    np.testing.assert_array_equal(ref_pos[6], far.body_pos[6])
    near = state(run_up + [0.1, 0.0], ball)
    assert task.phase(near, target) == "kick"
    ref_pos, ref_vel = task.reference(near, target)
    np.testing.assert_allclose(ref_pos[6], [*(ball[:2] + 0.3 * u), 0.117])  # right toe past the ball
    np.testing.assert_allclose(ref_vel[6], [*(6.0 * u), 0.0])
    np.testing.assert_array_equal(ref_pos[5], near.body_pos[5])  # left toe stays
    kicked = state(run_up, ball, ball_vel=(5.0, 1.0, 0.0))
    assert task.phase(kicked, target) == "after"
    np.testing.assert_allclose(task.reference(kicked, target)[0], kicked.body_pos)


def test_rewards_follow_the_ball_and_the_toe():
    task = KickTask(KickConfig(k_reach=2.0, ball_speed_scale=10.0), MOUTH)
    target = np.array([12.0, 0.0, 1.0])
    previous = state((0.0, 0.0), (1.0, 0.0, 0.117), time=0.0)
    now = state((0.0, 0.0), (1.5, 0.0, 0.117), ball_vel=(15.0, 0.0, 0.0), time=0.1)
    terms = task.reward(previous, now, target)
    moved = np.linalg.norm(target - [1.0, 0.0, 0.117]) - np.linalg.norm(target - [1.5, 0.0, 0.117])
    assert terms["ball_progress"] == pytest.approx(moved / 0.1 / 10.0)
    toe = POSE[6]
    assert terms["reach_ball"] == pytest.approx(np.exp(-2.0 * np.linalg.norm(toe - [1.5, 0.0, 0.117])))
    assert terms["goal"] == 0.0
    scored = state((0.0, 0.0), (12.3, 0.0, 0.5), time=1.0)
    assert task.success(scored, target) and task.done(scored, target)
    with pytest.raises(ValueError, match="ball_pos"):
        task.reference(TaskState(body_pos=POSE, body_vel=np.zeros((7, 3)), heading=0.0, time=0.0), target)

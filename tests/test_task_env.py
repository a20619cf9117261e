"""TaskEnv / VectorTaskEnv: the imitation policy's observation with a task reference, reward, termination,
success and seeded goals, checked against independent computations."""

from dataclasses import replace

import numpy as np
import pytest

from kinesis_tasks.controllers import hold_pose_action
from kinesis_tasks.evaluation import goal_rng
from kinesis_tasks.embodiment import rest_qpos
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.tasks import DirectionalTask, GoalMouth, ReachTask, Twist, ball_in_goal
from kinesis_tasks.task_env import TaskEnv, TwistSchedule, VectorTaskEnv

K = 7  # tracked leg keypoints (legs)
START_HEADING = -np.pi / 2  # MyoLegs faces its local -y axis; qpos0 has the identity orientation


@pytest.fixture(scope="module")
def reach() -> TaskEnv:
    return TaskEnv("reach")


@pytest.fixture(scope="module")
def kick() -> TaskEnv:
    return TaskEnv("kick")


def ahead(env: TaskEnv, distance: float) -> np.ndarray:
    """The floor point ``distance`` m straight ahead of the standing start."""
    root = env.start_state.root_pos
    return np.array([root[0], root[1] - distance, 0.0])


def test_observation_sizes_equal_the_imitation_envs(reach, kick):
    legs = ImitationEnv(ImitationConfig.default(embodiment="legs"))
    back = ImitationEnv(ImitationConfig.default(embodiment="legs_back"))
    assert reach.observation_space == legs.observation_space and reach.observation_space.shape == (504,)
    assert reach.action_space == legs.action_space
    assert kick.observation_space == back.observation_space and kick.observation_space.shape == (513,)
    assert kick.action_space.shape == (290,)
    assert "soccer_ball" in [kick.model.body(i).name for i in range(kick.model.nbody)]
    assert "soccer_ball" not in kick.layout.body_names and kick.layout.tracked_names[1] == "head"
    obs, _ = kick.reset(seed=0)
    assert obs.shape == (513,) and obs.dtype == np.float32


def test_same_physics_and_proprioception_as_the_imitation_env(reach):
    imitation = ImitationEnv(ImitationConfig.default(embodiment="legs"), model=reach.model)
    motion = imitation.motion_names[0]
    start = {"qpos": rest_qpos(reach.model), "qvel": np.zeros(reach.model.nv)}  # the task's standing start
    task_obs, _ = reach.reset(options={"goal": ahead(reach, 2.0)})
    imitation_obs, _ = imitation.reset(options={"motion": motion, "start": 0, **start})
    size = imitation.layout.proprioception_size
    np.testing.assert_array_equal(task_obs[:size], imitation_obs[:size])
    action = np.random.default_rng(0).uniform(-1, 1, reach.action_space.shape)
    for _ in range(3):
        task_obs, *_ = reach.step(action)
        imitation_obs, *_ = imitation.step(action)
    np.testing.assert_array_equal(task_obs[:size], imitation_obs[:size])


def test_reach_gait_reference_in_the_observation(reach):
    """The planned walk begins with the start clip's still lead, placed at the body: no pull ahead yet."""
    obs, _ = reach.reset(options={"goal": ahead(reach, 2.0)})
    task = obs[reach.layout.proprioception_size:].reshape(3, K, 3)
    assert np.linalg.norm(task[0, 0, :2]) < 0.1 and np.abs(task[1, 0]).max() < 0.1


def test_reach_point_reference_in_the_observation():
    reach = TaskEnv("reach")
    reach.task = ReachTask(replace(reach.task.config, reference="point"), dt=reach.dt)
    obs, _ = reach.reset(options={"goal": ahead(reach, 2.0)})
    task = obs[reach.layout.proprioception_size:].reshape(3, K, 3)  # diff pos, diff vel, local ref pos
    # Heading frame = world frame at qpos0. Root reference: 0.5 m (max_reference_step) toward the goal, moving
    # at the cruise speed 1.2 m/s (beyond the 1 m slowdown radius); the other keypoints stay, at rest.
    np.testing.assert_allclose(task[0, 0], [0.0, -0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(task[0, 1:], 0.0, atol=1e-6)
    np.testing.assert_allclose(task[1, 0], [0.0, -1.2, 0.0], atol=1e-6)
    np.testing.assert_allclose(task[1, 1:], 0.0, atol=1e-6)


def test_head_reference_stays_where_the_head_is(kick):
    obs, _ = kick.reset(options={"goal": np.array([12.0, 1.0, 1.0])})
    diff_pos = obs[kick.layout.proprioception_size:].reshape(3, 8, 3)[0]
    assert np.linalg.norm(diff_pos[0]) > 0.1  # the root heads for the run-up point behind the ball
    np.testing.assert_allclose(diff_pos[1], 0.0, atol=1e-6)  # head (tracked second) kept in place


def test_goal_under_the_pelvis_succeeds_at_the_first_step(reach):
    reach.reset(options={"goal": reach.start_state.root_pos})
    _, reward, terminated, truncated, info = reach.step(np.zeros(reach.action_space.shape))
    assert terminated and not truncated
    assert info["success"] and info["episode_success"] == 1.0 and info["outcome"] == "success"
    assert info["reward/success"] == 1.0 and info["goal_distance_m"] < 0.05
    terms = {name: info[f"reward/{name}"] for name in ("progress", "imitation", "success")}
    assert reward == pytest.approx(terms["progress"] + 0.2 * terms["imitation"] + terms["success"])


def test_far_goal_no_success_then_a_fall_ends_the_episode(reach):
    reach.reset(options={"goal": ahead(reach, 100.0)})
    infos, terminated, truncated = [], False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = reach.step(np.zeros(reach.action_space.shape))  # no balance: falls
        infos.append(info)
    assert terminated and not truncated and infos[-1]["outcome"] == "fall"
    assert not any(i["success"] for i in infos) and all(i["episode_success"] == 0.0 for i in infos)
    assert all(i["outcome"] == "" for i in infos[:-1])
    assert reach.sim.data.xpos[reach.model.body("root").id, 2] < 0.5  # fall_height
    assert infos[0]["goal_distance_m"] == pytest.approx(100.0, abs=0.05)


def test_time_limit_truncates():
    env = TaskEnv("reach", max_time=0.1)  # 3 control steps of 1/30 s
    env.reset(options={"goal": ahead(env, 3.0)})
    ends = [env.step(np.zeros(env.action_space.shape))[2:] for _ in range(3)]
    assert [(terminated, truncated) for terminated, truncated, _ in ends] == [(False, False)] * 2 + [(False, True)]
    assert ends[-1][2]["outcome"] == "time limit" and ends[-1][2]["episode_success"] == 0.0


def test_directional_success_is_tracking_the_command_to_the_time_limit():
    env = TaskEnv("directional", max_time=0.2)
    command = Twist(1.5, 0.0, 0.0)
    world_command = 1.5 * np.array([np.cos(START_HEADING), np.sin(START_HEADING)])

    def episode(tolerance: float) -> tuple[float, list[float]]:
        env.task = DirectionalTask(replace(env.task.config, velocity_tolerance=tolerance), dt=env.dt)
        env.reset(options={"goal": command})
        root = env.model.body("root").id
        errors, truncated, start = [], False, env.sim.data.xpos[root, :2].copy()
        while not truncated:
            _, _, terminated, truncated, info = env.step(hold_pose_action(env.model))
            assert not terminated
            # The walking velocity: the root's mean since the start (the 1 s window is longer than the episode).
            root_vel = (env.sim.data.xpos[root, :2] - start) / (len(errors) + 1) / env.dt
            errors.append(np.linalg.norm(root_vel - world_command))  # the heading stays ~START_HEADING for 0.2 s
            assert info["velocity_error_mps"] == pytest.approx(errors[-1], abs=1e-6)
        assert info["outcome"] == "time limit" and env.episode_metric == pytest.approx(np.mean(errors), abs=0.05)
        return info["episode_success"], errors

    _, errors = episode(0.3)
    mean = np.mean(errors)
    assert episode(mean + 0.1)[0] == 1.0 and episode(mean - 0.1)[0] == 0.0


def test_twist_schedule_switches_commands():
    schedule = TwistSchedule((0.0, 2.0), (Twist(1.0), Twist(0.0, 0.0, 0.5)))
    assert schedule.at(0.0) == Twist(1.0) and schedule.at(1.99) == Twist(1.0) and schedule.at(2.0).angular_z == 0.5
    with pytest.raises(ValueError, match="increasing from 0 s"):
        TwistSchedule((0.5,), (Twist(),))


@pytest.mark.parametrize("ball, outcome", [((12.6, 1.0, 0.5), "success"), ((12.6, 5.0, 0.5), "wide")])
def test_kick_ends_when_the_ball_crosses_the_line(kick, ball, outcome):
    qpos = kick.model.qpos0.copy()
    adr = kick.scene.soccer.ball_qposadr
    qpos[adr:adr + 3] = ball
    kick.reset(options={"goal": np.array([12.0, 1.0, 0.5]), "qpos": qpos, "qvel": np.zeros(kick.model.nv)})
    _, _, terminated, truncated, info = kick.step(np.zeros(kick.action_space.shape))
    assert terminated and not truncated and info["outcome"] == outcome
    assert info["success"] == (outcome == "success") and info["episode_success"] == float(outcome == "success")
    assert info["reward/goal"] == float(outcome == "success")
    ball_now = kick.sim.data.qpos[adr:adr + 3]
    assert info["ball_target_distance_m"] == pytest.approx(np.linalg.norm(ball_now - [12.0, 1.0, 0.5]))


def test_seeded_goal_sets_are_reproducible_and_in_range(reach, kick):
    def goal_set(env, seed, n=5):
        return [env.sample_goal(goal_rng(seed, i)) for i in range(n)]

    same, other = goal_set(reach, 7), goal_set(reach, 8)
    np.testing.assert_array_equal(goal_set(reach, 7), same)
    assert not np.allclose(same, other)
    np.testing.assert_array_equal(goal_set(reach, 7, 2), same[:2])  # a larger set extends a smaller one
    offsets = np.array(same)[:, :2] - reach.start_state.root_pos[:2]
    distance = np.linalg.norm(offsets, axis=1)
    bearing = np.arctan2(offsets[:, 1], offsets[:, 0]) - START_HEADING
    assert np.all((distance >= 1.0) & (distance <= 4.0)) and np.all(np.abs(bearing) <= np.pi / 2)
    targets = np.array(goal_set(kick, 7))
    assert np.all(targets[:, 0] == 12.0) and np.all(ball_in_goal(targets, GoalMouth(line_x=12.0)))
    directional = TaskEnv("directional", max_time=20.0)
    schedule = directional.sample_goal(goal_rng(0, 0))
    assert schedule.start_times[0] == 0.0 and schedule.start_times[-1] < 20.0
    assert all(np.hypot(t.linear_x, t.linear_y) <= 1.5 and abs(t.angular_z) <= 0.5 for t in schedule.twists)


def test_training_resets_draw_goals_from_the_seed(reach):
    goal = lambda seed: reach.reset(seed=seed)[1]["goal"]["point"]  # noqa: E731
    assert goal(3) == goal(3) and goal(3) != goal(4)


def test_vector_env_equals_single_envs():
    vec = VectorTaskEnv(2, "reach")
    singles = [TaskEnv("reach", scene=vec.backend.envs[0].scene) for _ in range(2)]
    obs, _ = vec.reset(seed=5)
    np.testing.assert_array_equal(obs, np.stack([env.reset(seed=5 + i)[0] for i, env in enumerate(singles)]))
    actions = np.random.default_rng(1).uniform(-1, 1, (2, vec.single_action_space.shape[0]))
    obs, rewards, _, _, infos = vec.step(actions)
    steps = [env.step(action) for env, action in zip(singles, actions)]
    np.testing.assert_array_equal(obs, np.stack([s[0] for s in steps]))
    np.testing.assert_array_equal(rewards, [s[1] for s in steps])
    assert list(infos["goal_distance_m"]) == [s[4]["goal_distance_m"] for s in steps]


def test_bad_task_embodiment_and_goal_are_clear_errors():
    with pytest.raises(ValueError, match="task must be one of"):
        TaskEnv("swim")
    with pytest.raises(ValueError, match="legs_back"):
        TaskEnv("kick", ImitationConfig.default(embodiment="legs"))
    with pytest.raises(ValueError, match="max_time must be > 0"):
        TaskEnv("reach", max_time=0.0)
    env = TaskEnv("directional")
    with pytest.raises(ValueError, match="Twist or TwistSchedule"):
        env.reset(options={"goal": np.zeros(3)})
    with pytest.raises(ValueError, match="unknown keys"):
        env.reset(options={"motion": "walk"})


def test_a_directional_episode_that_falls_is_a_fall_even_at_the_commanded_velocity():
    env = TaskEnv("directional")
    state = env.start_state
    fallen = replace(state, body_pos=state.body_pos - [0.0, 0.0, 0.6])  # root 0.35 m up: below fall_height
    assert env._outcome(fallen, True, True, False) == "fall"  # velocity matched at that step: still a fall
    assert TaskEnv("reach")._outcome(fallen, True, True, False) == "success"  # reach ends on success first

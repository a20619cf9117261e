"""ImitationEnv, VectorImitationEnv and the IK initial pose, against independent computations."""

from functools import cache

import mujoco
import numpy as np
import pytest

from kinesis_tasks import load_embodiment, observations, rewards
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.initial_pose import PoseFitter
from kinesis_tasks.motions import DEFAULT_BODIES, ReferenceMotion, load_library
from kinesis_tasks.vector_env import VectorImitationEnv

from conftest import V1_MODEL

EVAL = dict(evaluation=True)


@pytest.fixture(scope="module")
def library() -> dict[str, ReferenceMotion]:
    return load_library("default")


def cut(motion: ReferenceMotion, frames: int, **changes) -> ReferenceMotion:
    """The first ``frames`` frames of a motion (qpos and root_quat cut alike)."""
    optional = {k: getattr(motion, k)[:frames] for k in ("qpos", "root_quat") if getattr(motion, k) is not None}
    return motion.replace(keypoints=motion.keypoints[:frames], **optional, **changes)


@pytest.fixture(scope="module")
def short(library) -> list[ReferenceMotion]:
    """Two 12-frame motions (11 control steps) with qpos for ``legs`` and a head keypoint."""
    return [cut(library["myosuite_walk_a"], 12, name="walk"), cut(library["gaitanalysis_turn_left"], 12, name="turn")]


@cache
def model_of(embodiment: str) -> mujoco.MjModel:
    return load_embodiment(embodiment)


def env_for(embodiment, motions, **overrides) -> ImitationEnv:
    """An env on a model compiled once per test module (envs only read it)."""
    return ImitationEnv(ImitationConfig(embodiment=embodiment, **overrides), motions, model=model_of(embodiment))


def ref_at(motion: ReferenceMotion, frame: int, bodies=DEFAULT_BODIES) -> tuple[np.ndarray, np.ndarray]:
    index = [motion.body_names.index(b) for b in bodies]
    return motion.keypoints[frame, index], np.gradient(motion.keypoints, 1 / motion.fps, axis=0)[frame, index]


def tracked_xpos(env: ImitationEnv) -> np.ndarray:
    return env.sim.data.xpos[env.layout.body_ids[env.layout.tracked]]


def test_config_yaml_mirrors_dataclass_defaults():
    assert ImitationConfig.default() == ImitationConfig()
    assert ImitationConfig.default().termination.distance == 0.15
    assert ImitationConfig(evaluation=True).termination.distance == 0.5
    with pytest.raises(ValueError, match="unknown keys"):
        ImitationConfig.from_dict({"embodyment": "legs"})


@pytest.mark.parametrize(
    "embodiment, obs_size, nu, tracked",
    [("legs", 504, 80, 7), ("legs_abs", 513, 86, 8), ("legs_back", 513, 290, 8)],
)
def test_runs_on_every_embodiment(short, embodiment, obs_size, nu, tracked):
    env = env_for(embodiment, short)
    assert env.observation_space.shape == (obs_size,) and env.action_space.shape == (nu,)
    assert len(env.layout.tracked) == tracked
    obs, info = env.reset(seed=1)
    motion = {m.name: m for m in short}[info["motion"]]
    bodies = ("root", "head", *DEFAULT_BODIES[1:]) if tracked == 8 else DEFAULT_BODIES
    # The initial pose reproduces the reference keypoints: exactly from qpos (legs), by IK otherwise.
    error = np.abs(tracked_xpos(env) - ref_at(motion, int(info["frame"]), bodies)[0]).max()
    assert error < (1e-9 if embodiment == "legs" else 5e-3)
    rng = np.random.default_rng(0)
    for _ in range(3):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, nu))
        assert obs.shape == (obs_size,) and obs.dtype == np.float32 and np.all(np.isfinite(obs))
        assert np.isfinite(reward)


def translating_motion(model: mujoco.MjModel, fps: float, frames: int, speed: float = 0.5) -> ReferenceMotion:
    """The tracked bodies of the model at qpos0, translated along x at ``speed`` m/s."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    ids = [model.body(name).id for name in DEFAULT_BODIES]
    shift = np.zeros((frames, 1, 3))
    shift[:, 0, 0] = speed * np.arange(frames) / fps
    return ReferenceMotion(name="translate", fps=fps, keypoints=data.xpos[ids][None] + shift)


def test_v1_model_first_observation_equals_observations_full(v1_model):
    motion = translating_motion(v1_model, fps=60.0, frames=20)
    env = env_for(str(V1_MODEL), [motion], **EVAL)
    assert env.observation_space.shape == (309,)
    obs, info = env.reset(seed=0)
    assert info["frame"] == 0.0 and env.max_episode_steps == 9  # 19 frames at 60 fps, 2 frames per step
    np.testing.assert_allclose(tracked_xpos(env), motion.keypoints[0], atol=2e-3)  # IK fit
    # Independently: the observation at reset holds the reference one control step ahead (frame 2 at 60 fps).
    ref_pos, ref_vel = ref_at(motion, 2)
    expected = observations.full(env.model, env.sim.data, ref_pos, ref_vel, layout=observations.body_layout(env.model))
    assert obs.shape == (309,)
    np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-6)


def test_step_reward_observation_timing_and_staleness(short):
    env = env_for("legs", short)
    motion = short[0]
    env.reset(seed=0, options={"motion": motion.name, "start": 3})
    rng = np.random.default_rng(1)
    for t in (1, 2):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 80))
        data = env.sim.data
        # Reward terms against the reference at t dt (frame 3 + t), computed independently.
        ref_pos, ref_vel = ref_at(motion, 3 + t)
        terms = rewards.reward_terms(env.model, data, ref_pos, ref_vel, env.sim.substep_controls, layout=env.layout)
        for name, value in terms.items():
            assert info[f"reward/{name}"] == pytest.approx(value, rel=1e-12)
        scales = ImitationConfig().reward.scales
        assert reward == pytest.approx(sum(scales[name] * info[f"reward/{name}"] for name in terms), rel=1e-12)
        assert info["frame"] == pytest.approx(3 + t) and info["step"] == t
        distance = np.linalg.norm(tracked_xpos(env) - ref_pos, axis=1).mean()
        assert info["tracking_distance"] == pytest.approx(distance) and info["mpjpe_mm"] == pytest.approx(1000 * distance)
        # The observation uses the reference at (t + 1) dt.
        next_pos, next_vel = ref_at(motion, 4 + t)
        np.testing.assert_allclose(obs, observations.full(env.model, data, next_pos, next_vel, layout=env.layout), atol=1e-6)
    # README 2.6: body poses are current, the sensor vector is one sub-step stale.
    fresh = mujoco.MjData(env.model)
    fresh.qpos[:], fresh.qvel[:], fresh.act[:] = data.qpos, data.qvel, data.act
    mujoco.mj_forward(env.model, fresh)
    np.testing.assert_allclose(data.xpos, fresh.xpos, atol=1e-12)
    assert not np.allclose(data.sensordata, fresh.sensordata)


def shifted(motion: ReferenceMotion, dx: float) -> ReferenceMotion:
    return motion.replace(keypoints=motion.keypoints + np.array([dx, 0.0, 0.0]))


def test_termination_by_tracking_distance(short):
    far, near, mid = (shifted(short[0], dx).replace(name=name) for name, dx in (("far", 1.0), ("near", 0.05), ("mid", 0.3)))
    train = env_for("legs", [far, near, mid])  # the initial state comes from qpos, so the body starts dx away
    evaluation = env_for("legs", [far, near, mid], **EVAL)
    zero = np.zeros(80)
    expected = {("far", False): True, ("near", False): False, ("mid", False): True,
                ("far", True): True, ("near", True): False, ("mid", True): False}
    distance = {}
    for (name, is_eval), should_end in expected.items():
        env = evaluation if is_eval else train
        env.reset(seed=0, options={"motion": name, "start": 0})
        _, _, terminated, truncated, info = env.step(zero)
        assert terminated == should_end, (name, is_eval, info["tracking_distance"])
        assert not truncated
        distance[name] = info["tracking_distance"]
    assert distance["far"] == pytest.approx(1.0, abs=0.1) and distance["mid"] == pytest.approx(0.3, abs=0.1)


@pytest.mark.parametrize("fps, frames, steps", [(30.0, 6, 5), (25.0, 10, 10), (60.0, 9, 4)])
def test_truncation_at_motion_end(short, fps, frames, steps):
    motion = cut(short[0], frames, fps=fps, name="end")
    env = env_for("legs", [motion], **EVAL)
    env.reset(seed=0)
    assert env.max_episode_steps == steps
    for t in range(1, steps + 1):
        _, _, terminated, truncated, info = env.step(np.zeros(80))
        assert not terminated
        assert truncated == (t == steps)
        assert info["frame"] == pytest.approx(t * fps / 30.0)


def test_seeded_resets_and_rollouts_are_reproducible(library):
    motions = [library[name] for name in ("myosuite_walk_a", "myosuite_start", "stand_still")]
    env = env_for("legs", motions)
    actions = np.random.default_rng(2).uniform(-1, 1, (4, 80))

    def rollout(seed):
        obs, info = env.reset(seed=seed)
        out = [obs] + [env.step(a)[0] for a in actions]
        return info["motion"], info["frame"], np.stack(out)

    first, again, other = rollout(7), rollout(7), rollout(8)
    assert first[:2] == again[:2]
    np.testing.assert_array_equal(first[2], again[2])
    starts = {env.reset(seed=s)[1]["frame"] for s in range(10)}
    assert len(starts) > 1 and other[:2] != first[:2]


def test_motion_weights_and_missing_head(short):
    env = env_for("legs", short)
    env.set_motion_weights({"turn": 1.0})
    assert {env.reset(seed=s)[1]["motion"] for s in range(8)} == {"turn"}
    env.set_motion_weights([1.0, 0.0])
    assert {env.reset(seed=s)[1]["motion"] for s in range(8)} == {"walk"}
    env.set_motion_weights(None)
    assert {env.reset(seed=s)[1]["motion"] for s in range(16)} == {"walk", "turn"}
    with pytest.raises(ValueError, match="weights"):
        env.set_motion_weights([1.0, -1.0])
    headless = ReferenceMotion(name="no_head", fps=30.0, keypoints=short[0].keypoints[:, :7])
    torso = env_for("legs_abs", [headless])
    with pytest.raises(ValueError, match="no_head.*head"):
        torso.reset(seed=0)


def test_ik_fit_matches_known_pose(library):
    motion = library["myosuite_walk_b"]
    env = env_for("legs", [motion.replace(qpos=None, embodiment="")])  # force the IK path
    fitter = PoseFitter(env.model, env.layout.tracked_names)
    for frame in (0, 50):
        qpos = env.fitted_qpos(motion.name, frame)
        assert env.fitted_qpos(motion.name, frame) is qpos  # cached
        data = mujoco.MjData(env.model)
        data.qpos[:] = qpos
        mujoco.mj_kinematics(env.model, data)
        fitted = data.xpos[env.layout.body_ids[env.layout.tracked]]
        assert np.linalg.norm(fitted - motion.keypoints[frame, :7], axis=1).max() < 4e-3
        # Close to the pose the keypoints were made from (joints within 0.3 rad; knee within 0.1 rad).
        assert np.abs(qpos[7:] - motion.qpos[frame, 7:]).max() < 0.3
        knee = env.model.joint("knee_angle_r").qposadr[0]
        assert abs(qpos[knee] - motion.qpos[frame, knee]) < 0.1
        assert np.linalg.norm(fitter.initial_guess(motion.keypoints[frame, :7])[:3] - motion.keypoints[frame, 0]) == 0


def test_vector_env_equals_single_envs_in_sequence(short):
    motions = [cut(m, 6) for m in short]  # 5 steps per episode from frame 0: autoresets happen
    config = ImitationConfig(embodiment="legs")
    vec = VectorImitationEnv(3, config, motions)
    singles = [ImitationEnv(config, motions, model=vec.backend.envs[0].model) for _ in range(3)]
    obs, infos = vec.reset(seed=11)
    for i, env in enumerate(singles):
        single_obs, info = env.reset(seed=11 + i)
        np.testing.assert_array_equal(obs[i], single_obs)
        assert infos["motion"][i] == info["motion"] and infos["frame"][i] == info["frame"]
    rng = np.random.default_rng(3)
    ended = 0
    for _ in range(12):
        actions = rng.uniform(-1, 1, (3, 80))
        obs, rew, term, trunc, infos = vec.step(actions)
        assert obs.shape == (3, 504) and rew.shape == term.shape == trunc.shape == (3,)
        for i, env in enumerate(singles):
            o, r, te, tr, info = env.step(actions[i])
            assert (r, te, tr) == (rew[i], term[i], trunc[i])
            assert infos["mpjpe_mm"][i] == info["mpjpe_mm"] and infos["motion"][i] == info["motion"]
            assert infos["_final_obs"][i] == (te or tr)
            if te or tr:
                np.testing.assert_array_equal(infos["final_obs"][i], o)
                o, _ = env.reset()
                ended += 1
            np.testing.assert_array_equal(obs[i], o)
    assert ended >= 3
    vec.set_motion_weights({"turn": 1.0})
    assert set(vec.reset(seed=0)[1]["motion"]) == {"turn"}
    with pytest.raises(ValueError, match="actions"):
        vec.step(np.zeros((2, 80)))


def test_optional_joint_term_rewards_the_reference_joint_angles(short):
    model = model_of("legs")
    hinges = rewards.free_hinges(model)
    names = [model.joint(j).name for j in range(model.njnt) if model.jnt_qposadr[j] in hinges]
    assert names == [f"{joint}_{side}" for side in "rl" for joint in
                     ("hip_flexion", "hip_adduction", "hip_rotation", "knee_angle", "ankle_angle", "subtalar_angle", "mtp_angle")]  # fmt: skip
    base = ImitationConfig().reward
    reward = rewards.RewardConfig(k_joint=4.0, scales={**base.scales, "joint": 0.5})
    env, motion = env_for("legs", short, reward=reward), short[0]
    env.reset(seed=0, options={"motion": motion.name, "start": 3})
    obs, total, *_, info = env.step(np.full(80, 0.3))
    error = env.sim.data.qpos[hinges] - motion.qpos[4, hinges]  # the state's frame 3 + 1 (30 fps motion)
    assert info["reward/joint"] == pytest.approx(np.exp(-4.0 * np.mean(error**2)), rel=1e-12)
    assert total == pytest.approx(sum(reward.scales[k] * info[f"reward/{k}"] for k in reward.scales), rel=1e-12)
    # Linear between frames; evaluation judges positions only; motions without qpos are refused.
    track = env._prepared(motion.name)
    np.testing.assert_allclose(track.qpos_at(4.25, hinges), 0.75 * motion.qpos[4, hinges] + 0.25 * motion.qpos[5, hinges])
    env = env_for("legs", short, reward=reward, **EVAL)
    env.reset(options={"motion": motion.name})
    assert "reward/joint" not in env.step(np.zeros(80))[-1]
    with pytest.raises(ValueError, match="carries no qpos"):
        env_for("legs", [motion.replace(qpos=None)], reward=reward).reset(seed=0)

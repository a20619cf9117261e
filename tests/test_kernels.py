"""The compiled per-step math (kinesis_tasks.kernels) against plain NumPy/MuJoCo/SciPy references on random
states, and ImitationEnv's one-call step against the public functions, bit for bit."""

from functools import cache

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kinesis_tasks import load_embodiment, observations, rewards
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.jit import kernel
from kinesis_tasks.motions import load_library

EMBODIMENTS = ["legs", "legs_back"]


@cache
def model_of(embodiment: str) -> mujoco.MjModel:
    return load_embodiment(embodiment)


def random_data(model: mujoco.MjModel, rng: np.random.Generator) -> mujoco.MjData:
    """A random pose (any root orientation and heading, joints displaced) and velocity, evaluated."""
    data = mujoco.MjData(model)
    qpos = model.qpos0.copy()
    mujoco.mj_integratePos(model, qpos, rng.normal(0.0, 0.5, model.nv), 1.0)
    qpos[:3] = rng.normal(0.0, 1.0, 3)
    qpos[3:7] = Rotation.random(random_state=rng.integers(1 << 31)).as_quat()[[3, 0, 1, 2]]
    data.qpos[:], data.qvel[:] = qpos, rng.normal(0.0, 2.0, model.nv)
    mujoco.mj_forward(model, data)
    return data


def heading_frame(layout, data) -> np.ndarray:
    """[3, 3] world -> heading frame, from MuJoCo's own root rotation matrix."""
    root_mat = data.xmat[layout.body_ids[layout.root]].reshape(3, 3)
    return Rotation.from_euler("z", -np.arctan2(root_mat[1, 0], root_mat[0, 0])).as_matrix()


def reference_proprioception(layout, data) -> np.ndarray:
    ids, root = layout.body_ids, layout.root
    to_local = heading_frame(layout, data).T  # row vectors: v @ R^T
    xpos, xmat = data.xpos[ids], data.xmat[ids].reshape(-1, 3, 3)
    root_quat = data.qpos[layout.root_qposadr + 3 : layout.root_qposadr + 7]
    ex, ey, _ = Rotation.from_quat(root_quat[[1, 2, 3, 0]]).as_euler("xyz")
    axes = np.stack((xmat[:, :, 0], xmat[:, :, 2]), axis=1)
    sensors = data.sensordata
    return np.concatenate([
        [xpos[root, 2], np.cos(ex), np.sin(ex), np.cos(ey), np.sin(ey)],
        ((xpos[layout.others] - xpos[root]) @ to_local).ravel(), (axes @ to_local).ravel(),
        (sensors[layout.linvel_adr] @ to_local).ravel(), (sensors[layout.angvel_adr] @ to_local).ravel(),
        sensors[layout.touch_adr],
    ])  # fmt: skip


def reference_imitation(layout, data, ref_pos, ref_vel) -> np.ndarray:
    to_local = heading_frame(layout, data).T
    ids = layout.body_ids
    pos, vel = data.xpos[ids][layout.tracked], data.sensordata[layout.linvel_adr][layout.tracked]
    root_pos = data.xpos[ids[layout.root]]
    return np.concatenate([((ref_pos - pos) @ to_local).ravel(), ((ref_vel - vel) @ to_local).ravel(),
                           ((ref_pos - root_pos) @ to_local).ravel()])  # fmt: skip


def reference_rewards(layout, data, ref_pos, ref_vel, substep_ctrl, config) -> dict[str, float]:
    ids = layout.body_ids
    pos, vel = data.xpos[ids][layout.tracked], data.sensordata[layout.linvel_adr][layout.tracked]
    root_quat = data.qpos[layout.root_qposadr + 3 : layout.root_qposadr + 7]
    ex, ey, _ = Rotation.from_quat(root_quat[[1, 2, 3, 0]]).as_euler("xyz")
    energy = np.exp(-config.k_energy * (np.abs(substep_ctrl).sum(-1) + np.linalg.norm(substep_ctrl, axis=-1)))
    return {
        "body_pos": np.exp(-config.k_pos * np.mean((ref_pos - pos) ** 2)),
        "vel": np.exp(-config.k_vel * np.mean((ref_vel - vel) ** 2)),
        "upright": np.exp(-3.0 * (ex**2 + ey**2)),
        "energy": energy.mean(),
        "distance": np.linalg.norm(ref_pos - pos, axis=-1).mean(),
    }


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_kernels_match_numpy_references_on_random_states(embodiment):
    model = model_of(embodiment)
    layout = observations.body_layout(model, observations.tracked_bodies(model, include_head=True))
    rng = np.random.default_rng(7)
    config = rewards.RewardConfig()
    datas, refs, ctrls = [], [], []
    for _ in range(6):
        data = random_data(model, rng)
        ref_pos, ref_vel = rng.normal(0.0, 1.0, (2, len(layout.tracked), 3))
        substep_ctrl = rng.uniform(0.0, 1.0, (5, model.nu))
        state = observations.body_state(layout, data.xpos, data.xquat, data.qpos, data.sensordata)
        blocks = observations.proprioception_blocks_from_state(layout, state)
        np.testing.assert_allclose(np.concatenate(list(blocks.values()), axis=-1), reference_proprioception(layout, data),
                                   rtol=0, atol=1e-12)  # fmt: skip
        task_blocks = observations.imitation_blocks_from_state(layout, state, ref_pos, ref_vel)
        np.testing.assert_allclose(np.concatenate([b.ravel() for b in task_blocks.values()]),
                                   reference_imitation(layout, data, ref_pos, ref_vel), rtol=0, atol=1e-12)  # fmt: skip
        terms, distance = rewards.reward_terms_and_distance(layout, state, ref_pos, ref_vel, substep_ctrl, config)
        expected = reference_rewards(layout, data, ref_pos, ref_vel, substep_ctrl, config)
        assert {**terms, "distance": distance} == pytest.approx(expected, rel=1e-12, abs=1e-300)
        datas.append(data), refs.append((ref_pos, ref_vel)), ctrls.append(substep_ctrl)
    # Stacked states through the same kernels give exactly the per-state results.
    stacked = observations.body_state(
        layout, *(np.stack([getattr(d, key) for d in datas]) for key in ("xpos", "xquat", "qpos", "sensordata"))
    )
    ref_pos, ref_vel = np.stack([r[0] for r in refs]), np.stack([r[1] for r in refs])
    batch_obs = observations.full_from_state(layout, stacked, ref_pos, ref_vel)
    batch_terms = rewards.reward_terms_from_state(layout, stacked, ref_pos, ref_vel, np.stack(ctrls), config)
    for i, data in enumerate(datas):
        np.testing.assert_array_equal(batch_obs[i], observations.full(model, data, ref_pos[i], ref_vel[i], layout=layout))
        single = rewards.reward_terms(model, data, ref_pos[i], ref_vel[i], ctrls[i], config=config, layout=layout)
        assert {name: float(value[i]) for name, value in batch_terms.items()} == single


def interpolated(motion, bodies, frame: float) -> tuple[np.ndarray, np.ndarray]:
    """Reference at a fractional frame, interpolated with NumPy (independent of kernels.py and imitation.MotionTrack)."""
    index = [motion.body_names.index(b) for b in bodies]
    low = min(int(frame), motion.num_frames - 2)
    alpha = frame - low
    kp, vel = motion.keypoints[:, index], motion.velocities[:, index]
    return kp[low] + alpha * (kp[low + 1] - kp[low]), vel[low] + alpha * (vel[low + 1] - vel[low])


@pytest.mark.parametrize("embodiment, mode", [("legs", "target_length"), ("legs_back", "direct")])
def test_env_step_equals_public_functions_bit_for_bit(embodiment, mode):
    """ImitationEnv.step's one kernel call (kernels.imitation_step_into) against observations.full,
    rewards.reward_terms and rewards.tracking_distance on the same data, with a NumPy-interpolated reference."""
    motion = load_library("default")["gaitanalysis_turn_left"]
    config = ImitationConfig(embodiment=embodiment, control_mode=mode, evaluation=True, eval_termination_distance=1e9)
    env = ImitationEnv(config, [motion], model=model_of(embodiment))
    bodies = ("root", *env.layout.tracked_names[1:])
    env.reset(options={"motion": motion.name, "start": 3})
    rng = np.random.default_rng(3)
    for _ in range(4):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1.0, 1.0, env.model.nu))
        data, frame = env.sim.data, info["frame"]
        expected_obs = observations.full(env.model, data, *interpolated(motion, bodies, frame + 1), layout=env.layout)
        np.testing.assert_array_equal(obs, expected_obs)
        ref_pos, ref_vel = interpolated(motion, bodies, frame)
        terms = rewards.reward_terms(env.model, data, ref_pos, ref_vel, env.sim.substep_controls, layout=env.layout)
        assert {name: info[f"reward/{name}"] for name in terms} == terms
        assert reward == rewards.total(terms)
        tracked = data.xpos[env.layout.body_ids[env.layout.tracked]]
        assert info["tracking_distance"] == rewards.tracking_distance(tracked, ref_pos)


def test_kernel_compiles_without_a_cache_location():
    """A function numba cannot cache (no source file) still compiles, uncached."""
    namespace = {}
    exec("def scaled_sum(x, k):\n    total = 0.0\n    for v in x:\n        total += k * v\n    return total\n", namespace)
    compiled = kernel(namespace["scaled_sum"])
    assert compiled(np.arange(4.0), 0.5) == 3.0
    assert compiled(np.array([1.0]), np.inf) == np.inf  # NumPy's error model: no exception

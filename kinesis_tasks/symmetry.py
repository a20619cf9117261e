"""Left-right mirror symmetry of an embodiment: observations and actions of the mirrored body.

MyoLegs is left-right symmetric (to about a millimetre), so a state reflected in the body's sagittal
plane, with left and right swapped, is a valid state too, and the policy that acts well in one acts
well in the other with its left and right muscles swapped. ``mirror_map(model, layout)`` finds, for
the imitation observation of ``layout`` and the muscles of ``model``, the signed permutations

    obs(mirror(s)) = obs(s)[obs_index] * obs_sign        action(mirror) = action[action_index]

without hand-written tables: it builds real states (the embodiment's reference poses with random joint
offsets and velocities), reflects them (joints and muscles with ``_r``/``_l`` names swapped; the free
root reflected in the world x-z plane), computes both observations with ``kinesis_tasks.observations``
and matches every entry of the mirrored observation to the one entry of the original that equals it up
to sign. A model that is not symmetric (no match within ``tolerance``) raises ValueError.
Training uses it to double each batch with mirrored samples (``kinesis_training`` ``ppo.mirror``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import mujoco
import numpy as np

from kinesis_tasks import observations
from kinesis_tasks.observations import BodyLayout

#: Reflection of world vectors in the x-z plane (y -> -y): the walking direction stays +x.
WORLD_MIRROR = np.diag([1.0, -1.0, 1.0])
_SAMPLES = 24
_CACHE: "weakref.WeakKeyDictionary[mujoco.MjModel, dict]" = weakref.WeakKeyDictionary()


@dataclass(frozen=True, eq=False)
class MirrorMap:
    """Signed permutations of the observation [D] and the action [A] (see the module docstring)."""

    obs_index: np.ndarray
    obs_sign: np.ndarray
    action_index: np.ndarray

    def observation(self, obs: np.ndarray) -> np.ndarray:
        """Observations [..., D] of the mirrored states."""
        return obs[..., self.obs_index] * self.obs_sign

    def action(self, action: np.ndarray) -> np.ndarray:
        """Actions [..., A] mirrored (left and right muscles swapped)."""
        return action[..., self.action_index]


def swapped_name(name: str) -> str:
    """``x_r`` <-> ``x_l``; other names unchanged."""
    for side, other in (("_r", "_l"), ("_l", "_r")):
        if name.endswith(side):
            return name[: -len(side)] + other
    return name


def _partners(names: list[str]) -> np.ndarray:
    """Index of each name's mirror partner (itself when the model has no ``swapped_name``: a midline part)."""
    index = {name: i for i, name in enumerate(names)}
    return np.array([index.get(swapped_name(name), i) for i, name in enumerate(names)], dtype=np.intp)


class StateMirror:
    """Reflects (qpos, qvel) of ``model``: hinge/slide joints swapped with the same value, free root reflected.

    ``layout`` names the root body (``observations.body_layout(model)``).
    """

    def __init__(self, model: mujoco.MjModel, layout: BodyLayout) -> None:
        self.model = model
        joints = [model.joint(j).name for j in range(model.njnt)]
        partner = _partners(joints)
        free = int(model.body_jntadr[layout.body_ids[layout.root]])
        self.root_q, self.root_v = int(model.jnt_qposadr[free]), int(model.jnt_dofadr[free])
        hinges = [j for j in range(model.njnt) if j != free]
        if any(model.jnt_type[j] not in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE) for j in hinges):
            raise ValueError("mirror: only a free root with hinge and slide joints is supported")
        self.q_to = np.array([model.jnt_qposadr[j] for j in hinges])
        self.q_from = np.array([model.jnt_qposadr[partner[j]] for j in hinges])
        self.v_to = np.array([model.jnt_dofadr[j] for j in hinges])
        self.v_from = np.array([model.jnt_dofadr[partner[j]] for j in hinges])
        self.local = self._root_local_mirror(layout)

    def _root_local_mirror(self, layout: BodyLayout) -> np.ndarray:
        """The reflection of the root's own frame (about one of its axes) under which the mirrored pose's
        bodies are the reflections of the original's (the axis the body's lateral direction lies on)."""
        data = mujoco.MjData(self.model)
        qpos = self.model.qpos0.copy()
        qpos[self.root_q + 3:self.root_q + 7] = _quat(_axis_angle(np.array([0.3, 0.2, 0.9]), 0.7))
        qpos[self.q_to] += np.linspace(-0.2, 0.3, len(self.q_to))
        expected = _positions(self.model, data, qpos) @ WORLD_MIRROR
        names = [self.model.body(b).name for b in range(1, self.model.nbody)]
        expected = expected[_partners(names)]
        errors = []
        for axis in range(3):
            self.local = np.diag([-1.0 if i == axis else 1.0 for i in range(3)])
            errors.append(np.abs(_positions(self.model, data, self.qpos(qpos)) - expected).max())
        if min(errors) > 0.01:
            raise ValueError(f"mirror: no reflection of the root frame mirrors the body positions (best off by "
                             f"{min(errors):.3f} m); the left and right joints are not mirror images")
        return np.diag([-1.0 if i == int(np.argmin(errors)) else 1.0 for i in range(3)])

    def qpos(self, qpos: np.ndarray) -> np.ndarray:
        out = qpos.copy()
        out[self.q_to] = qpos[self.q_from]
        r = self.root_q
        out[r:r + 3] = WORLD_MIRROR @ qpos[r:r + 3]
        out[r + 3:r + 7] = self.quat(qpos[r + 3:r + 7])
        return out

    def quat(self, quat: np.ndarray) -> np.ndarray:
        """The root orientation (w, x, y, z) of the mirrored pose."""
        return _quat(WORLD_MIRROR @ _matrix(quat) @ self.local)

    def qvel(self, qvel: np.ndarray) -> np.ndarray:
        out = qvel.copy()
        out[self.v_to] = qvel[self.v_from]
        r = self.root_v
        out[r:r + 3] = WORLD_MIRROR @ qvel[r:r + 3]  # world frame
        out[r + 3:r + 6] = -self.local @ qvel[r + 3:r + 6]  # local frame; angular velocity is a pseudo-vector
        return out


def mirror_map(model: mujoco.MjModel, layout: BodyLayout, *, tolerance: float = 0.05,
               reference_qpos: np.ndarray | None = None, seed: int = 0) -> MirrorMap:
    """The observation and action mirror of ``model`` with the imitation layout ``layout`` (cached per model).

    ``reference_qpos`` [T, nq]: poses to sample states around (default: the model's default pose). An
    observation entry matches when it equals the candidate up to sign within ``tolerance`` times the
    entry's largest magnitude (at least 1). MyoLegs on the torso scaffold needs a few percent: the pelvis
    is 1e-3 rad off symmetric and the scaffold's ``Arm_attachment`` centre of mass off the midline, so its
    COM velocity mirrors to within ~3 %. ValueError names the entries without a match.
    """
    key = (layout.tracked_names, tolerance, seed, None if reference_qpos is None else reference_qpos.tobytes())
    per_model = _CACHE.setdefault(model, {})
    if key not in per_model:
        per_model[key] = _build(model, layout, tolerance, reference_qpos, seed)
    return per_model[key]


def _build(model, layout, tolerance, reference_qpos, seed) -> MirrorMap:
    actuators = [model.actuator(i).name for i in range(model.nu)]
    action_index = _partners(actuators)
    tracked_partner = _partners(list(layout.tracked_names))
    mirror = StateMirror(model, layout)
    rng = np.random.default_rng(seed)
    data = mujoco.MjData(model)
    poses = reference_qpos if reference_qpos is not None else model.qpos0[None]
    originals, mirrored = [], []
    for i in range(_SAMPLES):
        qpos = poses[rng.integers(len(poses))].copy()
        qpos[mirror.q_to] += rng.normal(0.0, 0.1, len(mirror.q_to))
        root = slice(mirror.root_q + 3, mirror.root_q + 7)  # any heading, some tilt: every rotation entry varies
        turn = _axis_angle(np.array([0.0, 0.0, 1.0]), rng.uniform(-np.pi, np.pi)) @ _axis_angle(rng.normal(size=3), 0.3)
        qpos[root] = _quat(turn @ _matrix(qpos[root]))
        qvel = rng.normal(0.0, 1.0, model.nv)
        ref_offset = rng.normal(0.0, 0.1, (len(layout.tracked), 3))
        ref_vel = rng.normal(0.0, 1.0, (len(layout.tracked), 3))
        for q, v, offset, vel, out in ((qpos, qvel, ref_offset, ref_vel, originals),
                                       (mirror.qpos(qpos), mirror.qvel(qvel),
                                        ref_offset[tracked_partner] @ WORLD_MIRROR, ref_vel[tracked_partner] @ WORLD_MIRROR,
                                        mirrored)):
            data.qpos[:], data.qvel[:] = q, v
            mujoco.mj_forward(model, data)
            state = observations.data_state(layout, data)
            ref = state.xpos[layout.tracked] + offset
            out.append(observations.full_from_state(layout, state, ref, vel).astype(np.float64))
    obs, obs_m = np.array(originals), np.array(mirrored)
    scale = np.maximum(np.abs(obs).max(0), 1.0)  # unit floor: near-zero entries compare absolutely
    plus = np.abs(obs_m[:, :, None] - obs[:, None, :]).max(0) / scale  # [mirrored entry j, original entry k]
    minus = np.abs(obs_m[:, :, None] + obs[:, None, :]).max(0) / scale
    errors = np.minimum(plus, minus)
    # The pairing: a permutation that minimises the errors relative to each entry's spread over the samples,
    # so that look-alike entries (rotation-matrix entries that all stay near 1) pair by how they vary.
    spread = np.maximum(obs.std(0), 1e-6)
    from scipy.optimize import linear_sum_assignment  # imported here: it costs every node process ~0.3 s

    rows, index = linear_sum_assignment(np.minimum(plus, minus) * scale / spread)
    # One sign per pair, from both directions (entries near zero fit either sign about equally well).
    sign = np.where(plus[rows, index] + plus[index, rows] <= minus[rows, index] + minus[index, rows], 1.0, -1.0)
    sign = sign.astype(np.float32)
    unmatched = np.flatnonzero(errors[rows, index] > tolerance).tolist()
    if unmatched:
        raise ValueError(f"model is not left-right symmetric: mirrored observation entries {unmatched[:10]} "
                         f"match no entry of the original within {tolerance:g}")
    return MirrorMap(obs_index=index, obs_sign=sign, action_index=action_index)


def _positions(model, data, qpos) -> np.ndarray:
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    return data.xpos[1:].copy()


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_axisAngle2Quat(quat, axis / np.linalg.norm(axis), angle)
    return _matrix(quat)


def _matrix(quat: np.ndarray) -> np.ndarray:
    matrix = np.empty(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat, dtype=np.float64))
    return matrix.reshape(3, 3)


def _quat(matrix: np.ndarray) -> np.ndarray:
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(matrix).reshape(-1))
    return quat

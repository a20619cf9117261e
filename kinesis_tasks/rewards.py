"""KINESIS v1 imitation rewards and termination.

The reward is a dict of named terms {"body_pos", "vel", "upright", "energy"}, each in [0, 1], summed with
the same-named weights of ``RewardConfig.scales`` (``total``). An optional "joint" term (not in KINESIS,
used only when ``scales`` has a "joint" weight) rewards the reference's joint angles (``joint_term``).
Pure functions take arrays with any leading batch dims (``...``); the (model, data) wrappers read poses and
the stored sensor vector of one MjData.
Units: m, m/s; controls are dimensionless (0..1). The per-state math is ``kinesis_tasks.kernels``
("rewards"); an environment step gets all terms and the tracking distance from one kernel call
(``reward_terms_and_distance``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Literal, Mapping

import mujoco
import numpy as np

from kinesis_tasks import kernels, observations
from kinesis_tasks.embodiment import joint_couplings
from kinesis_tasks.kernels import broadcast_batch, float64_arrays, per_state
from kinesis_tasks.observations import BodyLayout, BodyState


def _default_scales() -> Mapping[str, float]:
    return MappingProxyType({"body_pos": 0.6, "vel": 0.2, "upright": 0.1, "energy": 0.1})


@dataclass(frozen=True)
class RewardConfig:
    """Reward scales (KINESIS v1 defaults)."""

    k_pos: float = 200.0
    """Sharpness of the position term, 1/m^2."""
    k_vel: float = 5.0
    """Sharpness of the velocity term, s^2/m^2."""
    k_energy: float = 0.05
    """Sharpness of the energy term (per unit of sum|u| + ||u||)."""
    k_joint: float = 10.0
    """Sharpness of the optional joint-angle term, 1/rad^2 (the bundled walker's gait: median term 0.5)."""
    scales: Mapping[str, float] = field(default_factory=_default_scales)
    """Weight of each reward term, keyed by term name (KINESIS w_pos, w_vel, w_upright, w_energy)."""


@dataclass(frozen=True)
class TerminationConfig:
    """Early termination when the tracked bodies drift from the reference."""

    distance: float = 0.15
    """Threshold on the tracked-body distance, m (KINESIS: 0.15 training, 0.5 evaluation)."""
    reduction: Literal["mean", "max"] = "mean"
    """How per-body distances are reduced over the tracked bodies."""


TRAIN_TERMINATION = TerminationConfig(distance=0.15)
EVAL_TERMINATION = TerminationConfig(distance=0.5)

TERMS = ("body_pos", "vel", "upright", "energy")
"""Reward term names, in the order ``kernels.reward_terms_into`` writes them."""
JOINT_TERM = "joint"
"""Name of the optional joint-angle term (weighted only when ``RewardConfig.scales`` has it)."""


def _values(batch: tuple[int, ...], values: Iterable[float]) -> np.ndarray:
    """Per-state values as an array [*batch] (a NumPy scalar when batch is ())."""
    return np.fromiter(values, dtype=np.float64, count=math.prod(batch)).reshape(batch)[()]


def _tracked_pairs(values: np.ndarray, ref: np.ndarray) -> tuple[tuple[int, ...], np.ndarray, np.ndarray, np.ndarray]:
    """(batch, values, ref, rows) of [..., K, 3] arrays broadcast together, rows = 0..K-1."""
    values, ref = float64_arrays(*np.broadcast_arrays(np.asarray(values, dtype=np.float64), np.asarray(ref, np.float64)))
    if values.shape[-1:] != (3,) or values.ndim < 2:
        raise ValueError(f"body positions/velocities: expected shape [..., K, 3], got {values.shape}")
    return values.shape[:-2], values, ref, np.arange(values.shape[-2])


def _tracking_terms(values: np.ndarray, ref: np.ndarray, sharpness: float) -> np.ndarray:
    """exp(-sharpness * mean squared error) over [..., K, 3] -> [...]."""
    batch, values, ref, rows = _tracked_pairs(values, ref)
    return _values(batch, (kernels.tracking_term(v, rows, r, sharpness) for v, r in per_state(batch, values, ref)))


def body_pos_term(body_pos: np.ndarray, ref_pos: np.ndarray, k_pos: float) -> np.ndarray:
    """exp(-k_pos * mean squared position error) over [..., K, 3] -> [...]."""
    return _tracking_terms(body_pos, ref_pos, k_pos)


def vel_term(body_vel: np.ndarray, ref_vel: np.ndarray, k_vel: float) -> np.ndarray:
    """exp(-k_vel * mean squared velocity error) over [..., K, 3] -> [...]."""
    return _tracking_terms(body_vel, ref_vel, k_vel)


def upright_term(root_quat: np.ndarray) -> np.ndarray:
    """exp(-3 (ex^2 + ey^2)) from the root roll ex and pitch ey (wrapped to [-pi, pi]); [..., 4] -> [...]."""
    (quat,) = float64_arrays(root_quat)
    return _values(quat.shape[:-1], (kernels.upright(q) for (q,) in per_state(quat.shape[:-1], quat)))


def free_hinges(model: mujoco.MjModel) -> np.ndarray:
    """qpos addresses of the hinge joints that no joint equality drives (MyoLegs: hip flexion, adduction and
    rotation, knee, ankle, subtalar and mtp of each side; the knee's coupled rotations are left out)."""
    driven = {joint for joint, *_ in joint_couplings(model)}
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE and j not in driven]
    return model.jnt_qposadr[hinges].astype(np.int64)


def joint_term(angles: np.ndarray, ref_angles: np.ndarray, k_joint: float) -> np.ndarray | float:
    """exp(-k_joint * mean squared angle error) over joint angles [..., J] (rad) -> [...]."""
    error = np.asarray(angles, dtype=np.float64) - np.asarray(ref_angles, dtype=np.float64)
    value = np.exp(-k_joint * np.mean(error * error, axis=-1))
    return float(value) if np.ndim(value) == 0 else value


def energy(ctrl: np.ndarray, k_energy: float = RewardConfig.k_energy) -> np.ndarray | float:
    """Energy term of one sub-step: exp(-k_energy (sum|u| + ||u||_2)) for controls [..., nu] -> [...]."""
    (u,) = float64_arrays(ctrl)
    value = _values(u.shape[:-1], (kernels.energy(row, k_energy) for (row,) in per_state(u.shape[:-1], u)))
    return float(value) if np.ndim(value) == 0 else value


def imitation_terms_from_state(
    layout: BodyLayout, state: BodyState, ref_pos: np.ndarray, ref_vel: np.ndarray, config: RewardConfig
) -> dict[str, np.ndarray]:
    """{"body_pos", "vel"} terms [...] of tracked bodies vs references [..., K, 3] (world)."""
    return {
        "body_pos": body_pos_term(state.xpos[..., layout.tracked, :], ref_pos, config.k_pos),
        "vel": vel_term(state.linvel[..., layout.tracked, :], ref_vel, config.k_vel),
    }


def _terms_and_distance(
    layout: BodyLayout, state: BodyState, ref_pos, ref_vel, substep_ctrl, config: RewardConfig
) -> np.ndarray:
    """[..., 5]: the TERMS and the mean tracking distance of each state."""
    batch = state.root_quat.shape[:-1]
    ref_pos, ref_vel = (broadcast_batch(observations.check_reference(layout, name, ref), batch, 2)
                        for name, ref in (("ref_pos", ref_pos), ("ref_vel", ref_vel)))  # fmt: skip
    substep_ctrl = broadcast_batch(np.asarray(substep_ctrl, dtype=np.float64), batch, 2)
    arrays = float64_arrays(state.xpos, state.linvel, state.root_quat, ref_pos, ref_vel, substep_ctrl)
    out = np.empty(batch + (5,))
    sharpness = (config.k_pos, config.k_vel, config.k_energy)
    for xpos, linvel, root_quat, ref_p, ref_v, ctrl, row in per_state(batch, *arrays, out):
        kernels.reward_terms_into(xpos, linvel, root_quat, layout.tracked, ref_p, ref_v, ctrl, *sharpness, row)
    return out


def reward_terms_from_state(
    layout: BodyLayout,
    state: BodyState,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    substep_ctrl: np.ndarray,
    config: RewardConfig,
) -> dict[str, np.ndarray]:
    """All terms; "energy" is the mean energy term over the sub-step controls [..., S, nu] of the last step."""
    values = _terms_and_distance(layout, state, ref_pos, ref_vel, substep_ctrl, config)
    return {name: values[..., i][()] for i, name in enumerate(TERMS)}


def reward_terms_and_distance(
    layout: BodyLayout,
    state: BodyState,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    substep_ctrl: np.ndarray,
    config: RewardConfig,
) -> tuple[dict[str, float], float]:
    """Reward terms and mean tracking distance (m) of one state, from one kernel call (an env step)."""
    values = _terms_and_distance(layout, state, ref_pos, ref_vel, substep_ctrl, config).tolist()
    return dict(zip(TERMS, values)), values[4]


def total(terms: Mapping[str, np.ndarray | float], config: RewardConfig = RewardConfig()) -> np.ndarray | float:
    """Weighted sum of reward terms, each weighted by ``config.scales`` under the same name."""
    unknown = sorted(set(terms) - set(config.scales))
    if unknown:
        raise ValueError(f"terms: no scale in config.scales for {unknown}")
    return sum(config.scales[name] * value for name, value in terms.items())


def tracking_distance(
    body_pos: np.ndarray, ref_pos: np.ndarray, reduction: Literal["mean", "max"] = "mean"
) -> np.ndarray:
    """Euclidean distance of tracked bodies to the reference, [..., K, 3] -> [...] m, mean or max over K."""
    if reduction not in ("mean", "max"):
        raise ValueError(f"reduction: expected 'mean' or 'max', got {reduction!r}")
    batch, values, ref, rows = _tracked_pairs(body_pos, ref_pos)
    use_max = reduction == "max"
    return _values(batch, (kernels.tracking_distance(v, rows, r, use_max) for v, r in per_state(batch, values, ref)))


def is_terminated(body_pos: np.ndarray, ref_pos: np.ndarray, config: TerminationConfig) -> np.ndarray:
    """True where the tracking distance exceeds ``config.distance``; [..., K, 3] -> [...] bool."""
    return tracking_distance(body_pos, ref_pos, config.reduction) > config.distance


def _checked_refs(layout: BodyLayout, ref_pos: np.ndarray, ref_vel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    check = observations.check_reference
    return check(layout, "ref_pos", ref_pos), check(layout, "ref_vel", ref_vel)


def imitation_terms(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    *,
    config: RewardConfig = RewardConfig(),
    layout: BodyLayout | None = None,
) -> dict[str, float]:
    """{"body_pos": r_body_pos, "vel": r_vel} for references ``ref_pos``, ``ref_vel`` [K, 3] (world)."""
    layout, state = observations.model_state(model, data, layout)
    terms = imitation_terms_from_state(layout, state, *_checked_refs(layout, ref_pos, ref_vel), config)
    return {name: float(value) for name, value in terms.items()}


def imitation(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    *,
    config: RewardConfig = RewardConfig(),
    layout: BodyLayout | None = None,
) -> float:
    """Imitation reward w_pos r_body_pos + w_vel r_vel (KINESIS ``imitation_reward``)."""
    return float(total(imitation_terms(model, data, ref_pos, ref_vel, config=config, layout=layout), config))


def upright(model: mujoco.MjModel, data: mujoco.MjData, *, layout: BodyLayout | None = None) -> float:
    """Upright term of the root orientation in qpos."""
    layout, state = observations.model_state(model, data, layout)
    return float(upright_term(state.root_quat))


def reward_terms(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    substep_ctrl: np.ndarray,
    *,
    config: RewardConfig = RewardConfig(),
    layout: BodyLayout | None = None,
) -> dict[str, float]:
    """All reward terms of a control step; ``substep_ctrl`` [S, nu] are the controls written per sub-step."""
    layout, state = observations.model_state(model, data, layout)
    ref_pos, ref_vel = _checked_refs(layout, ref_pos, ref_vel)
    terms = reward_terms_from_state(layout, state, ref_pos, ref_vel, np.asarray(substep_ctrl), config)
    return {name: float(value) for name, value in terms.items()}


def terminated(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    *,
    config: TerminationConfig = TRAIN_TERMINATION,
    layout: BodyLayout | None = None,
) -> bool:
    """Whether the tracked bodies are farther than ``config.distance`` from ``ref_pos`` [K, 3]."""
    layout, state = observations.model_state(model, data, layout)
    ref_pos = observations.check_reference(layout, "ref_pos", ref_pos)
    return bool(is_terminated(state.xpos[..., layout.tracked, :], ref_pos, config))

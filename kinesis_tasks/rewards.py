"""KINESIS v1 imitation rewards and termination.

The reward is a dict of named terms {"body_pos", "vel", "upright", "energy"}, each in [0, 1], summed with
the same-named weights of ``RewardConfig.scales`` (``total``). Pure functions take arrays with any leading
batch dims (``...``); the (model, data) wrappers read poses and the stored sensor vector of one MjData.
Units: m, m/s; controls are dimensionless (0..1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Mapping

import mujoco
import numpy as np

from kinesis_tasks import observations, rotations
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


def body_pos_term(body_pos: np.ndarray, ref_pos: np.ndarray, k_pos: float) -> np.ndarray:
    """exp(-k_pos * mean squared position error) over [..., K, 3] -> [...]."""
    return np.exp(-k_pos * np.mean(np.square(ref_pos - body_pos), axis=(-2, -1)))


def vel_term(body_vel: np.ndarray, ref_vel: np.ndarray, k_vel: float) -> np.ndarray:
    """exp(-k_vel * mean squared velocity error) over [..., K, 3] -> [...]."""
    return np.exp(-k_vel * np.mean(np.square(ref_vel - body_vel), axis=(-2, -1)))


def upright_term(root_quat: np.ndarray) -> np.ndarray:
    """exp(-3 (ex^2 + ey^2)) from the root roll ex and pitch ey (wrapped to [-pi, pi]); [..., 4] -> [...]."""
    ex, ey = rotations.tilt_angles(root_quat)
    ax = np.arctan2(np.sin(ex), np.cos(ex))
    ay = np.arctan2(np.sin(ey), np.cos(ey))
    return np.exp(-3.0 * (ax * ax + ay * ay))


def energy(ctrl: np.ndarray, k_energy: float = RewardConfig.k_energy) -> np.ndarray | float:
    """Energy term of one sub-step: exp(-k_energy (sum|u| + ||u||_2)) for controls [..., nu] -> [...]."""
    u = np.asarray(ctrl, dtype=np.float64)
    value = np.exp(-k_energy * (np.sum(np.abs(u), axis=-1) + np.linalg.norm(u, axis=-1)))
    return float(value) if value.ndim == 0 else value


def imitation_terms_from_state(
    layout: BodyLayout, state: BodyState, ref_pos: np.ndarray, ref_vel: np.ndarray, config: RewardConfig
) -> dict[str, np.ndarray]:
    """{"body_pos", "vel"} terms [...] of tracked bodies vs references [..., K, 3] (world)."""
    return {
        "body_pos": body_pos_term(state.xpos[..., layout.tracked, :], ref_pos, config.k_pos),
        "vel": vel_term(state.linvel[..., layout.tracked, :], ref_vel, config.k_vel),
    }


def reward_terms_from_state(
    layout: BodyLayout,
    state: BodyState,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    substep_ctrl: np.ndarray,
    config: RewardConfig,
) -> dict[str, np.ndarray]:
    """All terms; "energy" is the mean energy term over the sub-step controls [..., S, nu] of the last step."""
    return {
        **imitation_terms_from_state(layout, state, ref_pos, ref_vel, config),
        "upright": upright_term(state.root_quat),
        "energy": np.mean(energy(substep_ctrl, config.k_energy), axis=-1),
    }


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
    dist = np.linalg.norm(np.asarray(ref_pos) - body_pos, axis=-1)
    if reduction == "mean":
        return dist.mean(axis=-1)
    if reduction == "max":
        return dist.max(axis=-1)
    raise ValueError(f"reduction: expected 'mean' or 'max', got {reduction!r}")


def is_terminated(body_pos: np.ndarray, ref_pos: np.ndarray, config: TerminationConfig) -> np.ndarray:
    """True where the tracking distance exceeds ``config.distance``; [..., K, 3] -> [...] bool."""
    return tracking_distance(body_pos, ref_pos, config.reduction) > config.distance


def _state(model: mujoco.MjModel, data: mujoco.MjData, layout: BodyLayout | None) -> tuple[BodyLayout, BodyState]:
    layout = layout if layout is not None else observations.body_layout(model)
    return layout, observations.body_state(layout, data.xpos, data.xquat, data.qpos, data.sensordata)


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
    layout, state = _state(model, data, layout)
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
    layout, state = _state(model, data, layout)
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
    layout, state = _state(model, data, layout)
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
    layout, state = _state(model, data, layout)
    ref_pos = observations.check_reference(layout, "ref_pos", ref_pos)
    return bool(is_terminated(state.xpos[..., layout.tracked, :], ref_pos, config))

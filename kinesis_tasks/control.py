"""Muscle control laws: policy action in [-1, 1] -> muscle control value in [0, 1].

``direct``
    excitation = clip((a + 1) / 2, 0, 1).

``target_length`` (the KINESIS "PD" mode)
    The action sets a target length per muscle, L* = (a + 1)/2 * lengthrange_max.
    A PD law on the current length L and velocity V gives a desired (pulling,
    negative) force, F_d = clip(kp (L* - L) - kd V, -F_peak, 0) with
    F_peak = biasprm[:, 2], kp = 5 F_peak, kd = 0.1 kp. The control that makes
    MuJoCo's muscle produce it at (L, V) inverts the force model
    F = gain(L, V) * u + bias(L):  u = clip((F_d - bias) / min(-1, gain), 0, 1).

The muscle curves are MuJoCo's (``mju_muscleGain`` / ``mju_muscleBias``),
re-expressed as vectorized NumPy over all muscles; ``tests/test_control.py``
checks them against the MuJoCo functions muscle by muscle.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

CONTROL_MODES = ("direct", "target_length")
_MINVAL = 1e-15  # mjMINVAL: MuJoCo's guard against division by zero
KP_PER_PEAK_FORCE = 5.0
KD_PER_KP = 0.1


@dataclass(frozen=True)
class MuscleParams:
    """Per-muscle constants of the force model, read once from a model (arrays of shape [nu]).

    MuJoCo's curves are piecewise quadratics in the normalized length; they are
    stored here as the constants of the equivalent forms used below (widths as
    inverses, so a control step does no divisions by parameters).
    """

    lengthrange: np.ndarray  # [nu, 2] m
    peak_force: np.ndarray  # F_peak = biasprm[:, 2], N (the PD law's force bound)
    force_scale: np.ndarray  # F of the curves: gainprm[2], or scale/acc0 when gainprm[2] < 0, N
    passive_scale: np.ndarray  # F * fpmax, N
    length_offset: np.ndarray  # normalized length = length * inv_optimal_length + length_offset
    inv_optimal_length: np.ndarray  # 1/L0, 1/m
    inv_velocity_scale: np.ndarray  # 1/(L0 vmax), s/m
    inv_width_short: np.ndarray  # 1/(1 - a), a = (lmin + 1)/2: the force-length curve below optimum
    inv_width_long: np.ndarray  # 1/(b - 1), b = (1 + lmax)/2: above optimum, and the passive curve
    fvmax: np.ndarray
    inv_fv_span: np.ndarray  # 1/(fvmax - 1)

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> MuscleParams:
        if not np.all(model.actuator_dyntype == mujoco.mjtDyn.mjDYN_MUSCLE):
            raise ValueError("target-length control needs a model whose actuators are all muscles")
        prm = np.asarray(model.actuator_gainprm[:, :9], dtype=float)
        range_lo, range_hi, force, scale, lmin, lmax, vmax, fpmax, fvmax = prm.T
        lengthrange = np.array(model.actuator_lengthrange, dtype=float)
        force_scale = np.where(force < 0, scale / np.maximum(_MINVAL, model.actuator_acc0), force)
        optimal_length = (lengthrange[:, 1] - lengthrange[:, 0]) / np.maximum(_MINVAL, range_hi - range_lo)
        inv_optimal_length = 1.0 / np.maximum(_MINVAL, optimal_length)
        return cls(
            lengthrange=lengthrange,
            peak_force=np.array(model.actuator_biasprm[:, 2], dtype=float),
            force_scale=force_scale,
            passive_scale=force_scale * fpmax,
            length_offset=range_lo - lengthrange[:, 0] * inv_optimal_length,
            inv_optimal_length=inv_optimal_length,
            inv_velocity_scale=1.0 / np.maximum(_MINVAL, optimal_length * vmax),
            inv_width_short=1.0 / np.maximum(_MINVAL, 1.0 - 0.5 * (lmin + 1.0)),
            inv_width_long=1.0 / np.maximum(_MINVAL, 0.5 * (1.0 + lmax) - 1.0),
            fvmax=fvmax,
            inv_fv_span=1.0 / np.maximum(_MINVAL, fvmax - 1.0),
        )


def muscle_gain(params: MuscleParams, length: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Active force per unit control, -F * FL(L) * FV(V) (N, <= 0); shapes [..., nu]."""
    stretch = length * params.inv_optimal_length + params.length_offset - 1.0  # normalized length - 1
    return -params.force_scale * _force_length(stretch, params) * _force_velocity(velocity * params.inv_velocity_scale, params)


def muscle_bias(params: MuscleParams, length: np.ndarray) -> np.ndarray:
    """Passive force at a length (N, <= 0): 0 below the optimum, quadratic, then linear; shapes [..., nu]."""
    s = np.maximum(length * params.inv_optimal_length + params.length_offset - 1.0, 0.0) * params.inv_width_long
    return -params.passive_scale * np.where(s <= 1.0, 0.5 * s * s, s - 0.5)


def _force_length(stretch: np.ndarray, params: MuscleParams) -> np.ndarray:
    """Active force-length curve: 1 at the optimum, 0 outside [lmin, lmax].

    With s = |L - 1| / width (the width of the side of the optimum L lies on),
    MuJoCo's four quadratic pieces become 1 - s^2/2 for s <= 1 and (2 - s)^2/2 for 1 < s <= 2.
    """
    s = np.minimum(np.where(stretch < 0.0, -stretch * params.inv_width_short, stretch * params.inv_width_long), 2.0)
    return np.where(s <= 1.0, 1.0 - 0.5 * s * s, 0.5 * (2.0 - s) ** 2)


def _force_velocity(velocity: np.ndarray, params: MuscleParams) -> np.ndarray:
    """Force-velocity curve: 0 at -vmax (shortening), 1 isometric, fvmax when lengthening fast."""
    span = params.fvmax - 1.0
    v = np.clip(velocity, -1.0, span)
    return np.where(v <= 0.0, (v + 1.0) ** 2, params.fvmax - (span - v) ** 2 * params.inv_fv_span)


def direct_excitation(action: np.ndarray) -> np.ndarray:
    """Excitation (a + 1)/2 clipped to [0, 1]."""
    return np.clip((np.asarray(action, dtype=float) + 1.0) * 0.5, 0.0, 1.0)


def target_lengths(params: MuscleParams, action: np.ndarray) -> np.ndarray:
    """Target length L* = (a + 1)/2 * lengthrange_max (m), action clipped to [-1, 1]."""
    return (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * params.lengthrange[:, 1]


def desired_forces(params: MuscleParams, action: np.ndarray, length: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """PD force toward the target length, clip(kp (L* - L) - kd V, -F_peak, 0) (N)."""
    kp = KP_PER_PEAK_FORCE * params.peak_force
    kd = KD_PER_KP * kp
    force = kp * (target_lengths(params, action) - length) - kd * velocity
    return np.clip(force, -params.peak_force, 0.0)


def target_length_control(
    params: MuscleParams, action: np.ndarray, length: np.ndarray, velocity: np.ndarray
) -> np.ndarray:
    """Control value in [0, 1] that makes each muscle pull with its desired PD force.

    Args:
        params: the model's muscle constants.
        action: [..., nu] in [-1, 1] (clipped).
        length: [..., nu] muscle lengths, m.
        velocity: [..., nu] muscle velocities, m/s.
    """
    force = desired_forces(params, action, length, velocity)
    gain = muscle_gain(params, length, velocity)
    bias = muscle_bias(params, length)
    return np.clip((force - bias) / np.minimum(-1.0, gain), 0.0, 1.0)


def target_length_activation(model: mujoco.MjModel, data: mujoco.MjData, action: np.ndarray) -> np.ndarray:
    """Target-length control values [nu] for ``action`` at the muscle state held in ``data``.

    Uses ``data.actuator_length`` and ``data.actuator_velocity`` as stored: inside a
    running simulation these are one physics step old, as in KINESIS v1.
    """
    return target_length_control(
        MuscleParams.from_model(model), np.asarray(action, dtype=float), data.actuator_length, data.actuator_velocity
    )

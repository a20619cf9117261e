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
    """Per-muscle constants of the force model, read once from a model (arrays of shape [nu])."""

    lengthrange: np.ndarray  # [nu, 2] m
    peak_force: np.ndarray  # F_peak = biasprm[:, 2], N
    force_scale: np.ndarray  # force used by the curves (gainprm[2], or scale/acc0 when it is negative), N
    range_lo: np.ndarray  # normalized operating range lower bound (prm[0])
    optimal_length: np.ndarray  # L0, m
    lmin: np.ndarray
    lmax: np.ndarray
    vmax: np.ndarray
    fpmax: np.ndarray
    fvmax: np.ndarray

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> MuscleParams:
        if not np.all(model.actuator_dyntype == mujoco.mjtDyn.mjDYN_MUSCLE):
            raise ValueError("target-length control needs a model whose actuators are all muscles")
        prm = np.asarray(model.actuator_gainprm[:, :9], dtype=float)
        lengthrange = np.array(model.actuator_lengthrange, dtype=float)
        force = prm[:, 2]
        force_scale = np.where(force < 0, prm[:, 3] / np.maximum(_MINVAL, model.actuator_acc0), force)
        optimal_length = (lengthrange[:, 1] - lengthrange[:, 0]) / np.maximum(_MINVAL, prm[:, 1] - prm[:, 0])
        return cls(
            lengthrange=lengthrange,
            peak_force=np.array(model.actuator_biasprm[:, 2], dtype=float),
            force_scale=force_scale,
            range_lo=prm[:, 0],
            optimal_length=optimal_length,
            lmin=prm[:, 4],
            lmax=prm[:, 5],
            vmax=prm[:, 6],
            fpmax=prm[:, 7],
            fvmax=prm[:, 8],
        )

    def normalized_length(self, length: np.ndarray) -> np.ndarray:
        return self.range_lo + (length - self.lengthrange[:, 0]) / np.maximum(_MINVAL, self.optimal_length)


def muscle_gain(params: MuscleParams, length: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Active force per unit control, -F * FL(L) * FV(V) (N, <= 0); shapes [..., nu]."""
    norm_length = params.normalized_length(length)
    norm_velocity = velocity / np.maximum(_MINVAL, params.optimal_length * params.vmax)
    return -params.force_scale * _force_length(norm_length, params.lmin, params.lmax) * _force_velocity(
        norm_velocity, params.fvmax
    )


def muscle_bias(params: MuscleParams, length: np.ndarray) -> np.ndarray:
    """Passive force at a length (N, <= 0); shapes [..., nu]."""
    norm_length = params.normalized_length(length)
    b = 0.5 * (1.0 + params.lmax)
    width = np.maximum(_MINVAL, b - 1.0)
    x_quadratic = (norm_length - 1.0) / width
    x_linear = (norm_length - b) / width
    passive = np.where(norm_length <= b, 0.5 * x_quadratic**2, 0.5 + x_linear)
    return np.where(norm_length <= 1.0, 0.0, -params.force_scale * params.fpmax * passive)


def _force_length(length: np.ndarray, lmin: np.ndarray, lmax: np.ndarray) -> np.ndarray:
    """Piecewise-quadratic active force-length curve, 1 at the optimal length."""
    a = 0.5 * (lmin + 1.0)
    b = 0.5 * (1.0 + lmax)
    rising_low = 0.5 * ((length - lmin) / np.maximum(_MINVAL, a - lmin)) ** 2
    rising_high = 1.0 - 0.5 * ((1.0 - length) / np.maximum(_MINVAL, 1.0 - a)) ** 2
    falling_high = 1.0 - 0.5 * ((length - 1.0) / np.maximum(_MINVAL, b - 1.0)) ** 2
    falling_low = 0.5 * ((lmax - length) / np.maximum(_MINVAL, lmax - b)) ** 2
    curve = np.select(
        [length <= a, length <= 1.0, length <= b],
        [rising_low, rising_high, falling_high],
        default=falling_low,
    )
    return np.where((length < lmin) | (length > lmax), 0.0, curve)


def _force_velocity(velocity: np.ndarray, fvmax: np.ndarray) -> np.ndarray:
    """Force-velocity curve: 0 at -vmax (shortening), 1 isometric, fvmax when lengthening fast."""
    y = fvmax - 1.0
    lengthening = fvmax - (y - velocity) ** 2 / np.maximum(_MINVAL, y)
    return np.select(
        [velocity <= -1.0, velocity <= 0.0, velocity <= y],
        [0.0, (velocity + 1.0) ** 2, lengthening],
        default=fvmax,
    )


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

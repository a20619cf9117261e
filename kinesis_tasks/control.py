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

The muscle curves are MuJoCo's (``mju_muscleGain`` / ``mju_muscleBias``), re-expressed per muscle
as compiled scalar functions (``kinesis_tasks.kernels``, "muscle force model"); ``tests/test_control.py``
checks them against the MuJoCo functions muscle by muscle. ``MuscleSim`` calls
``kernels.target_length_control_into`` at every physics sub-step; the functions below evaluate the
same scalar code over arrays [..., nu].
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from kinesis_tasks import kernels
from kinesis_tasks.kernels import KD_PER_KP, KP_PER_PEAK_FORCE  # noqa: F401  (the PD gains, part of this API)

CONTROL_MODES = ("direct", "target_length")
_MINVAL = 1e-15  # mjMINVAL: MuJoCo's guard against division by zero


@dataclass(frozen=True, eq=False)
class MuscleParams:
    """Per-muscle constants of the force model, read once from a model.

    MuJoCo's curves are piecewise quadratics in the normalized length; they are stored as the
    constants of the equivalent forms used below (widths as inverses, so a control step does no
    divisions by parameters), one row of ``table`` [11, nu] each, named by the properties.
    """

    lengthrange: np.ndarray  # [nu, 2] m
    table: np.ndarray  # [11, nu] float64, C-contiguous, read-only

    @property
    def peak_force(self) -> np.ndarray:
        """F_peak = biasprm[:, 2], N (the PD law's force bound)."""
        return self.table[kernels.PEAK_FORCE]

    @property
    def force_scale(self) -> np.ndarray:
        """F of the curves: gainprm[2], or scale/acc0 when gainprm[2] < 0, N."""
        return self.table[kernels.FORCE_SCALE]

    @property
    def passive_scale(self) -> np.ndarray:
        """F * fpmax, N."""
        return self.table[kernels.PASSIVE_SCALE]

    @property
    def length_offset(self) -> np.ndarray:
        """Normalized length = length * inv_optimal_length + length_offset."""
        return self.table[kernels.LENGTH_OFFSET]

    @property
    def inv_optimal_length(self) -> np.ndarray:
        """1/L0, 1/m."""
        return self.table[kernels.INV_OPTIMAL_LENGTH]

    @property
    def inv_velocity_scale(self) -> np.ndarray:
        """1/(L0 vmax), s/m."""
        return self.table[kernels.INV_VELOCITY_SCALE]

    @property
    def inv_width_short(self) -> np.ndarray:
        """1/(1 - a), a = (lmin + 1)/2: the force-length curve below the optimum."""
        return self.table[kernels.INV_WIDTH_SHORT]

    @property
    def inv_width_long(self) -> np.ndarray:
        """1/(b - 1), b = (1 + lmax)/2: above the optimum, and the passive curve."""
        return self.table[kernels.INV_WIDTH_LONG]

    @property
    def fvmax(self) -> np.ndarray:
        return self.table[kernels.FVMAX]

    @property
    def inv_fv_span(self) -> np.ndarray:
        """1/(fvmax - 1)."""
        return self.table[kernels.INV_FV_SPAN]

    @property
    def nu(self) -> int:
        return self.table.shape[1]

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
        table = np.empty((kernels.MUSCLE_TABLE_ROWS, model.nu))
        table[kernels.LENGTH_MAX] = lengthrange[:, 1]
        table[kernels.PEAK_FORCE] = model.actuator_biasprm[:, 2]
        table[kernels.FORCE_SCALE] = force_scale
        table[kernels.PASSIVE_SCALE] = force_scale * fpmax
        table[kernels.LENGTH_OFFSET] = range_lo - lengthrange[:, 0] * inv_optimal_length
        table[kernels.INV_OPTIMAL_LENGTH] = inv_optimal_length
        table[kernels.INV_VELOCITY_SCALE] = 1.0 / np.maximum(_MINVAL, optimal_length * vmax)
        table[kernels.INV_WIDTH_SHORT] = 1.0 / np.maximum(_MINVAL, 1.0 - 0.5 * (lmin + 1.0))
        table[kernels.INV_WIDTH_LONG] = 1.0 / np.maximum(_MINVAL, 0.5 * (1.0 + lmax) - 1.0)
        table[kernels.FVMAX] = fvmax
        table[kernels.INV_FV_SPAN] = 1.0 / np.maximum(_MINVAL, fvmax - 1.0)
        lengthrange.setflags(write=False)
        table.setflags(write=False)
        return cls(lengthrange=lengthrange, table=table)


def _force_model(params: MuscleParams, quantity: int, action, length, velocity) -> np.ndarray:
    """One quantity (``kernels.TARGET_LENGTH`` ... ``kernels.CONTROL``) of the law over arrays broadcast to [..., nu]."""
    arrays = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (action, length, velocity)))
    shape = arrays[0].shape
    if shape[-1:] != (params.nu,):
        raise ValueError(f"muscle arrays: expected shape [..., {params.nu}], got {shape}")
    rows = [np.ascontiguousarray(x).reshape(-1, params.nu) for x in arrays]
    out = np.empty((5,) + rows[0].shape)
    kernels.force_model_rows(params.table, *rows, out)
    return out[quantity].reshape(shape)


def muscle_gain(params: MuscleParams, length: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Active force per unit control, -F * FL(L) * FV(V) (N, <= 0); shapes [..., nu]."""
    return _force_model(params, kernels.GAIN, 0.0, length, velocity)


def muscle_bias(params: MuscleParams, length: np.ndarray) -> np.ndarray:
    """Passive force at a length (N, <= 0): 0 below the optimum, quadratic, then linear; shapes [..., nu]."""
    return _force_model(params, kernels.BIAS, 0.0, length, 0.0)


def direct_excitation(action: np.ndarray) -> np.ndarray:
    """Excitation (a + 1)/2 clipped to [0, 1]."""
    return np.clip((np.asarray(action, dtype=float) + 1.0) * 0.5, 0.0, 1.0)


def target_lengths(params: MuscleParams, action: np.ndarray) -> np.ndarray:
    """Target length L* = (a + 1)/2 * lengthrange_max (m), action clipped to [-1, 1]."""
    return _force_model(params, kernels.TARGET_LENGTH, action, 0.0, 0.0)


def desired_forces(params: MuscleParams, action: np.ndarray, length: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """PD force toward the target length, clip(kp (L* - L) - kd V, -F_peak, 0) (N)."""
    return _force_model(params, kernels.DESIRED_FORCE, action, length, velocity)


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
    return _force_model(params, kernels.CONTROL, action, length, velocity)


def target_length_activation(model: mujoco.MjModel, data: mujoco.MjData, action: np.ndarray) -> np.ndarray:
    """Target-length control values [nu] for ``action`` at the muscle state held in ``data``.

    Uses ``data.actuator_length`` and ``data.actuator_velocity`` as stored: inside a
    running simulation these are one physics step old, as in KINESIS v1.
    """
    return target_length_control(
        MuscleParams.from_model(model), np.asarray(action, dtype=float), data.actuator_length, data.actuator_velocity
    )

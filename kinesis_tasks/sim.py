"""MuscleSim: a MuJoCo musculoskeletal model stepped at the control rate.

One control step runs ``substeps`` physics steps. Before each physics step the
control law turns the (held) policy action into muscle controls; in
``target_length`` mode it is recomputed at every substep from the muscle length
and velocity MuJoCo stored during the previous physics step (KINESIS v1 keeps
them one substep stale, and so does this class). Optional 3CC-r fatigue
(MyoSuite's ``CumulativeFatigue``) filters the controls before MuJoCo sees them.
"""

from __future__ import annotations

from typing import Literal

import mujoco
import numpy as np

from kinesis_tasks import kernels
from kinesis_tasks.control import CONTROL_MODES, MuscleParams, direct_excitation
from kinesis_tasks.embodiment import physics_defaults, rest_qpos

MuscleCondition = Literal["none", "fatigue"]


class MuscleSim:
    """Model + data, reset to a state and stepped with policy actions in [-1, 1]^nu.

    Attributes:
        model, data: the MuJoCo model and its data (read freely; write through ``reset``).
        substep_controls: [substeps, nu] controls written before each physics step of
            the last control step (used by the energy reward).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        *,
        control_mode: str = "target_length",
        substeps: int | None = None,
        muscle_condition: MuscleCondition = "none",
    ) -> None:
        if control_mode not in CONTROL_MODES:
            raise ValueError(f"control_mode must be one of {CONTROL_MODES}, got {control_mode!r}")
        if muscle_condition not in ("none", "fatigue"):
            raise ValueError(f"muscle_condition must be 'none' or 'fatigue', got {muscle_condition!r}")
        self.model = model
        self.data = mujoco.MjData(model)
        self.control_mode = control_mode
        self.substeps = physics_defaults()[1] if substeps is None else int(substeps)
        self.params = MuscleParams.from_model(model) if control_mode == "target_length" else None
        self.fatigue = _make_fatigue(model) if muscle_condition == "fatigue" else None
        self.substep_controls = np.zeros((self.substeps, model.nu))
        # Views of the data arrays the control law reads and writes (they live as long as ``data``).
        self._ctrl, self._length, self._velocity = self.data.ctrl, self.data.actuator_length, self.data.actuator_velocity
        self._rest_qpos = rest_qpos(model)
        self.reset()

    @property
    def nu(self) -> int:
        return self.model.nu

    @property
    def control_dt(self) -> float:
        """Seconds per control step."""
        return self.model.opt.timestep * self.substeps

    def reset(
        self,
        qpos: np.ndarray | None = None,
        qvel: np.ndarray | None = None,
        act: np.ndarray | None = None,
    ) -> None:
        """Reset data (model defaults where an argument is None; qpos: ``embodiment.rest_qpos``) and evaluate the
        state."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self._rest_qpos
        for name, value, size in (("qpos", qpos, self.model.nq), ("qvel", qvel, self.model.nv), ("act", act, self.model.na)):
            if value is not None:
                getattr(self.data, name)[:] = _checked_vector(value, size, name)
        if self.fatigue is not None:
            self.fatigue.reset()
        self.substep_controls[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def step(self, action: np.ndarray) -> None:
        """Advance one control step with ``action`` ([nu], finite; clipped to [-1, 1]).

        Raises:
            ValueError: wrong shape or non-finite values; the state is left untouched.
        """
        action = _checked_vector(action, self.nu, "action")  # both control laws clip it
        model, data, controls, ctrl = self.model, self.data, self.substep_controls, self._ctrl
        law = self.params.table if self.params is not None else None
        if law is None:
            controls[:] = direct_excitation(action)
            ctrl[:] = controls[0]
        for control in controls:  # row k, a view
            if law is not None:  # from the muscle state of the previous sub-step (stale, as in v1)
                kernels.target_length_control_into(law, action, self._length, self._velocity, control, ctrl)
            if self.fatigue is not None:
                control[:] = self.fatigue.compute_act(control, dt=model.opt.timestep)[0]
                ctrl[:] = control
            mujoco.mj_step(model, data)

    def fatigue_state(self) -> dict[str, np.ndarray] | None:
        """3CC-r compartments {"active", "resting", "fatigued"} per muscle, or None without fatigue."""
        if self.fatigue is None:
            return None
        active, resting, fatigued = self.fatigue.MA, self.fatigue.MR, self.fatigue.MF
        return {"active": active.copy(), "resting": resting.copy(), "fatigued": fatigued.copy()}


def _make_fatigue(model: mujoco.MjModel):
    from myosuite.core.muscle_conditions import CumulativeFatigue

    return CumulativeFatigue(model, frame_skip=1)


def _checked_vector(value: np.ndarray, size: int, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {array.shape}")
    if not kernels.all_finite(array):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array

"""Controllers that need no training: the fallbacks, run only when asked for by name.

``hold_pose_action`` holds the muscle lengths of a pose with the target-length
law (action = 2 L / L_max - 1). It has no balance feedback: a standing body sways
and sinks, which is what `kinesis demo --sim-only` shows. The policy node, `kinesis eval`,
`kinesis view` and `kinesis demo` run a fallback when their checkpoint is one of the names
of ``FALLBACKS`` (``--checkpoint hold-pose``), or when no checkpoint is given for an
embodiment without a bundled policy where that is allowed (``kinesis_tasks.bundled``).
"""

from __future__ import annotations

import mujoco
import numpy as np

FALLBACKS: dict[str, str] = {
    "hold-pose": "hold-pose fallback (holds the standing muscle lengths, no balance)",
    "zero-action": "zero action (every muscle's target length at half its maximum)",
}
"""Names of the controllers that need no checkpoint (``--checkpoint NAME``) and what each does."""


def relax_action(model: mujoco.MjModel) -> np.ndarray:
    """Action [nu] that relaxes every muscle in target-length mode."""
    return np.ones(model.nu)


def hold_pose_action(model: mujoco.MjModel, qpos: np.ndarray | None = None) -> np.ndarray:
    """Target-length action [nu] in [-1, 1] whose targets are the muscle lengths at ``qpos`` (default qpos0)."""
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0 if qpos is None else qpos
    mujoco.mj_fwdPosition(model, data)
    return np.clip(2.0 * data.actuator_length / model.actuator_lengthrange[:, 1] - 1.0, -1.0, 1.0)


def fallback_action(name: str, model: mujoco.MjModel, control_mode: str = "target_length") -> np.ndarray:
    """The constant action [nu] of the fallback ``name`` (a key of ``FALLBACKS``).

    ``hold-pose``: ``hold_pose_action`` in target-length mode; in direct mode no muscle is excited (-1: a
    length target has no meaning there). ``zero-action``: 0 for every muscle.
    """
    if name not in FALLBACKS:
        raise ValueError(f"unknown fallback controller {name!r}: one of {sorted(FALLBACKS)}")
    if name == "zero-action":
        return np.zeros(model.nu)
    return hold_pose_action(model) if control_mode == "target_length" else np.full(model.nu, -1.0)

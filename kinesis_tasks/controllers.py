"""Controllers that need no training: the fallback when no policy checkpoint is given.

``hold_pose_action`` holds the muscle lengths of a pose with the target-length
law (action = 2 L / L_max - 1). It has no balance feedback: a standing body sways
and sinks, which is what `kinesis demo` shows and what the policy node runs
(and says so) when started without a checkpoint.
"""

from __future__ import annotations

import mujoco
import numpy as np

def relax_action(model: mujoco.MjModel) -> np.ndarray:
    """Action [nu] that relaxes every muscle in target-length mode."""
    return np.ones(model.nu)


def hold_pose_action(model: mujoco.MjModel, qpos: np.ndarray | None = None) -> np.ndarray:
    """Target-length action [nu] in [-1, 1] whose targets are the muscle lengths at ``qpos`` (default qpos0)."""
    data = mujoco.MjData(model)
    data.qpos[:] = model.qpos0 if qpos is None else qpos
    mujoco.mj_fwdPosition(model, data)
    return np.clip(2.0 * data.actuator_length / model.actuator_lengthrange[:, 1] - 1.0, -1.0, 1.0)

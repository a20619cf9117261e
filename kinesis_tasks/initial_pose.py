"""Initial poses for motions without a qpos: least-squares inverse kinematics on tracked keypoints.

``PoseFitter(model, tracked)`` resolves, once per model, the free variables of the fit:

* the root position (3) and a rotation vector (3) applied on the left of the initial root orientation;
* every independent hinge/slide joint on the kinematic chains from the root to the tracked bodies
  (the leg joints; with "head" tracked also the torso joints below it). Joints that a joint equality
  couples to another joint follow its polynomial, y - y0 = sum_k c_k (x - x0)^k, as MuJoCo defines it.

The fit starts from ``qpos0`` with the root at the reference root keypoint and the heading turned so the
model's right-to-left tibia direction matches the reference's (the keypoints have no hips; the tibiae are
the highest tracked bodies on each side). It minimises the tracked-body position errors (m) plus a small
Tikhonov term that keeps poorly observed joints (subtalar, hip rotation) near ``qpos0``; joints stay in
their ranges. ``scipy.optimize.least_squares`` drives ``mujoco.mj_kinematics``. The result depends only on
the keypoints, so it can be cached per (motion, frame).

``InitialStates(model, tracked)`` is the one implementation of a motion's initial state, shared by
``ImitationEnv`` (offline training and ``kinesis eval``) and the policy node (which resets the simulation
to it over ROS at every motion start): (qpos, qvel) at frame f is the motion's own qpos at f when it
carries one for this embodiment, else the fit above, and qvel the forward difference to frame f + 1
(``mujoco.mj_differentiatePos`` over 1 / fps). Fits are cached per (motion name, frame).
"""

from __future__ import annotations

from typing import Protocol, Sequence

import mujoco
import numpy as np

from kinesis_tasks.embodiment import apply_couplings, joint_couplings

#: Weight of the joint-angle regulariser, m per rad: 1 rad away from qpos0 costs as much as 1 cm of error.
REGULARISATION = 0.01


class MotionFrames(Protocol):
    """What ``InitialStates`` reads of a motion prepared for one embodiment (``imitation.MotionTrack``)."""

    name: str
    fps: float
    keypoints: np.ndarray  # [T, K, 3] the tracked bodies, in the fitter's order
    qpos: np.ndarray | None  # [T, nq] when the motion carries one for this embodiment


class InitialStates:
    """(qpos [nq], qvel [nv]) of ``model`` at a frame of a motion; IK fits (``PoseFitter`` on the bodies
    ``tracked``) cached per (motion name, frame). A cached fit is used again only for the same keypoints, so
    a new motion that reuses a name (a generated one, say) is fitted anew."""

    def __init__(self, model: mujoco.MjModel, tracked: Sequence[str]) -> None:
        self.model = model
        self.tracked = tuple(tracked)
        self._fitter: PoseFitter | None = None
        self._fitted: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}

    def fitted_qpos(self, motion: MotionFrames, frame: int) -> np.ndarray:
        """IK-fitted qpos [nq] for ``frame`` of ``motion`` (cached; the same array on every call)."""
        key, keypoints = (motion.name, int(frame)), motion.keypoints[frame]
        cached = self._fitted.get(key)
        if cached is None or not np.array_equal(cached[0], keypoints):
            if self._fitter is None:
                self._fitter = PoseFitter(self.model, self.tracked)
            cached = self._fitted[key] = (np.array(keypoints), self._fitter.fit(keypoints))
        return cached[1]

    def __call__(self, motion: MotionFrames, frame: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(qpos [nq], qvel [nv]) at ``frame`` of ``motion`` (a fresh qpos array; needs frame + 1 to exist)."""
        if not 0 <= frame < motion.keypoints.shape[0] - 1:
            raise ValueError(f"frame {frame} of motion {motion.name!r}: an initial state needs the frame and the next "
                             f"(the motion has {motion.keypoints.shape[0]} frames)")
        if motion.qpos is not None:
            q0, q1 = motion.qpos[frame], motion.qpos[frame + 1]
        else:
            q0, q1 = self.fitted_qpos(motion, frame), self.fitted_qpos(motion, frame + 1)
        qvel = np.empty(self.model.nv)
        mujoco.mj_differentiatePos(self.model, qvel, 1.0 / motion.fps, q0, q1)
        return np.array(q0, dtype=np.float64), qvel


class PoseFitter:
    """Fits qpos [nq] of ``model`` to keypoints [K, 3] of the bodies ``tracked`` (first one: the free root)."""

    def __init__(self, model: mujoco.MjModel, tracked: Sequence[str], regularisation: float = REGULARISATION) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.regularisation = float(regularisation)
        self.body_ids = np.array([_body_id(model, name) for name in tracked], dtype=np.intp)
        free = np.flatnonzero((model.jnt_type == mujoco.mjtJoint.mjJNT_FREE) & (model.jnt_bodyid == self.body_ids[0]))
        if len(free) != 1:
            raise ValueError(f"tracked: the first body {tracked[0]!r} must carry the model's free root joint")
        self.root_adr = int(model.jnt_qposadr[free[0]])
        self.couplings = joint_couplings(model)
        dependent = {joint for joint, *_ in self.couplings}
        chain = _chain_joints(model, self.body_ids)
        self.joint_adr = np.array([model.jnt_qposadr[j] for j in chain if j not in dependent], dtype=np.intp)
        joint_ids = [j for j in chain if j not in dependent]
        limited = model.jnt_limited[joint_ids].astype(bool)
        ranges = model.jnt_range[joint_ids]
        self.lower = np.concatenate((np.full(6, -np.inf), np.where(limited, ranges[:, 0], -np.inf)))
        self.upper = np.concatenate((np.full(6, np.inf), np.where(limited, ranges[:, 1], np.inf)))
        self._qpos0_joints = np.clip(model.qpos0[self.joint_adr], self.lower[6:], self.upper[6:])
        self._lateral_pair = _tibia_pair(tracked)

    def initial_guess(self, keypoints: np.ndarray) -> np.ndarray:
        """qpos0 with the root at keypoints[0] and the model's heading turned to the reference's."""
        qpos = self.model.qpos0.copy()
        qpos[self.root_adr : self.root_adr + 3] = keypoints[0]
        if self._lateral_pair is not None:
            left, right = self._lateral_pair
            self._kinematics(qpos)
            model_side = self.data.xpos[self.body_ids[left]] - self.data.xpos[self.body_ids[right]]
            ref_side = keypoints[left] - keypoints[right]
            yaw = np.arctan2(ref_side[1], ref_side[0]) - np.arctan2(model_side[1], model_side[0])
            turn = np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
            quat = np.empty(4)
            mujoco.mju_mulQuat(quat, turn, qpos[self.root_adr + 3 : self.root_adr + 7])
            qpos[self.root_adr + 3 : self.root_adr + 7] = quat
        return qpos

    def fit(self, keypoints: np.ndarray) -> np.ndarray:
        """qpos [nq] whose tracked bodies best match ``keypoints`` [K, 3] (world, m)."""
        from scipy.optimize import least_squares  # imported here: it costs every node process ~0.3 s

        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.shape != (len(self.body_ids), 3):
            raise ValueError(f"keypoints: expected shape [{len(self.body_ids)}, 3], got {keypoints.shape}")
        base = self.initial_guess(keypoints)
        x0 = np.concatenate((base[self.root_adr : self.root_adr + 3], np.zeros(3), self._qpos0_joints))
        reg_target = np.concatenate((np.zeros(3), self._qpos0_joints))

        def residuals(x: np.ndarray) -> np.ndarray:
            self._kinematics(self._qpos(base, x))
            error = (self.data.xpos[self.body_ids] - keypoints).ravel()
            return np.concatenate((error, self.regularisation * (x[3:] - reg_target)))

        solution = least_squares(residuals, x0, bounds=(self.lower, self.upper), method="trf", x_scale=1.0)
        return self._qpos(base, solution.x)

    def _qpos(self, base: np.ndarray, x: np.ndarray) -> np.ndarray:
        qpos = base.copy()
        adr = self.root_adr
        qpos[adr : adr + 3] = x[:3]
        turn = np.empty(4)
        mujoco.mju_axisAngle2Quat(turn, x[3:6] / max(np.linalg.norm(x[3:6]), 1e-12), np.linalg.norm(x[3:6]))
        quat = np.empty(4)
        mujoco.mju_mulQuat(quat, turn, base[adr + 3 : adr + 7])
        qpos[adr + 3 : adr + 7] = quat
        qpos[self.joint_adr] = x[6:]
        return apply_couplings(self.model, qpos, self.couplings)

    def _kinematics(self, qpos: np.ndarray) -> None:
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self.data)


def _body_id(model: mujoco.MjModel, name: str) -> int:
    body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, name)
    if body < 0:
        raise ValueError(f"tracked: the model has no body {name!r}")
    return body


def _chain_joints(model: mujoco.MjModel, body_ids: np.ndarray) -> list[int]:
    """Hinge and slide joints on the paths from the root to ``body_ids``, in model order."""
    bodies: set[int] = set()
    for body in body_ids:
        body = int(body)
        while body > 0 and body not in bodies:
            bodies.add(body)
            body = int(model.body_parentid[body])
    movable = (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
    return [j for j in range(model.njnt) if model.jnt_bodyid[j] in bodies and model.jnt_type[j] in movable]


def _tibia_pair(tracked: Sequence[str]) -> tuple[int, int] | None:
    names = list(tracked)
    if "tibia_l" in names and "tibia_r" in names:
        return names.index("tibia_l"), names.index("tibia_r")
    return None

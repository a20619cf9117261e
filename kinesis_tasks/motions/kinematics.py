"""Joint angles -> qpos -> keypoints for a MyoLegs embodiment (offline, used to build motions).

Orientation convention of generated motions: at yaw 0 the body walks along world +x
with its left side towards +y. MyoLegs' root frame at the identity faces -y (left
is +x), so the root orientation is Rz(yaw) Ry(pitch) Rx(roll) Rz(pi/2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from kinesis_tasks.embodiment import FLOOR_GEOM, apply_couplings, joint_couplings, load_embodiment
from kinesis_tasks.motions.motion import DEFAULT_BODIES, HEAD_BODY

#: Rotation from MyoLegs' root frame (facing -y) to the motion heading frame (facing +x).
_FACE_PLUS_X = Rotation.from_euler("z", np.pi / 2)


def root_orientation(yaw: np.ndarray, pitch: np.ndarray | float = 0.0, roll: np.ndarray | float = 0.0) -> np.ndarray:
    """[T, 4] root quaternions (w, x, y, z): heading ``yaw`` (0 = facing +x), forward ``pitch``, ``roll``, rad."""
    yaw = np.asarray(yaw, dtype=np.float64)
    euler = np.stack(np.broadcast_arrays(yaw, pitch, roll), axis=-1)
    rotation = Rotation.from_euler("ZYX", euler) * _FACE_PLUS_X
    return rotation.as_quat(scalar_first=True)


class LegsKinematics:
    """Forward kinematics of an embodiment: named joint angles to qpos and body keypoints.

    Joints that MyoLegs couples to the knee by joint equalities (knee translations,
    patella) follow their polynomial, qd - qd0 = sum_k c_k (q - q0)^k; named angles
    are clipped to their joint ranges.
    """

    def __init__(self, embodiment: str = "legs", bodies: Sequence[str] = (*DEFAULT_BODIES, HEAD_BODY)) -> None:
        self.embodiment = embodiment
        self.model = load_embodiment(embodiment)
        self.data = mujoco.MjData(self.model)
        self.bodies = tuple(bodies)
        self._body_ids = np.array([self.model.body(name).id for name in self.bodies])
        self._couplings = joint_couplings(self.model)
        feet = [self.model.body(f"{part}_{side}").id for part in ("calcn", "toes") for side in "lr"]
        colliding = (self.model.geom_contype | self.model.geom_conaffinity) > 0
        self._foot_geoms = [int(g) for g in np.flatnonzero(colliding & np.isin(self.model.geom_bodyid, feet))]
        self._foot_sides = np.array([0 if self.model.body(int(self.model.geom_bodyid[g])).name.endswith("_l") else 1
                                     for g in self._foot_geoms])  # 0 left, 1 right
        self._floor = self.model.geom(FLOOR_GEOM).id

    @property
    def standing_qpos(self) -> np.ndarray:
        """[nq] the embodiment's rest pose (feet flat on the floor, facing -y)."""
        return self.model.qpos0.copy()

    @property
    def leg_length(self) -> float:
        """Height (m) of the hip joint centre (the femur's origin) above the ankle (talus) in the rest pose."""
        self.data.qpos[:] = self.model.qpos0
        mujoco.mj_kinematics(self.model, self.data)
        hip, ankle = (self.data.xpos[self.model.body(name).id, 2] for name in ("femur_l", "talus_l"))
        return float(hip - ankle)

    def qpos(self, root_pos: np.ndarray, root_quat: np.ndarray, angles: Mapping[str, np.ndarray]) -> np.ndarray:
        """[T, nq] joint positions from root position [T, 3] (m), root_quat [T, 4] and joint angles [T] (rad)."""
        root_pos = np.asarray(root_pos, dtype=np.float64)
        frames = root_pos.shape[0]
        qpos = np.tile(self.model.qpos0, (frames, 1))
        qpos[:, 0:3] = root_pos
        qpos[:, 3:7] = root_quat
        for name, values in angles.items():
            joint = self.model.joint(name)
            low, high = self.model.jnt_range[joint.id]
            qpos[:, self.model.jnt_qposadr[joint.id]] = np.clip(values, low, high)
        return apply_couplings(self.model, qpos, self._couplings)

    def keypoints(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body positions [T, K, 3] of ``bodies`` and foot-floor clearance [T] (m) for qpos [T, nq].

        The clearance is the signed distance (negative: penetration) from the floor to
        the closest colliding geom of the feet (calcn, toes).
        """
        frames = qpos.shape[0]
        keypoints = np.empty((frames, len(self.bodies), 3))
        clearance = np.empty(frames)
        for frame in range(frames):
            self.data.qpos[:] = qpos[frame]
            mujoco.mj_kinematics(self.model, self.data)
            keypoints[frame] = self.data.xpos[self._body_ids]
            clearance[frame] = self._floor_contacts()[0].min()
        return keypoints, clearance

    def foot_gaps(self, qpos: np.ndarray) -> np.ndarray:
        """[T, 2] distance (m) from the floor to the lowest colliding geom of the left and right foot."""
        gaps = np.empty((len(qpos), 2))
        for frame in range(len(qpos)):
            self.data.qpos[:] = qpos[frame]
            mujoco.mj_kinematics(self.model, self.data)
            each = self._floor_contacts()[0]
            gaps[frame] = [each[self._foot_sides == side].min() for side in (0, 1)]
        return gaps

    def _floor_contacts(self) -> tuple[np.ndarray, np.ndarray]:
        """For the current kinematics of ``data``: each foot geom's signed distance to the floor [G] (m) and
        its point nearest the floor [G, 3] (world frame)."""
        gaps, points, fromto = np.empty(len(self._foot_geoms)), np.empty((len(self._foot_geoms), 3)), np.zeros(6)
        for i, geom in enumerate(self._foot_geoms):
            gaps[i] = mujoco.mj_geomDistance(self.model, self.data, self._floor, geom, 1.0, fromto)
            points[i] = fromto[3:6]
        return gaps, points

    def foot_locked(self, qpos: np.ndarray, *, band: float = 0.01, stance: np.ndarray | None = None) -> np.ndarray:
        """``qpos`` [T, nq] with root x-y re-integrated so that the feet on the floor do not slide.

        Per frame, the foot geoms within ``band`` (m) of the lowest one carry the body (weights
        fall linearly to 0 at ``band``); the point of each that touches the floor is followed as a
        material point of its body to the next frame, and the root moves by minus their weighted mean
        horizontal displacement: the no-slip condition of stance, rolling over heel and toes included.
        ``stance`` [T, 2] (left, right) in [0, 1], if given, says which foot may carry at each frame (the
        lowest geom is then sought among that foot's): a swing foot that grazes the floor, or the toes
        of a foot about to swing, then do not drag the body along. Everything but root x-y is kept;
        the first frame's x-y is the start.
        """
        qpos = np.asarray(qpos, dtype=np.float64)
        model, data = self.model, self.data
        bodies = model.geom_bodyid[self._foot_geoms]
        allowed = np.ones((len(qpos), 2)) if stance is None else np.asarray(stance, dtype=np.float64)
        out = qpos.copy()

        def pose(frame: int) -> None:
            data.qpos[:] = qpos[frame]
            data.qpos[:2] = 0.0
            mujoco.mj_kinematics(model, data)

        for frame in range(len(qpos) - 1):
            pose(frame)
            gaps, points = self._floor_contacts()
            share = allowed[frame, self._foot_sides]
            weights = share * np.clip(1.0 - (gaps - gaps[share > 0].min()) / band, 0.0, None)
            local = np.einsum("kji,kj->ki", data.xmat[bodies].reshape(-1, 3, 3), points - data.xpos[bodies])
            pose(frame + 1)
            moved = np.einsum("kij,kj->ki", data.xmat[bodies].reshape(-1, 3, 3), local) + data.xpos[bodies] - points
            out[frame + 1, :2] = out[frame, :2] - weights @ moved[:, :2] / weights.sum()
        return out


"""Vectorized rotation helpers for unit quaternions in MuJoCo's (w, x, y, z) order.

Every function accepts arbitrary leading batch dimensions (``...``) and works in float64.
Angles are in radians. The heading of an orientation is the yaw of its rotated x axis,
h = atan2(R[1, 0], R[0, 0]); "heading-inverse" frames rotate world vectors by -h about z.
"""

from __future__ import annotations

import numpy as np


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions.

    Args:
        quat: [..., 4] quaternions (w, x, y, z); normalised here.

    Returns:
        [..., 3, 3] rotation matrices R with v_world = R v_body.
    """
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2)


def heading_angle(quat: np.ndarray) -> np.ndarray:
    """Heading (yaw of the rotated x axis) of quaternions [..., 4] -> [...], rad."""
    mat = quat_to_matrix(quat)
    return np.arctan2(mat[..., 1, 0], mat[..., 0, 0])


def rotate_by_heading_inverse(heading: np.ndarray, vec: np.ndarray) -> np.ndarray:
    """Rotate vectors by -heading about world z.

    Args:
        heading: [...] heading angles, rad.
        vec: [..., 3] or [..., K, 3] vectors in the world frame; leading dims match ``heading``.

    Returns:
        Vectors of the same shape as ``vec`` in the heading frame:
        (cos h vx + sin h vy, -sin h vx + cos h vy, vz).
    """
    vec = np.asarray(vec, dtype=np.float64)
    h = np.asarray(heading, dtype=np.float64)
    h = h.reshape(h.shape + (1,) * (vec.ndim - 1 - h.ndim))
    cos_h, sin_h = np.cos(h), np.sin(h)
    vx, vy, vz = vec[..., 0], vec[..., 1], vec[..., 2]
    return np.stack((cos_h * vx + sin_h * vy, -sin_h * vx + cos_h * vy, vz), axis=-1)


def tilt_angles(quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roll and pitch of quaternions [..., 4] as extrinsic x-y-z Euler angles.

    With R = Rz(ez) Ry(ey) Rx(ex): ex = atan2(R[2,1], R[2,2]), ey = -asin(R[2,0]).

    Returns:
        (ex, ey), each [...], rad.
    """
    mat = quat_to_matrix(quat)
    ex = np.arctan2(mat[..., 2, 1], mat[..., 2, 2])
    ey = -np.arcsin(np.clip(mat[..., 2, 0], -1.0, 1.0))
    return ex, ey

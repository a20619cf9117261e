"""Vectorized rotation helpers for unit quaternions in MuJoCo's (w, x, y, z) order.

Every function accepts arbitrary leading batch dimensions (``...``) and works in float64.
Angles are in radians. The heading of an orientation is the yaw of its rotated x axis,
h = atan2(R[1, 0], R[0, 0]); "heading-inverse" frames rotate world vectors by -h about z.
"""

from __future__ import annotations

import numpy as np


def _quat_product_to_matrix() -> np.ndarray:
    """[16, 9] map from the outer product q q^T (flattened) to the (flattened) rotation matrix times |q|^2."""
    coef = np.zeros((4, 4, 3, 3))
    w, x, y, z = range(4)
    for (a, b), sign in (((w, w), 1), ((x, x), 1), ((y, y), -1), ((z, z), -1)):
        coef[a, b, 0, 0] = sign
    for (a, b), sign in (((w, w), 1), ((x, x), -1), ((y, y), 1), ((z, z), -1)):
        coef[a, b, 1, 1] = sign
    for (a, b), sign in (((w, w), 1), ((x, x), -1), ((y, y), -1), ((z, z), 1)):
        coef[a, b, 2, 2] = sign
    # Off-diagonal entries 2(ab +- cd), split evenly over the symmetric pairs (a, b) and (b, a).
    for i, j, (a, b), (c, d), sign in (
        (0, 1, (x, y), (w, z), -1), (1, 0, (x, y), (w, z), 1),
        (0, 2, (x, z), (w, y), 1), (2, 0, (x, z), (w, y), -1),
        (1, 2, (y, z), (w, x), -1), (2, 1, (y, z), (w, x), 1),
    ):
        coef[a, b, i, j] = coef[b, a, i, j] = 1.0
        coef[c, d, i, j] = coef[d, c, i, j] = sign
    return coef.reshape(16, 9)


_QUAT_PRODUCT_TO_MATRIX = _quat_product_to_matrix()


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions.

    Args:
        quat: [..., 4] quaternions (w, x, y, z); need not be normalised.

    Returns:
        [..., 3, 3] rotation matrices R with v_world = R v_body.
    """
    q = np.asarray(quat, dtype=np.float64)
    outer = (q[..., :, None] * q[..., None, :]).reshape(q.shape[:-1] + (16,))
    mat = (outer @ _QUAT_PRODUCT_TO_MATRIX) / np.einsum("...i,...i->...", q, q)[..., None]
    return mat.reshape(q.shape[:-1] + (3, 3))


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

"""Rotation helpers for unit quaternions in MuJoCo's (w, x, y, z) order.

Every function accepts arbitrary leading batch dimensions (``...``) and works in float64.
Angles are in radians. The heading of an orientation is the yaw of its rotated x axis,
h = atan2(R[1, 0], R[0, 0]); "heading-inverse" frames rotate world vectors by -h about z.
The per-quaternion math is ``kinesis_tasks.kernels`` (quat_matrix, heading, tilt, put_rotated),
which the observation and reward kernels call as well.
"""

from __future__ import annotations

import numpy as np

from kinesis_tasks import kernels


def _rows(array: np.ndarray, width: int, name: str) -> np.ndarray:
    """``array`` [..., width] as a C-contiguous float64 [N, width]; ValueError naming ``name`` otherwise."""
    array = np.asarray(array, dtype=np.float64)
    if array.shape[-1:] != (width,):
        raise ValueError(f"{name}: expected shape [..., {width}], got {array.shape}")
    return np.ascontiguousarray(array).reshape(-1, width)


def quat_to_matrix(quat: np.ndarray) -> np.ndarray:
    """Rotation matrices of quaternions.

    Args:
        quat: [..., 4] quaternions (w, x, y, z); need not be normalised.

    Returns:
        [..., 3, 3] rotation matrices R with v_world = R v_body.
    """
    rows = _rows(quat, 4, "quat")
    out = np.empty((rows.shape[0], 9))
    kernels.matrix_rows(rows, out)
    return out.reshape(np.shape(quat)[:-1] + (3, 3))


def heading_angle(quat: np.ndarray) -> np.ndarray:
    """Heading (yaw of the rotated x axis) of quaternions [..., 4] -> [...], rad."""
    rows = _rows(quat, 4, "quat")
    out = np.empty(rows.shape[0])
    kernels.heading_rows(rows, out)
    return out.reshape(np.shape(quat)[:-1])


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
    h = np.broadcast_to(h.reshape(h.shape + (1,) * (vec.ndim - 1 - h.ndim)), vec.shape[:-1])
    rows = _rows(vec, 3, "vec")
    out = np.empty_like(rows)
    kernels.rotate_rows(np.ascontiguousarray(h).reshape(-1), rows, out)
    return out.reshape(vec.shape)


def tilt_angles(quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roll and pitch of quaternions [..., 4] as extrinsic x-y-z Euler angles.

    With R = Rz(ez) Ry(ey) Rx(ex): ex = atan2(R[2,1], R[2,2]), ey = -asin(R[2,0]).

    Returns:
        (ex, ey), each [...], rad.
    """
    rows = _rows(quat, 4, "quat")
    out = np.empty((rows.shape[0], 2))
    kernels.tilt_rows(rows, out)
    shape = np.shape(quat)[:-1]
    return out[:, 0].reshape(shape), out[:, 1].reshape(shape)

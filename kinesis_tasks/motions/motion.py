"""ReferenceMotion: tracked-body keypoints over time, with validation, resampling and .npz io.

Conventions: world frame z-up, metres, seconds. Keypoints are body origins
(``xpos`` in MuJoCo terms) of ``body_names``, by default the seven tracked bodies
followed, where known, by ``head``. Quaternions are (w, x, y, z).

Keypoint velocities are not stored: ``velocities`` derives them with
``numpy.gradient`` (second-order central differences inside, first-order
one-sided differences at the first and last frame), so they always match the
positions.

A motion file is an uncompressed or compressed ``.npz`` read with
``allow_pickle=False``; strings are stored as NumPy unicode arrays.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path

import numpy as np

#: Bodies whose origins a motion tracks by default (same order as kinesis_tasks.embodiment.TRACKED_BODIES).
DEFAULT_BODIES: tuple[str, ...] = ("root", "tibia_l", "tibia_r", "talus_l", "talus_r", "toes_l", "toes_r")

#: Optional extra body stored after the tracked ones when the source has it.
HEAD_BODY = "head"

MOTION_FORMAT = "kinesis-motion-1"

_STRING_FIELDS = ("name", "embodiment", "text", "source", "licence")


@dataclass(frozen=True, eq=False)
class ReferenceMotion:
    """One reference motion.

    Attributes:
        name: unique name within its library.
        fps: frame rate, Hz (> 0).
        keypoints: [T, K, 3] world positions of ``body_names`` (z-up, m), T >= 2.
        body_names: K body names; the first seven are the tracked bodies.
        root_quat: optional [T, 4] orientation (w, x, y, z) of the embodiment's root body.
        qpos: optional [T, nq] joint positions of ``embodiment`` (qpos[:, :7] is the free root joint).
        embodiment: embodiment name that ``qpos`` belongs to (required with ``qpos``).
        text: plain-English description ("walk forward slowly"); may be empty.
        source: where the data came from (dataset, file, derivation).
        licence: licence of the source data.
    """

    name: str
    fps: float
    keypoints: np.ndarray
    body_names: tuple[str, ...] = DEFAULT_BODIES
    root_quat: np.ndarray | None = None
    qpos: np.ndarray | None = None
    embodiment: str = ""
    text: str = ""
    source: str = ""
    licence: str = ""

    def __post_init__(self) -> None:
        where = f"motion {self.name!r}"
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise ValueError(f"motion name must be a non-empty string without '/', got {self.name!r}")
        fps = float(self.fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"{where}: fps must be a finite number > 0, got {self.fps!r}")
        object.__setattr__(self, "fps", fps)
        names = tuple(str(n) for n in self.body_names)
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: body_names has duplicates: {names}")
        object.__setattr__(self, "body_names", names)
        keypoints = _frozen_array(self.keypoints, where, "keypoints")
        if keypoints.ndim != 3 or keypoints.shape[2] != 3 or keypoints.shape[1] != len(names):
            raise ValueError(f"{where}: keypoints must have shape [T, {len(names)}, 3] (one row per body in "
                             f"body_names), got {keypoints.shape}")
        if keypoints.shape[0] < 2:
            raise ValueError(f"{where}: needs at least 2 frames, got {keypoints.shape[0]}")
        object.__setattr__(self, "keypoints", keypoints)
        frames = keypoints.shape[0]
        if self.root_quat is not None:
            quat = _frozen_array(self.root_quat, where, "root_quat")
            if quat.shape != (frames, 4):
                raise ValueError(f"{where}: root_quat must have shape [{frames}, 4], got {quat.shape}")
            norm = np.linalg.norm(quat, axis=1, keepdims=True)
            if np.any(np.abs(norm - 1.0) > 1e-3):
                raise ValueError(f"{where}: root_quat rows must be unit quaternions (w, x, y, z)")
            quat = quat / norm
            quat.setflags(write=False)
            object.__setattr__(self, "root_quat", quat)
        if self.qpos is not None:
            qpos = _frozen_array(self.qpos, where, "qpos")
            if qpos.ndim != 2 or qpos.shape[0] != frames or qpos.shape[1] < 7:
                raise ValueError(f"{where}: qpos must have shape [{frames}, nq >= 7], got {qpos.shape}")
            if not self.embodiment:
                raise ValueError(f"{where}: qpos given without the embodiment it belongs to")
            object.__setattr__(self, "qpos", qpos)
        for name in ("embodiment", "text", "source", "licence"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{where}: {name} must be a string, got {type(getattr(self, name)).__name__}")

    # --- derived quantities ---------------------------------------------------------------------

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]

    @property
    def duration(self) -> float:
        """Time from the first to the last frame, s."""
        return (self.num_frames - 1) / self.fps

    @property
    def times(self) -> np.ndarray:
        """[T] frame times from 0, s."""
        return np.arange(self.num_frames) / self.fps

    @cached_property
    def velocities(self) -> np.ndarray:
        """[T, K, 3] keypoint velocities, m/s (numpy.gradient: central inside, one-sided at the ends)."""
        vel = np.gradient(self.keypoints, 1.0 / self.fps, axis=0)
        vel.setflags(write=False)
        return vel

    def body_index(self, body: str) -> int:
        """Index of ``body`` in ``body_names`` (ValueError naming the known bodies)."""
        if body not in self.body_names:
            raise ValueError(f"motion {self.name!r} has no body {body!r}; it has {list(self.body_names)}")
        return self.body_names.index(body)

    def replace(self, **changes) -> ReferenceMotion:
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        values.update(changes)
        return ReferenceMotion(**values)

    def resample(self, fps: float) -> ReferenceMotion:
        """The motion at another frame rate, same duration up to half a new frame.

        Positions (keypoints, qpos) are interpolated linearly, quaternions (root_quat
        and qpos[:, 3:7]) by spherical linear interpolation. New frames sit at
        k / fps for k = 0 .. round(duration * fps).
        """
        fps = float(fps)
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"resample fps must be a finite number > 0, got {fps!r}")
        new_frames = max(2, int(round(self.duration * fps)) + 1)
        position = np.minimum(np.arange(new_frames) / fps * self.fps, self.num_frames - 1)
        changes: dict = {"fps": fps, "keypoints": _lerp(self.keypoints, position)}
        if self.root_quat is not None:
            changes["root_quat"] = _slerp(self.root_quat, position)
        if self.qpos is not None:
            qpos = _lerp(self.qpos, position)
            qpos[:, 3:7] = _slerp(self.qpos[:, 3:7] / np.linalg.norm(self.qpos[:, 3:7], axis=1, keepdims=True), position)
            changes["qpos"] = qpos
        return self.replace(**changes)

    # --- serialisation ---------------------------------------------------------------------------

    def to_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The motion as a flat dict of arrays (keys prefixed by ``prefix``), for ``np.savez``."""
        arrays = {
            "fps": np.asarray(self.fps, dtype=np.float64),
            "keypoints": np.asarray(self.keypoints),
            "body_names": np.asarray(self.body_names, dtype=np.str_),
        }
        arrays.update({name: np.asarray(getattr(self, name), dtype=np.str_) for name in _STRING_FIELDS})
        if self.root_quat is not None:
            arrays["root_quat"] = np.asarray(self.root_quat)
        if self.qpos is not None:
            arrays["qpos"] = np.asarray(self.qpos)
        return {prefix + key: value for key, value in arrays.items()}

    @classmethod
    def from_arrays(cls, arrays, prefix: str = "", origin: str = "") -> ReferenceMotion:
        """Inverse of ``to_arrays``; ``origin`` (a file name) goes into error messages."""
        where = origin or "motion arrays"
        try:
            keypoints = arrays[prefix + "keypoints"]
            fps = float(arrays[prefix + "fps"])
            body_names = tuple(str(n) for n in np.atleast_1d(arrays[prefix + "body_names"]))
            strings = {name: str(arrays[prefix + name]) for name in _STRING_FIELDS}
        except KeyError as error:
            raise ValueError(f"{where}: missing array {error.args[0]!r}; not a kinesis motion file") from None
        optional = {name: arrays[prefix + name] for name in ("root_quat", "qpos") if prefix + name in arrays}
        try:
            return cls(fps=fps, keypoints=keypoints, body_names=body_names, **strings, **optional)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None


def save_motion(motion: ReferenceMotion, path: str | Path) -> Path:
    """Write one motion to a compressed ``.npz`` (atomically: temporary file, then os.replace)."""
    arrays = motion.to_arrays()
    arrays["format"] = np.asarray(MOTION_FORMAT)
    return write_npz_atomic(path, arrays)


def read_motion_file(path: str | Path) -> ReferenceMotion:
    """Read a single-motion ``.npz`` written by ``save_motion``."""
    arrays = read_npz(path)
    if str(arrays.get("format", "")) != MOTION_FORMAT:
        raise ValueError(f"{path}: not a single-motion file (format {str(arrays.get('format', 'missing'))!r}, "
                         f"expected {MOTION_FORMAT!r})")
    return ReferenceMotion.from_arrays(arrays, origin=str(path))


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file, loaded without pickles; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"motion file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable .npz motion file (truncated or corrupt?): {error}") from None


def write_npz_atomic(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a compressed ``.npz`` next to ``path`` then os.replace it into place."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"motion file name must end in .npz, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npz.tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, **arrays)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _frozen_array(value, where: str, name: str) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {name} must be a numeric array") from None
    bad = ~np.isfinite(array)
    if bad.any():
        frames = np.unique(np.nonzero(bad)[0])[:5].tolist() if array.ndim else []
        raise ValueError(f"{where}: {name} has non-finite values (NaN/inf), first bad frames {frames}")
    array.setflags(write=False)
    return array


def _lerp(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Linear interpolation of values [T, ...] at fractional frame positions [N]."""
    low = np.minimum(np.floor(position).astype(int), len(values) - 2)
    alpha = (position - low).reshape((-1,) + (1,) * (values.ndim - 1))
    return (1 - alpha) * values[low] + alpha * values[low + 1]


def _slerp(quat: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions [T, 4] at fractional frame positions [N]."""
    low = np.minimum(np.floor(position).astype(int), len(quat) - 2)
    alpha = (position - low)[:, None]
    q0, q1 = quat[low], quat[low + 1]
    dot = np.sum(q0 * q1, axis=1, keepdims=True)
    q1 = np.where(dot < 0, -q1, q1)  # shortest path
    dot = np.abs(dot)
    angle = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(angle)
    small = sin < 1e-9
    safe = np.where(small, 1.0, sin)
    w0 = np.where(small, 1 - alpha, np.sin((1 - alpha) * angle) / safe)
    w1 = np.where(small, alpha, np.sin(alpha * angle) / safe)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)

"""What to draw for a MuJoCo musculoskeletal model, as plain arrays (no ROS, no viewer).

`SceneLayout.from_model` resolves names, IDs and constant geometry once; `set_pose` runs the
kinematic part of MuJoCo's forward pass for a qpos; `build_scene` turns the data into a `Scene`
that the Foxglove and RViz translators draw. All positions are in the world frame (m),
quaternions are (w, x, y, z), colours are RGBA in [0, 1].

Shapes are reduced to three drawable kinds that both Foxglove and RViz have:

=========== =================================================================
MuJoCo geom drawn as
=========== =================================================================
box         BOX, extents 2 * size
sphere      ELLIPSOID with three equal diameters
ellipsoid   ELLIPSOID, diameters 2 * size
cylinder    CYLINDER (axis z), diameter 2 * size[0], height 2 * size[1]
capsule     CYLINDER plus an ELLIPSOID (sphere) cap at each end
mesh        BOX: the mesh's bounding box in the geom frame (``geom_aabb``)
plane       not drawn (viewers draw their own grid)
=========== =================================================================

Meshes (the bones) are drawn as bounding boxes because the MyoLegs meshes have about 92 000
faces, too many to stream as triangles at the display rate.

Muscle paths are polylines through the tendon wrap points MuJoCo computes (``data.wrap_xpos``,
indexed by ``ten_wrapadr`` / ``ten_wrapnum``), coloured from blue (activation 0) to red (1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import mujoco
import numpy as np

from kinesis_tasks.embodiment import TRACKED_BODIES

#: Drawing style shared by the viewers (Foxglove scene, RViz markers).
FRAME_ID = "world"
MUSCLE_WIDTH_M = 0.006
#: (name, diameter in m, RGBA) of the point sets: Foxglove entity ids and RViz namespaces.
POINT_SETS = (
    ("keypoints", 0.05, (0.1, 0.8, 0.2, 1.0)),
    ("reference", 0.05, (1.0, 0.55, 0.0, 0.8)),
    ("goals", 0.12, (0.9, 0.1, 0.9, 1.0)),
)


class Shape(IntEnum):
    """Drawable primitive kinds."""

    BOX = 0
    ELLIPSOID = 1
    CYLINDER = 2


#: Geom groups drawn by default: 0 (bones, floor) and 4 (contact capsules and ellipsoids of MyoLegs).
DEFAULT_GEOM_GROUPS: tuple[int, ...] = (0, 4)
#: MuJoCo's default geom colour; a geom with a material and this colour takes the material's colour.
_DEFAULT_GEOM_RGBA = np.array([0.5, 0.5, 0.5, 1.0], dtype=np.float32)


@dataclass(frozen=True)
class Primitives:
    """Drawable shapes [S]: kind, centre pose, full extents along the shape's own axes, colour."""

    geom_id: np.ndarray  # [S] int, the MuJoCo geom each shape comes from
    kind: np.ndarray  # [S] int, values of `Shape`
    pos: np.ndarray  # [S, 3] m
    quat: np.ndarray  # [S, 4] (w, x, y, z)
    size: np.ndarray  # [S, 3] m, extents (box sides, ellipsoid diameters, cylinder diameter x2 + height)
    rgba: np.ndarray  # [S, 4]


@dataclass(frozen=True)
class MusclePaths:
    """Muscle polylines: the points of muscle i are ``points[starts[i]:starts[i] + counts[i]]``."""

    names: tuple[str, ...]  # [M]
    points: np.ndarray  # [P, 3] m
    starts: np.ndarray  # [M] int
    counts: np.ndarray  # [M] int
    activation: np.ndarray  # [M] in [0, 1]
    rgba: np.ndarray  # [M, 4]

    def path(self, index: int) -> np.ndarray:
        """Points [counts[index], 3] of one muscle."""
        return self.points[self.starts[index]:self.starts[index] + self.counts[index]]


@dataclass(frozen=True)
class Scene:
    """Everything drawn for one state."""

    body_names: tuple[str, ...]  # [B], bodies except the world
    body_pos: np.ndarray  # [B, 3] m (data.xpos)
    body_quat: np.ndarray  # [B, 4] (w, x, y, z) (data.xquat)
    primitives: Primitives
    muscles: MusclePaths | None  # None when muscles are not drawn
    keypoints: np.ndarray  # [K, 3] m, tracked bodies of the simulation
    reference: np.ndarray  # [K', 3] m, reference keypoints (may be empty)
    goals: np.ndarray  # [N, 3] m (may be empty)


@dataclass(frozen=True)
class SceneLayout:
    """Names, IDs and constant geometry of a model, resolved once."""

    body_ids: np.ndarray  # [B]
    body_names: tuple[str, ...]
    tracked_body_ids: np.ndarray  # [K]
    shape_geom: np.ndarray  # [S] geom of each primitive
    shape_kind: np.ndarray  # [S]
    shape_offset: np.ndarray  # [S, 3] centre in the geom frame (m)
    shape_size: np.ndarray  # [S, 3]
    shape_rgba: np.ndarray  # [S, 4]
    muscle_actuators: np.ndarray  # [M] actuator index of each muscle
    muscle_tendons: np.ndarray  # [M] tendon of each muscle
    muscle_names: tuple[str, ...]

    @classmethod
    def from_model(
        cls,
        model: mujoco.MjModel,
        *,
        geom_groups: tuple[int, ...] = DEFAULT_GEOM_GROUPS,
        tracked_bodies: tuple[str, ...] = TRACKED_BODIES,
    ) -> SceneLayout:
        """Resolve the layout of ``model``.

        Raises:
            ValueError: a tracked body missing from the model, or a muscle tendon with a pulley.
        """
        names = [model.body(i).name for i in range(model.nbody)]
        missing = [name for name in tracked_bodies if name not in names]
        if missing:
            raise ValueError(f"tracked_bodies: bodies {missing} are not in the model")
        body_ids = np.arange(1, model.nbody)
        geom, kind, offset, size, rgba = _shapes(model, geom_groups)
        actuators = np.flatnonzero(
            (model.actuator_dyntype == mujoco.mjtDyn.mjDYN_MUSCLE)
            & (model.actuator_trntype == mujoco.mjtTrn.mjTRN_TENDON)
        )
        tendons = model.actuator_trnid[actuators, 0]
        _check_no_pulleys(model, tendons)
        return cls(
            body_ids=body_ids,
            body_names=tuple(names[i] for i in body_ids),
            tracked_body_ids=np.array([names.index(name) for name in tracked_bodies], dtype=int),
            shape_geom=geom, shape_kind=kind, shape_offset=offset, shape_size=size, shape_rgba=rgba,
            muscle_actuators=actuators,
            muscle_tendons=tendons,
            muscle_names=tuple(model.actuator(int(i)).name for i in actuators),
        )


def set_pose(model: mujoco.MjModel, data: mujoco.MjData, qpos: np.ndarray) -> None:
    """Write ``qpos`` [nq] and compute body/geom poses and tendon wrap points (no dynamics).

    Raises:
        ValueError: ``qpos`` does not have ``model.nq`` entries.
    """
    qpos = np.asarray(qpos, dtype=float)
    if qpos.shape != (model.nq,):
        raise ValueError(f"qpos: expected shape ({model.nq},), got {qpos.shape}")
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    mujoco.mj_comPos(model, data)
    mujoco.mj_tendon(model, data)


def build_scene(
    layout: SceneLayout,
    data: mujoco.MjData,
    *,
    activation: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    goals: np.ndarray | None = None,
    muscles: bool = True,
) -> Scene:
    """The scene of ``data`` after `set_pose`.

    Args:
        activation: [nu] activation of every actuator (SimState.activation), 0..1; None draws all
            muscles at activation 0.
        reference: [K', 3] reference keypoints of the current frame (m), or None.
        goals: [N, 3] goal points (m), or None.
        muscles: compute the muscle paths (False leaves ``Scene.muscles`` None).

    Raises:
        ValueError: ``activation``, ``reference`` or ``goals`` has the wrong shape.
    """
    geom = layout.shape_geom
    xmat = data.geom_xmat[geom].reshape(-1, 3, 3)
    primitives = Primitives(
        geom_id=geom,
        kind=layout.shape_kind,
        pos=data.geom_xpos[geom] + np.einsum("sij,sj->si", xmat, layout.shape_offset),
        quat=matrix_to_quat(xmat),
        size=layout.shape_size,
        rgba=layout.shape_rgba,
    )
    return Scene(
        body_names=layout.body_names,
        body_pos=data.xpos[layout.body_ids].copy(),
        body_quat=data.xquat[layout.body_ids].copy(),
        primitives=primitives,
        muscles=_muscle_paths(layout, data, activation) if muscles else None,
        keypoints=data.xpos[layout.tracked_body_ids].copy(),
        reference=_points("reference", reference),
        goals=_points("goals", goals),
    )


def activation_colors(activation: np.ndarray) -> np.ndarray:
    """RGBA [M, 4] from activation [M]: blue (0) to red (1), linearly, opaque; clipped to [0, 1]."""
    a = np.clip(np.asarray(activation, dtype=float), 0.0, 1.0)
    return np.stack([a, np.zeros_like(a), 1.0 - a, np.ones_like(a)], axis=-1)


def reference_frame(keypoints: np.ndarray, fps: float, time_s: float) -> int:
    """Index of the reference frame shown at ``time_s`` (s): the motion loops over its T frames."""
    return int(round(time_s * fps)) % len(keypoints)


def point_style(name: str) -> tuple[float, tuple[float, ...]]:
    """(diameter m, RGBA) of a point set of ``POINT_SETS`` ("keypoints", "reference", "goals")."""
    for set_name, diameter, rgba in POINT_SETS:
        if set_name == name:
            return diameter, rgba
    raise ValueError(f"point set {name!r}: one of {[entry[0] for entry in POINT_SETS]}")


def add_spheres(scene: mujoco.MjvScene, points: np.ndarray, name: str) -> int:
    """Append one sphere per point [N, 3] to a MuJoCo render scene (user geoms after ``mjv_updateScene``)
    in the style of the point set ``name``; returns how many fit (``scene.maxgeom`` bounds them)."""
    diameter, rgba = point_style(name)
    size, rgba, frame = np.array([diameter / 2, 0.0, 0.0]), np.asarray(rgba, dtype=np.float32), np.eye(3).ravel()
    added = 0
    for point in _points(name, points):
        if scene.ngeom >= scene.maxgeom:
            break
        mujoco.mjv_initGeom(scene.geoms[scene.ngeom], mujoco.mjtGeom.mjGEOM_SPHERE, size, point, frame, rgba)
        scene.ngeom += 1
        added += 1
    return added


def matrix_to_quat(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternions [N, 4] (w, x, y, z), w >= 0, from rotation matrices [N, 3, 3].

    Uses, per matrix, the largest of the four squared-component expressions for stability.
    """
    m = matrix
    t = np.stack([
        1 + m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2],
        1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
        1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2],
        1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2],
    ], axis=-1)
    # Candidate quaternions, each scaled by 4 * (its largest component).
    candidates = np.stack([
        np.stack([t[:, 0], m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], -1),
        np.stack([m[:, 2, 1] - m[:, 1, 2], t[:, 1], m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], -1),
        np.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], t[:, 2], m[:, 1, 2] + m[:, 2, 1]], -1),
        np.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1], t[:, 3]], -1),
    ], axis=1)
    best = np.argmax(t, axis=-1)
    quat = candidates[np.arange(len(m)), best]
    quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
    return quat * np.where(quat[:, :1] < 0, -1.0, 1.0)


# --- helpers ------------------------------------------------------------------------------------

def _shapes(model: mujoco.MjModel, geom_groups: tuple[int, ...]):
    """(geom, kind, offset, size, rgba) of every drawable primitive, capsules split in three."""
    t = mujoco.mjtGeom
    rgba = model.geom_rgba.copy()
    has_material = model.geom_matid >= 0
    use_material = has_material & np.all(rgba == _DEFAULT_GEOM_RGBA, axis=1)
    rgba[use_material] = model.mat_rgba[model.geom_matid[use_material]]
    visible = np.isin(model.geom_group, geom_groups) & (rgba[:, 3] > 0) & (model.geom_type != t.mjGEOM_PLANE)
    size, geom_type, aabb = model.geom_size, model.geom_type, model.geom_aabb

    def select(types) -> np.ndarray:
        return np.flatnonzero(visible & np.isin(geom_type, types))

    zeros = np.zeros((model.ngeom, 3))
    parts = []  # (geom ids, kind, offsets [n, 3], sizes [n, 3])
    ids = select([t.mjGEOM_BOX])
    parts.append((ids, Shape.BOX, zeros[ids], 2 * size[ids]))
    ids = select([t.mjGEOM_SPHERE])
    parts.append((ids, Shape.ELLIPSOID, zeros[ids], 2 * size[ids][:, [0, 0, 0]]))
    ids = select([t.mjGEOM_ELLIPSOID])
    parts.append((ids, Shape.ELLIPSOID, zeros[ids], 2 * size[ids]))
    ids = select([t.mjGEOM_CYLINDER, t.mjGEOM_CAPSULE])
    parts.append((ids, Shape.CYLINDER, zeros[ids], 2 * size[ids][:, [0, 0, 1]]))
    ids = select([t.mjGEOM_CAPSULE])
    for sign in (1.0, -1.0):
        cap = np.zeros((len(ids), 3))
        cap[:, 2] = sign * size[ids, 1]
        parts.append((ids, Shape.ELLIPSOID, cap, 2 * size[ids][:, [0, 0, 0]]))
    ids = select([t.mjGEOM_MESH])
    parts.append((ids, Shape.BOX, aabb[ids, :3], 2 * aabb[ids, 3:]))

    geom = np.concatenate([p[0] for p in parts]).astype(int)
    kind = np.concatenate([np.full(len(p[0]), int(p[1])) for p in parts])
    offset = np.concatenate([p[2] for p in parts]).reshape(-1, 3)
    extents = np.concatenate([p[3] for p in parts]).reshape(-1, 3)
    return geom, kind, offset, extents, rgba[geom].astype(float)


def _check_no_pulleys(model: mujoco.MjModel, tendons: np.ndarray) -> None:
    for tendon in tendons:
        start, count = model.tendon_adr[tendon], model.tendon_num[tendon]
        if np.any(model.wrap_type[start:start + count] == mujoco.mjtWrap.mjWRAP_PULLEY):
            raise ValueError(f"model: muscle tendon {model.tendon(int(tendon)).name!r} has a pulley, "
                             "which the muscle path drawing does not support")


def _muscle_paths(layout: SceneLayout, data: mujoco.MjData, activation: np.ndarray | None) -> MusclePaths:
    tendons = layout.muscle_tendons
    counts = data.ten_wrapnum[tendons].astype(int)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int)
    # Row of each output point in wrap_xpos: the tendon's address plus the point's rank within it.
    rows = np.repeat(data.ten_wrapadr[tendons] - starts, counts) + np.arange(counts.sum())
    points = data.wrap_xpos.reshape(-1, 3)[rows]
    if activation is None:
        muscle_act = np.zeros(len(tendons))
    else:
        activation = np.asarray(activation, dtype=float)
        if activation.ndim != 1 or len(activation) <= layout.muscle_actuators.max(initial=-1):
            raise ValueError(f"activation: expected one value per actuator, got shape {activation.shape}")
        muscle_act = activation[layout.muscle_actuators]
    return MusclePaths(
        names=layout.muscle_names, points=points, starts=starts, counts=counts,
        activation=muscle_act, rgba=activation_colors(muscle_act),
    )


def _points(name: str, points: np.ndarray | None) -> np.ndarray:
    if points is None:
        return np.zeros((0, 3))
    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{name}: expected shape [N, 3], got {points.shape}")
    return points

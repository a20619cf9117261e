"""KINESIS v1 observations: proprioception (246 values for MyoLegs v1) and the imitation task input.

Layering:
* ``body_layout(model)`` resolves bodies, tracked bodies and sensor addresses once per model (cached).
* ``body_state(layout, xpos, xquat, qpos, sensordata)`` picks the arrays the observation needs from
  MjData-shaped arrays; any leading batch dims are kept, so stacked states of a vectorized env work.
  ``out=`` fills preallocated buffers (``BodyState.empty``), as the environments do every step.
* ``*_from_state`` functions are the pure math on a ``BodyState``: per state, the compiled kernels
  of ``kinesis_tasks.kernels`` (proprioception_into, imitation_into), run over any batch dims.
* ``proprioception``, ``imitation``, ``full`` (and ``*_blocks``) are thin (model, data) wrappers.

Frames: world z up. "Heading frame" = world frame rotated by -h about z, h the heading of the root body
(see ``kinesis_tasks.rotations``). Units: m, m/s, rad/s, N (touch).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import mujoco
import numpy as np

from kinesis_tasks import kernels
from kinesis_tasks.kernels import broadcast_batch, float64_arrays, per_state

PROPRIOCEPTION_BLOCKS = (
    "root_height",
    "root_tilt",
    "local_body_pos",
    "local_body_rot",
    "local_body_vel",
    "local_body_ang_vel",
    "feet_contacts",
)
"""Proprioceptive blocks in observation order."""

IMITATION_BLOCKS = ("diff_local_body_pos", "diff_local_vel", "local_ref_body_pos")
"""Imitation task blocks in observation order."""

LEG_TRACKED_BODIES = ("tibia_l", "tibia_r", "talus_l", "talus_r", "toes_l", "toes_r")
"""Tracked bodies after the root (and after "head" when it is tracked)."""

N_TOUCH_SENSORS = 4


def tracked_bodies(model: mujoco.MjModel, include_head: bool) -> tuple[str, ...]:
    """Default tracked-body names, in task-observation order.

    root (the free-joint body), [head], tibia_l, tibia_r, talus_l, talus_r, toes_l, toes_r.
    "head" is inserted second only when ``include_head`` (the embodiment has torso muscles, e.g.
    legs_abs, legs_back) and the model has a body named "head". The v1 model gives the 7 leg bodies.
    """
    root_name = model.body(_free_root_body(model)).name
    has_head = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "head") >= 0
    head = ("head",) if include_head and has_head else ()
    return (root_name, *head, *LEG_TRACKED_BODIES)


@dataclass(frozen=True, eq=False)
class BodyLayout:
    """Per-model indices, resolved once. Body indices refer to ``body_ids`` (the observed body list).

    Attributes:
        body_names: observed bodies: the free root body's kinematic tree, in model order (nb).
        body_ids: [nb] MuJoCo body ids of the observed bodies.
        root: index of the free-joint root body in the body list.
        others: [nb-1] indices of all observed bodies but the root.
        root_qposadr: qpos address of the root free joint (position at +0:3, quaternion at +3:7).
        tracked_names: tracked bodies, in task order (K).
        tracked: [K] indices of the tracked bodies in the body list.
        linvel_adr: [nb, 3] sensordata addresses of each body's framelinvel (COM, world frame).
        angvel_adr: [nb, 3] sensordata addresses of each body's frameangvel (world frame).
        touch_adr: [4] sensordata addresses of the touch sensors, in sensor order.
    """

    body_names: tuple[str, ...]
    body_ids: np.ndarray
    root: int
    others: np.ndarray
    root_qposadr: int
    tracked_names: tuple[str, ...]
    tracked: np.ndarray
    linvel_adr: np.ndarray
    angvel_adr: np.ndarray
    touch_adr: np.ndarray

    @property
    def proprioception_size(self) -> int:
        """Length of the proprioceptive observation (246 for the v1 model)."""
        nb = len(self.body_ids)
        return 1 + 4 + 3 * (nb - 1) + 6 * nb + 3 * nb + 3 * nb + len(self.touch_adr)

    @property
    def imitation_size(self) -> int:
        """Length of the imitation task observation (63 for 7 tracked bodies)."""
        return 9 * len(self.tracked)

    @property
    def full_size(self) -> int:
        """Length of the policy input (309 for the v1 model)."""
        return self.proprioception_size + self.imitation_size


_LAYOUTS: "weakref.WeakKeyDictionary[mujoco.MjModel, dict]" = weakref.WeakKeyDictionary()


def body_layout(model: mujoco.MjModel, tracked: Sequence[str] | None = None) -> BodyLayout:
    """The (cached) layout of ``model`` with the given tracked body names.

    ``tracked`` defaults to ``tracked_bodies(model, include_head=False)``.
    Raises ValueError if the model lacks a free root joint, a per-body framelinvel/frameangvel
    sensor, the 4 touch sensors, or a tracked body.
    """
    key = tuple(tracked) if tracked is not None else None
    per_model = _LAYOUTS.setdefault(model, {})
    if key not in per_model:
        per_model[key] = _build_layout(model, key if key is not None else tracked_bodies(model, include_head=False))
    return per_model[key]


def _free_root_body(model: mujoco.MjModel) -> int:
    """Body id of the free-joint root: the only free-joint body, or the one named "root"."""
    free = model.jnt_bodyid[model.jnt_type == mujoco.mjtJoint.mjJNT_FREE]
    if len(free) == 1:
        return int(free[0])
    named = [b for b in free if model.body(int(b)).name == "root"]
    if len(named) != 1:
        raise ValueError(f"model: expected one free-joint root body (or one named 'root'), found {len(free)}")
    return int(named[0])


def _body_sensor_adr(model: mujoco.MjModel, body_ids: np.ndarray, sensor_type: mujoco.mjtSensor) -> np.ndarray:
    """[nb, 3] sensordata addresses of the world-frame sensors of type ``sensor_type`` on each body."""
    mask = (
        (model.sensor_type == sensor_type)
        & (model.sensor_objtype == mujoco.mjtObj.mjOBJ_BODY)
        & (model.sensor_refid == -1)
    )
    adr_of_body = dict(zip(model.sensor_objid[mask].tolist(), model.sensor_adr[mask].tolist()))
    missing = [model.body(int(b)).name for b in body_ids if int(b) not in adr_of_body]
    if missing:
        kind = sensor_type.name.removeprefix("mjSENS_").lower()
        raise ValueError(
            f"model: no world-frame {kind} sensor with objtype body (mjOBJ_BODY: measured at the centre of mass, "
            f"as in KINESIS v1; mjOBJ_XBODY sensors measure at the frame origin) on bodies {missing}"
        )
    start = np.array([adr_of_body[int(b)] for b in body_ids], dtype=np.intp)
    return start[:, None] + np.arange(3)


def _build_layout(model: mujoco.MjModel, tracked: tuple[str, ...]) -> BodyLayout:
    root_id = _free_root_body(model)
    body_ids = np.flatnonzero(model.body_rootid == root_id)
    names = tuple(model.body(int(b)).name for b in body_ids)
    index = {name: i for i, name in enumerate(names)}
    unknown = [name for name in tracked if name not in index]
    if unknown:
        raise ValueError(f"tracked: bodies {unknown} are not in the model's root tree")
    root = index[model.body(root_id).name]
    free_joint = np.flatnonzero((model.jnt_bodyid == root_id) & (model.jnt_type == mujoco.mjtJoint.mjJNT_FREE))[0]
    touch = np.flatnonzero(model.sensor_type == mujoco.mjtSensor.mjSENS_TOUCH)
    if len(touch) != N_TOUCH_SENSORS:
        raise ValueError(f"model: expected {N_TOUCH_SENSORS} touch sensors, found {len(touch)}")
    layout = BodyLayout(
        body_names=names,
        body_ids=body_ids,
        root=root,
        others=np.delete(np.arange(len(names)), root),
        root_qposadr=int(model.jnt_qposadr[free_joint]),
        tracked_names=tracked,
        tracked=np.array([index[name] for name in tracked], dtype=np.intp),
        linvel_adr=_body_sensor_adr(model, body_ids, mujoco.mjtSensor.mjSENS_FRAMELINVEL),
        angvel_adr=_body_sensor_adr(model, body_ids, mujoco.mjtSensor.mjSENS_FRAMEANGVEL),
        touch_adr=model.sensor_adr[touch].astype(np.intp),
    )
    for arr in (layout.body_ids, layout.others, layout.tracked, layout.linvel_adr, layout.angvel_adr, layout.touch_adr):
        arr.setflags(write=False)
    return layout


class BodyState(NamedTuple):
    """Kinematic quantities the observation and reward use; [...] = any batch dims.

    xpos: [..., nb, 3] body frame origins, world, m.
    xquat: [..., nb, 4] body orientations, world, wxyz.
    root_quat: [..., 4] root orientation from qpos (wxyz), used for the tilt.
    linvel: [..., nb, 3] COM linear velocities, world, m/s (sensor values).
    angvel: [..., nb, 3] angular velocities, world, rad/s (sensor values).
    touch: [..., 4] raw touch sensor values, N.
    """

    xpos: np.ndarray
    xquat: np.ndarray
    root_quat: np.ndarray
    linvel: np.ndarray
    angvel: np.ndarray
    touch: np.ndarray

    @classmethod
    def empty(cls, layout: BodyLayout, batch: tuple[int, ...] = ()) -> BodyState:
        """Uninitialised float64 arrays for ``batch`` states of ``layout`` (buffers for ``body_state(out=...)``)."""
        nb = len(layout.body_ids)
        shapes = ((nb, 3), (nb, 4), (4,), (nb, 3), (nb, 3), (len(layout.touch_adr),))
        return cls(*(np.empty(batch + shape) for shape in shapes))


# --- array functions ---------------------------------------------------------------------------------


def body_state(
    layout: BodyLayout,
    xpos: np.ndarray,
    xquat: np.ndarray,
    qpos: np.ndarray,
    sensordata: np.ndarray,
    *,
    out: BodyState | None = None,
) -> BodyState:
    """Select a ``BodyState`` from MjData-shaped arrays (stacked states allowed).

    Args: xpos [..., nbody, 3], xquat [..., nbody, 4], qpos [..., nq], sensordata [..., nsensordata];
    ``out``: buffers to fill (``BodyState.empty(layout, batch)``), reused by the environments.
    """
    xpos, xquat, qpos, sensordata = float64_arrays(xpos, xquat, qpos, sensordata)
    batch = qpos.shape[:-1]
    out = BodyState.empty(layout, batch) if out is None else out
    addresses = (layout.body_ids, layout.root_qposadr, layout.linvel_adr, layout.angvel_adr, layout.touch_adr)
    for arrays in per_state(batch, xpos, xquat, qpos, sensordata, *out):
        kernels.gather_state_into(*arrays[:4], *addresses, *arrays[4:])
    return out


def _block_sizes(layout: BodyLayout) -> list[int]:
    nb = len(layout.body_ids)
    return [1, 4, 3 * (nb - 1), 6 * nb, 3 * nb, 3 * nb, len(layout.touch_adr)]


def _proprioception(layout: BodyLayout, state: BodyState, out: np.ndarray) -> np.ndarray:
    """``out`` [..., proprioception_size] (float64 or float32) filled with the blocks of each state."""
    state = BodyState(*float64_arrays(*state))
    for xpos, xquat, root_quat, linvel, angvel, touch, row in per_state(state.root_quat.shape[:-1], *state, out):
        kernels.proprioception_into(xpos, xquat, root_quat, linvel, angvel, touch, layout.root, layout.others, row)
    return out


def proprioception_blocks_from_state(layout: BodyLayout, state: BodyState) -> dict[str, np.ndarray]:
    """Float64 proprioceptive blocks, each flattened to [..., size], keyed as ``PROPRIOCEPTION_BLOCKS``."""
    flat = _proprioception(layout, state, np.empty(state.root_quat.shape[:-1] + (layout.proprioception_size,)))
    blocks = np.split(flat, np.cumsum(_block_sizes(layout))[:-1], axis=-1)
    return dict(zip(PROPRIOCEPTION_BLOCKS, blocks))


def proprioception_from_state(layout: BodyLayout, state: BodyState) -> np.ndarray:
    """Proprioceptive observation [..., proprioception_size], float32."""
    return _proprioception(
        layout, state, np.empty(state.root_quat.shape[:-1] + (layout.proprioception_size,), dtype=np.float32)
    )


def check_reference(layout: BodyLayout, name: str, ref: np.ndarray) -> np.ndarray:
    """``ref`` as float64, checked to be [..., K, 3] for the K tracked bodies; ValueError naming ``name``."""
    ref = np.asarray(ref, dtype=np.float64)
    if ref.shape[-2:] != (len(layout.tracked), 3):
        raise ValueError(f"{name}: expected shape [..., {len(layout.tracked)}, 3], got {ref.shape}")
    return ref


def _imitation(
    layout: BodyLayout, state: BodyState, ref_pos: np.ndarray, ref_vel: np.ndarray, out: np.ndarray
) -> np.ndarray:
    """``out`` [..., imitation_size] (float64 or float32) filled with the task blocks of each state."""
    batch = state.root_quat.shape[:-1]
    ref_pos, ref_vel = (broadcast_batch(check_reference(layout, name, ref), batch, 2)
                        for name, ref in (("ref_pos", ref_pos), ("ref_vel", ref_vel)))  # fmt: skip
    xpos, xquat, linvel, ref_pos, ref_vel = float64_arrays(state.xpos, state.xquat, state.linvel, ref_pos, ref_vel)
    for row in per_state(batch, xpos, xquat, linvel, ref_pos, ref_vel, out):
        kernels.imitation_into(*row[:3], layout.root, layout.tracked, *row[3:])
    return out


def imitation_blocks_from_state(
    layout: BodyLayout, state: BodyState, ref_pos: np.ndarray, ref_vel: np.ndarray
) -> dict[str, np.ndarray]:
    """Float64 imitation task blocks, each [..., K, 3], keyed as ``IMITATION_BLOCKS``.

    ref_pos, ref_vel: [..., K, 3] reference positions (m) and linear velocities (m/s) of the tracked
    bodies, world frame. Differences are reference minus current, rotated into the heading frame.
    """
    batch = state.root_quat.shape[:-1]
    flat = _imitation(layout, state, ref_pos, ref_vel, np.empty(batch + (layout.imitation_size,)))
    blocks = flat.reshape(batch + (3, len(layout.tracked), 3))
    return {name: blocks[..., i, :, :] for i, name in enumerate(IMITATION_BLOCKS)}


def imitation_from_state(
    layout: BodyLayout, state: BodyState, ref_pos: np.ndarray, ref_vel: np.ndarray
) -> np.ndarray:
    """Imitation task observation [..., 9 K], float32 (blocks body-major, xyz)."""
    batch = state.root_quat.shape[:-1]
    return _imitation(layout, state, ref_pos, ref_vel, np.empty(batch + (layout.imitation_size,), dtype=np.float32))


def full_from_state(layout: BodyLayout, state: BodyState, ref_pos: np.ndarray, ref_vel: np.ndarray) -> np.ndarray:
    """Policy input [..., full_size] float32: [proprioception | imitation] in one new array."""
    out = np.empty(state.root_quat.shape[:-1] + (layout.full_size,), dtype=np.float32)
    _proprioception(layout, state, out[..., : layout.proprioception_size])
    _imitation(layout, state, ref_pos, ref_vel, out[..., layout.proprioception_size :])
    return out


def data_state(layout: BodyLayout, data: mujoco.MjData, *, out: BodyState | None = None) -> BodyState:
    """``body_state`` of one MjData (after ``mj_kinematics``); ``out``: buffers to fill."""
    return body_state(layout, data.xpos, data.xquat, data.qpos, data.sensordata, out=out)


def model_state(model: mujoco.MjModel, data: mujoco.MjData, layout: BodyLayout | None = None) -> tuple[BodyLayout, BodyState]:
    """(layout, state) of one MjData; ``layout`` defaults to ``body_layout(model)``."""
    layout = layout if layout is not None else body_layout(model)
    return layout, data_state(layout, data)


def proprioception_blocks(
    model: mujoco.MjModel, data: mujoco.MjData, *, layout: BodyLayout | None = None
) -> dict[str, np.ndarray]:
    """Float64 proprioceptive blocks of the current data (poses and the stored sensor vector)."""
    return proprioception_blocks_from_state(*model_state(model, data, layout))


def proprioception(model: mujoco.MjModel, data: mujoco.MjData, *, layout: BodyLayout | None = None) -> np.ndarray:
    """Proprioceptive observation, float32 [246] for the v1 model."""
    return proprioception_from_state(*model_state(model, data, layout))


def imitation_blocks(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    *,
    layout: BodyLayout | None = None,
) -> dict[str, np.ndarray]:
    """Float64 imitation task blocks [K, 3] for reference ``ref_pos``, ``ref_vel`` [K, 3] (world)."""
    return imitation_blocks_from_state(*model_state(model, data, layout), ref_pos, ref_vel)


def imitation(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    *,
    layout: BodyLayout | None = None,
) -> np.ndarray:
    """Imitation task observation, float32 [63] for 7 tracked bodies."""
    return imitation_from_state(*model_state(model, data, layout), ref_pos, ref_vel)


def full(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    ref_pos: np.ndarray,
    ref_vel: np.ndarray,
    *,
    layout: BodyLayout | None = None,
) -> np.ndarray:
    """Policy input [proprioception | imitation], float32 [309] for the v1 model."""
    return full_from_state(*model_state(model, data, layout), ref_pos, ref_vel)

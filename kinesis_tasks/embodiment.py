"""Embodiments: MyoLegs musculoskeletal models built from `myo_sim` fragments.

Three built-in embodiments, composed with `mujoco.MjSpec` and compiled once:

========== ======= =================================================
name       muscles composition
========== ======= =================================================
legs       80      MyoLegs on a passive (rigid) torso scaffold
legs_abs   86      MyoLegs under the abdomen torso (6 abdominal muscles)
legs_back  290     MyoLegs under the full torso (210 lumbar/back muscles)
========== ======= =================================================

Every built-in embodiment gets the same edits (`edit(spec) -> None`, one compile):
a flat floor plane at z = 0 (the MyoSuite scene and pedestal are removed),
a free root joint named ``root`` on a body named ``root``, a linear and an
angular velocity sensor on every body (measured at the body's centre of mass,
as KINESIS v1 does) followed by four foot touch sensors (right foot, right toes,
left foot, left toes), and the control timestep of ``config/embodiments.yaml``.

An external MJCF path (for example the official KINESIS assets) is loaded as
is, with only the timestep overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from kinesis_tasks.assets import is_asset_embodiment, load_assets_config, resolve_embodiment
from kinesis_tasks.config import load_config

#: Tracked bodies, in the order of reference keypoints and task observations.
TRACKED_BODIES: tuple[str, ...] = ("root", "tibia_l", "tibia_r", "talus_l", "talus_r", "toes_l", "toes_r")

#: Touch sensors: (sensor name, site name in myo_sim), in observation order.
FOOT_TOUCH_SENSORS: tuple[tuple[str, str], ...] = (
    ("r_foot", "foot_touch_r"),
    ("r_toes", "toes_touch_r"),
    ("l_foot", "foot_touch_l"),
    ("l_toes", "toes_touch_l"),
)

ROOT_BODY = "root"
FLOOR_GEOM = "floor"


@dataclass(frozen=True)
class EmbodimentInfo:
    """What a built-in embodiment is, as listed in ``config/embodiments.yaml``."""

    name: str
    muscles: int
    description: str
    has_torso_muscles: bool


def builtin_embodiments() -> dict[str, EmbodimentInfo]:
    """The built-in embodiments by name."""
    table = load_config("embodiments")["embodiments"]
    return {name: EmbodimentInfo(name=name, **fields) for name, fields in table.items()}


def physics_defaults() -> tuple[float, int]:
    """(physics timestep in s, physics substeps per control step) from the config."""
    physics = load_config("embodiments")["physics"]
    return 1.0 / float(physics["physics_rate_hz"]), int(physics["substeps"])


def load_embodiment(name_or_path: str | Path) -> mujoco.MjModel:
    """Compile an embodiment by name (``legs``, ``legs_abs``, ``legs_back``; ``kinesis-v1``: the official
    KINESIS MJCF of ``kinesis assets fetch``) or MJCF path.

    The returned model has ``opt.timestep`` set to the physics timestep
    (1/150 s by default); one control step is ``physics_defaults()[1]`` steps.

    Raises:
        ValueError: unknown name (the message lists the valid names).
        FileNotFoundError: a path that does not exist; ``kinesis_tasks.assets.AssetsMissingError`` for an
            official embodiment that was not fetched.
    """
    timestep, _ = physics_defaults()
    name = str(name_or_path)
    builtins = builtin_embodiments()
    if name in builtins:
        model = _compile_builtin(name)
    elif is_asset_embodiment(name):  # official KINESIS MJCF (kinesis-v1), fetched by `kinesis assets fetch`
        model = mujoco.MjModel.from_xml_path(str(resolve_embodiment(name)))
    elif name.endswith(".xml") or Path(name).exists():
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"embodiment MJCF file not found: {path}")
        model = mujoco.MjModel.from_xml_path(str(path))
    else:
        raise ValueError(f"unknown embodiment {name!r}: use one of {sorted(builtins)}, an official one fetched by "
                         f"`kinesis assets fetch` ({', '.join(sorted(load_assets_config().embodiments))}) or a path to an "
                         "MJCF .xml file")
    model.opt.timestep = timestep
    return model


def joint_couplings(model: mujoco.MjModel) -> list[tuple[int, int, int, np.ndarray]]:
    """(dependent joint id, its qpos address, independent qpos address or -1, 5 coefficients) of every active
    joint equality: y - y0 = sum_k c_k (x - x0)^k, y0 and x0 from ``qpos0`` (no x: y - y0 = c_0)."""
    couplings = []
    for eq in np.flatnonzero((model.eq_type == mujoco.mjtEq.mjEQ_JOINT) & model.eq_active0.astype(bool)):
        joint1, joint2 = int(model.eq_obj1id[eq]), int(model.eq_obj2id[eq])
        independent = int(model.jnt_qposadr[joint2]) if joint2 >= 0 else -1
        couplings.append((joint1, int(model.jnt_qposadr[joint1]), independent, model.eq_data[eq, :5].copy()))
    return couplings


def apply_couplings(model: mujoco.MjModel, qpos: np.ndarray,
                    couplings: list[tuple[int, int, int, np.ndarray]] | None = None) -> np.ndarray:
    """``qpos`` [..., nq] with every equality-coupled joint where its constraint puts it (in place; returned)."""
    for _, dependent, independent, coef in joint_couplings(model) if couplings is None else couplings:
        delta = 0.0 if independent < 0 else qpos[..., independent] - model.qpos0[independent]
        qpos[..., dependent] = model.qpos0[dependent] + np.polyval(coef[::-1], delta)
    return qpos


def rest_qpos(model: mujoco.MjModel) -> np.ndarray:
    """The standing rest pose: ``qpos0`` with the equality-coupled joints where their constraints put them
    (MyoLegs' ``qpos0`` leaves each patella 5 cm off its knee coupling, which the first steps then jerk into
    place); the state every simulation starts from when no other is given."""
    return apply_couplings(model, model.qpos0.copy())


def muscle_actuators(model: mujoco.MjModel) -> np.ndarray:
    """Indices of the actuators with MuJoCo muscle dynamics."""
    return np.flatnonzero(model.actuator_dyntype == mujoco.mjtDyn.mjDYN_MUSCLE)


# --- building -----------------------------------------------------------------------------------

def _compile_builtin(name: str) -> mujoco.MjModel:
    spec = build_spec(name)
    model = spec.compile()
    _rest_feet_on_floor(model)
    return model


def build_spec(name: str) -> mujoco.MjSpec:
    """The edited, uncompiled MjSpec of a built-in embodiment."""
    spec = _compose(name)
    for edit in (_name_root_body, _replace_scene_with_floor, _add_body_velocity_and_touch_sensors):
        edit(spec)
    return spec


def _compose(name: str) -> mujoco.MjSpec:
    import myo_sim
    from myo_sim.build import compose

    if name == "legs":
        return myo_sim.load_spec("myolegs")
    if name == "legs_abs":
        return myo_sim.load_spec("myolegs_abdomen")
    if name == "legs_back":
        # Like myo_sim's legs-on-torso composition, but the torso keeps its joints and muscles.
        registration = compose.MODEL_REGISTRY["myotorso"]
        torso = compose.build_torso_spec(registration)
        root = compose.find_body(torso, "Full Body")
        root.add_freejoint(name="root")
        torso.attach(compose.build_legs_spec(registration), prefix="", suffix="", frame=root.add_frame(name="legs_attach"))
        return torso
    raise ValueError(f"unknown embodiment {name!r}")


def _name_root_body(spec: mujoco.MjSpec) -> None:
    """Name the body that carries the free joint ``root`` (KINESIS calls it ``root``)."""
    free = [joint for joint in spec.joints if joint.type == mujoco.mjtJoint.mjJNT_FREE]
    if len(free) != 1:
        raise ValueError(f"expected one free joint, found {len(free)}")
    free[0].name = "root"
    free[0].parent.name = ROOT_BODY


def _replace_scene_with_floor(spec: mujoco.MjSpec) -> None:
    """Remove MyoSuite's scene geoms (floor at -0.4 m, pedestal, logo) and add a floor at z = 0."""
    for geom in list(spec.worldbody.geoms):
        spec.delete(geom)
    texture = spec.add_texture(
        name="kinesis_grid", type=mujoco.mjtTexture.mjTEXTURE_2D, builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.82, 0.85, 0.82], rgb2=[0.72, 0.76, 0.72], width=512, height=512,
    )
    material = spec.add_material(name="kinesis_floor", texrepeat=[10, 10], reflectance=0.05)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = texture.name
    spec.worldbody.add_geom(
        name=FLOOR_GEOM, type=mujoco.mjtGeom.mjGEOM_PLANE, size=[50, 50, 0.1], pos=[0, 0, 0],
        material=material.name, conaffinity=1, contype=1, condim=3,
    )


def _add_body_velocity_and_touch_sensors(spec: mujoco.MjSpec) -> None:
    """Sensors in KINESIS v1 order: linvel and angvel of every body (at its centre of mass), 4 foot touches."""
    for sensor in list(spec.sensors):
        spec.delete(sensor)
    bodies = [body.name for body in spec.bodies if body.name != "world"]
    for kind, suffix in ((mujoco.mjtSensor.mjSENS_FRAMELINVEL, "vel"), (mujoco.mjtSensor.mjSENS_FRAMEANGVEL, "angvel")):
        for body in bodies:
            spec.add_sensor(name=f"{body}_{suffix}", type=kind, objtype=mujoco.mjtObj.mjOBJ_BODY, objname=body)
    for sensor_name, site in FOOT_TOUCH_SENSORS:
        spec.add_sensor(name=sensor_name, type=mujoco.mjtSensor.mjSENS_TOUCH, objtype=mujoco.mjtObj.mjOBJ_SITE, objname=site)


def _rest_feet_on_floor(model: mujoco.MjModel) -> None:
    """Set the default root height so the closest colliding geom just touches the floor at ``qpos0``."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    floor = model.geom(FLOOR_GEOM).id
    colliding = np.flatnonzero((model.geom_contype | model.geom_conaffinity) > 0)
    gap = min(mujoco.mj_geomDistance(model, data, floor, int(g), 2.0, None) for g in colliding if g != floor)
    model.qpos0[2] -= gap

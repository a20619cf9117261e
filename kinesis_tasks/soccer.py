"""The penalty-kick scene: the ``legs_back`` kicker (290 muscles), a ball, a goal and a goalkeeper.

Built with MjSpec on top of ``embodiment.build_spec("legs_back")`` (one compile):

* ball: a body with a free joint, its sphere size, mass, friction, condim, solref and
  priority read from MyoSuite's ``leg_soccer/soccer_assets/soccer_scene/soccer_ball.xml``
  (FIFA size 5: radius 0.117 m, 0.45 kg), placed on the penalty spot;
* goal: MyoSuite's four goal meshes (top, back, left, right) of ``soccer_field.xml``
  with the same rotation (euler 1.57 0 0), shifted so the goal line, x = 50 m in the
  asset, lies ``penalty_distance`` (11 m) beyond the penalty spot. Measured from the
  meshes, the inner faces of the posts are at |y| ~ 3.67 m and the crossbar spans
  z ~ 2.26-2.50 m (FIFA: 7.32 m x 2.44 m);
* goalkeeper (optional): a capsule on a mocap body at the goal line (MyoSuite's keeper
  is also a mocap body), moved with ``set_goalkeeper``.

The kicker starts at the origin facing +x (the goal), feet on the floor. The ball's
and keeper's coordinates come after the embodiment's in qpos/qvel, so the first
``nq`` entries keep the embodiment layout. Scoring follows MyoChallenge 2025: see
``kinesis_tasks.tasks.kick.ball_in_goal``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import mujoco
import numpy as np

from kinesis_tasks.embodiment import FLOOR_GEOM, ROOT_BODY, build_spec, physics_defaults
from kinesis_tasks.tasks.base import task_config

EMBODIMENT = "legs_back"
BALL_BODY = "soccer_ball"
GOALKEEPER_BODY = "goalkeeper"
ASSET_GOAL_LINE_X = 50.0  # m, goal line of MyoSuite's soccer_field.xml
GOAL_PARTS = ("top", "back", "left", "right")
FACING_PLUS_X = np.array([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # yaw +90 deg: local -y -> world +x


@dataclass(frozen=True)
class BallAsset:
    """Ball properties read from MyoSuite's soccer_ball.xml."""

    radius: float
    mass: float
    friction: tuple[float, float, float]
    condim: int
    solref: tuple[float, float]
    priority: int


@dataclass(frozen=True)
class SoccerLayout:
    """Where the soccer objects live in a compiled scene.

    ball_qposadr: first of the 7 qpos of the ball's free joint; ball_dofadr: first of its 6 dofs.
    goalkeeper_mocap: mocap index of the keeper, -1 without one. Lengths in m.
    """

    ball_body: int
    ball_qposadr: int
    ball_dofadr: int
    ball_radius: float
    penalty_spot: np.ndarray
    goal_line_x: float
    goalkeeper_mocap: int
    goalkeeper_half_range: float


def leg_soccer_dir() -> Path:
    """MyoSuite's installed ``envs/myo/assets/leg_soccer`` folder (found without importing myosuite)."""
    spec = find_spec("myosuite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("myosuite is not installed: the soccer scene needs its leg_soccer assets")
    folder = Path(list(spec.submodule_search_locations)[0]) / "envs" / "myo" / "assets" / "leg_soccer"
    if not folder.is_dir():
        raise FileNotFoundError(f"MyoSuite soccer assets not found at {folder}")
    return folder


def read_ball_asset(path: Path | None = None) -> BallAsset:
    """The ball geom of MyoSuite's soccer_ball.xml (ValueError naming the file if it is not there)."""
    path = path or leg_soccer_dir() / "soccer_assets" / "soccer_scene" / "soccer_ball.xml"
    geom = ElementTree.parse(path).getroot().find(".//body[@name='soccer_ball']/geom")
    if geom is None or geom.get("type") != "sphere":
        raise ValueError(f"{path}: no sphere geom in body 'soccer_ball'")

    def numbers(key: str) -> tuple[float, ...]:
        return tuple(float(value) for value in geom.get(key).split())

    return BallAsset(radius=numbers("size")[0], mass=numbers("mass")[0], friction=numbers("friction"),
                     condim=int(geom.get("condim")), solref=numbers("solref"), priority=int(geom.get("priority", 0)))


def build_soccer_spec(goalkeeper: bool | None = None) -> tuple[mujoco.MjSpec, BallAsset]:
    """The uncompiled scene (and its ball properties); ``goalkeeper`` None -> config/tasks.yaml."""
    cfg = task_config("soccer")
    goalkeeper = cfg["goalkeeper"] if goalkeeper is None else goalkeeper
    spot = np.asarray(cfg["penalty_spot"], dtype=np.float64)
    goal_line_x = float(spot[0] + cfg["penalty_distance"])
    spec = build_spec(EMBODIMENT)
    ball = read_ball_asset()
    _add_ball(spec, ball, spot)
    _add_goal(spec, goal_line_x - ASSET_GOAL_LINE_X)
    if goalkeeper:
        _add_goalkeeper(spec, goal_line_x)
    return spec, ball


def build_soccer_model(goalkeeper: bool | None = None) -> tuple[mujoco.MjModel, SoccerLayout]:
    """Compile the scene; the kicker stands at the origin facing +x with its feet on the floor."""
    cfg = task_config("soccer")
    spec, ball = build_soccer_spec(goalkeeper)
    model = spec.compile()
    model.opt.timestep = physics_defaults()[0]
    _stand_facing_goal(model)
    joint = model.body(BALL_BODY).jntadr[0]
    keeper = model.body(GOALKEEPER_BODY).mocapid[0] if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, GOALKEEPER_BODY) >= 0 else -1
    spot = np.asarray(cfg["penalty_spot"], dtype=np.float64)
    spot.setflags(write=False)
    layout = SoccerLayout(ball_body=model.body(BALL_BODY).id, ball_qposadr=int(model.jnt_qposadr[joint]),
                          ball_dofadr=int(model.jnt_dofadr[joint]), ball_radius=ball.radius, penalty_spot=spot,
                          goal_line_x=float(spot[0] + cfg["penalty_distance"]), goalkeeper_mocap=int(keeper),
                          goalkeeper_half_range=float(cfg["goalkeeper_half_range"]))
    return model, layout


def ball_state(layout: SoccerLayout, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
    """(position [3], linear velocity [3]) of the ball centre, world, m and m/s."""
    pos = data.qpos[layout.ball_qposadr : layout.ball_qposadr + 3].copy()
    vel = data.qvel[layout.ball_dofadr : layout.ball_dofadr + 3].copy()
    return pos, vel


def place_ball(layout: SoccerLayout, data: mujoco.MjData, position: np.ndarray, velocity: np.ndarray | None = None) -> None:
    """Put the ball centre at ``position`` [3] (upright, not spinning) with ``velocity`` [3] (default 0)."""
    adr, dof = layout.ball_qposadr, layout.ball_dofadr
    data.qpos[adr : adr + 3] = position
    data.qpos[adr + 3 : adr + 7] = (1.0, 0.0, 0.0, 0.0)
    data.qvel[dof : dof + 6] = 0.0
    if velocity is not None:
        data.qvel[dof : dof + 3] = velocity


def set_goalkeeper(layout: SoccerLayout, data: mujoco.MjData, y: float) -> float:
    """Move the keeper along the goal line to ``y`` (clipped to its range); returns the y used."""
    if layout.goalkeeper_mocap < 0:
        raise ValueError("this soccer scene was built without a goalkeeper")
    y = float(np.clip(y, -layout.goalkeeper_half_range, layout.goalkeeper_half_range))
    data.mocap_pos[layout.goalkeeper_mocap, 1] = y
    return y


def _add_ball(spec: mujoco.MjSpec, ball: BallAsset, spot: np.ndarray) -> None:
    material = spec.add_material(name="soccer_ball", rgba=[0.95, 0.95, 0.95, 1.0])
    body = spec.worldbody.add_body(name=BALL_BODY, pos=[spot[0], spot[1], ball.radius])
    body.add_freejoint(name=BALL_BODY)
    body.add_geom(name="ball_geom", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[ball.radius, 0, 0], mass=ball.mass,
                  friction=list(ball.friction), condim=ball.condim, solref=list(ball.solref), priority=ball.priority,
                  material=material.name)


def _add_goal(spec: mujoco.MjSpec, shift_x: float) -> None:
    folder = leg_soccer_dir() / "soccer_assets" / "soccer_scene"
    material = spec.add_material(name="soccer_goal", rgba=[1.0, 1.0, 1.0, 1.0], specular=0.2, shininess=0.3)
    for part in GOAL_PARTS:
        mesh = spec.add_mesh(name=f"goal_{part}", file=str(folder / f"SoccerPitch_goal_{part}.obj"))
        spec.worldbody.add_geom(name=f"goal_{part}", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=mesh.name,
                                pos=[shift_x, 0.0, 0.0], quat=_euler_x(1.57), material=material.name)


def _add_goalkeeper(spec: mujoco.MjSpec, goal_line_x: float) -> None:
    body = spec.worldbody.add_body(name=GOALKEEPER_BODY, pos=[goal_line_x + 0.3, 0.0, 0.0], mocap=True)
    body.add_geom(name="goalkeeper", type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[0.25, 0.65, 0], pos=[0, 0, 0.9],
                  rgba=[0.9, 0.4, 0.1, 1.0])


def _euler_x(angle: float) -> list[float]:
    return [np.cos(angle / 2), np.sin(angle / 2), 0.0, 0.0]


def _stand_facing_goal(model: mujoco.MjModel) -> None:
    """Root at the origin facing +x, lowered until its closest colliding geom touches the floor."""
    adr = model.jnt_qposadr[model.body(ROOT_BODY).jntadr[0]]
    model.qpos0[adr : adr + 2] = 0.0
    model.qpos0[adr + 3 : adr + 7] = FACING_PLUS_X
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    floor = model.geom(FLOOR_GEOM).id
    kicker = model.body_rootid[model.geom_bodyid] == model.body(ROOT_BODY).id
    geoms = np.flatnonzero(kicker & ((model.geom_contype | model.geom_conaffinity) > 0))
    gap = min(mujoco.mj_geomDistance(model, data, floor, int(g), 2.0, None) for g in geoms)
    model.qpos0[adr + 2] -= gap


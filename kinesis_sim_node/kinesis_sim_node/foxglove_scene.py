"""`kinesis_tasks.scene.Scene` to Foxglove messages (foxglove-sdk): SceneUpdate and FrameTransforms.

The SceneUpdate holds five entities in frame "world", each replacing its previous version:
``geoms`` (cubes, spheres, cylinders), ``muscles`` (one line strip per muscle, when drawn),
``keypoints`` (green), ``reference`` (orange) and ``goals`` (magenta) as spheres.
FrameTransforms hold one world -> body transform per body (named like the MuJoCo body).
"""

from __future__ import annotations

from foxglove.messages import (
    Color, CubePrimitive, CylinderPrimitive, FrameTransform, FrameTransforms, LinePrimitive,
    LinePrimitiveLineType, Point3, Pose, Quaternion, SceneEntity, SceneUpdate, SpherePrimitive,
    Timestamp, Vector3,
)

from kinesis_tasks.scene import FRAME_ID, MUSCLE_WIDTH_M, POINT_SETS, Scene, Shape



def timestamp(time_ns: int) -> Timestamp:
    """Foxglove timestamp from integer nanoseconds."""
    return Timestamp(sec=time_ns // 1_000_000_000, nsec=time_ns % 1_000_000_000)


def scene_update(scene: Scene, stamp: Timestamp) -> SceneUpdate:
    """Entities of ``scene`` stamped ``stamp``; see the module docstring."""
    entities = [_geom_entity(scene, stamp)]
    if scene.muscles is not None:
        entities.append(_muscle_entity(scene, stamp))
    for name, diameter, rgba in POINT_SETS:
        size, color = Vector3(x=diameter, y=diameter, z=diameter), _color(rgba)
        spheres = [SpherePrimitive(pose=_pose(p), size=size, color=color) for p in getattr(scene, name).tolist()]
        entities.append(SceneEntity(timestamp=stamp, frame_id=FRAME_ID, id=name, spheres=spheres))
    return SceneUpdate(entities=entities)


def frame_transforms(scene: Scene, stamp: Timestamp) -> FrameTransforms:
    """One transform world -> body per body of ``scene``."""
    return FrameTransforms(transforms=[
        FrameTransform(
            timestamp=stamp, parent_frame_id=FRAME_ID, child_frame_id=name,
            translation=Vector3(x=p[0], y=p[1], z=p[2]), rotation=Quaternion(w=q[0], x=q[1], y=q[2], z=q[3]),
        )
        for name, p, q in zip(scene.body_names, scene.body_pos.tolist(), scene.body_quat.tolist())
    ])


def _geom_entity(scene: Scene, stamp: Timestamp) -> SceneEntity:
    shapes = scene.primitives
    cubes, spheres, cylinders = [], [], []
    for kind, p, q, s, c in zip(
            shapes.kind.tolist(), shapes.pos.tolist(), shapes.quat.tolist(), shapes.size.tolist(), shapes.rgba.tolist()):
        pose, size, color = _pose(p, q), Vector3(x=s[0], y=s[1], z=s[2]), _color(c)
        if kind == Shape.BOX:
            cubes.append(CubePrimitive(pose=pose, size=size, color=color))
        elif kind == Shape.ELLIPSOID:
            spheres.append(SpherePrimitive(pose=pose, size=size, color=color))
        else:
            cylinders.append(CylinderPrimitive(pose=pose, size=size, bottom_scale=1.0, top_scale=1.0, color=color))
    return SceneEntity(timestamp=stamp, frame_id=FRAME_ID, id="geoms", cubes=cubes, spheres=spheres, cylinders=cylinders)


def _muscle_entity(scene: Scene, stamp: Timestamp) -> SceneEntity:
    muscles = scene.muscles
    points = [Point3(x=x, y=y, z=z) for x, y, z in muscles.points.tolist()]
    lines = [
        LinePrimitive(
            type=LinePrimitiveLineType.LineStrip, pose=_pose((0.0, 0.0, 0.0)), thickness=MUSCLE_WIDTH_M,
            points=points[start:start + n], color=_color(c),
        )
        for c, start, n in zip(muscles.rgba.tolist(), muscles.starts.tolist(), muscles.counts.tolist())
    ]
    return SceneEntity(timestamp=stamp, frame_id=FRAME_ID, id="muscles", lines=lines)


def _pose(position, quat=(1.0, 0.0, 0.0, 0.0)) -> Pose:
    w, x, y, z = quat
    return Pose(position=Vector3(x=position[0], y=position[1], z=position[2]), orientation=Quaternion(x=x, y=y, z=z, w=w))


def _color(rgba) -> Color:
    r, g, b, a = (float(v) for v in rgba)
    return Color(r=r, g=g, b=b, a=a)

"""`kinesis_tasks.scene.Scene` to a visualization_msgs/MarkerArray in frame "world" (RViz).

Namespaces and counts: ``geoms`` (one CUBE / SPHERE / CYLINDER per primitive), ``muscles`` (one
LINE_STRIP per muscle, when drawn), and one SPHERE_LIST each for ``keypoints`` (green),
``reference`` (orange) and ``goals`` (magenta), always present so that emptied lists clear.
Marker ids are the index within the namespace, so every update replaces the previous one.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from kinesis_tasks.scene import FRAME_ID, MUSCLE_WIDTH_M, POINT_SETS, Scene, Shape

_MARKER_TYPE = {Shape.BOX: Marker.CUBE, Shape.ELLIPSOID: Marker.SPHERE, Shape.CYLINDER: Marker.CYLINDER}


def marker_array(scene: Scene, stamp: Time) -> MarkerArray:
    """Markers of ``scene`` stamped ``stamp``; see the module docstring for namespaces and counts."""
    header = Header(frame_id=FRAME_ID, stamp=stamp)
    markers = _geom_markers(scene, header)
    if scene.muscles is not None:
        markers += _muscle_markers(scene, header)
    for name, diameter, rgba in POINT_SETS:
        markers.append(Marker(
            header=header, ns=name, id=0, type=Marker.SPHERE_LIST, action=Marker.ADD,
            pose=Pose(orientation=Quaternion(w=1.0)), scale=Vector3(x=diameter, y=diameter, z=diameter),
            color=_color(rgba), points=_points(getattr(scene, name)),
        ))
    return MarkerArray(markers=markers)


def _geom_markers(scene: Scene, header: Header) -> list[Marker]:
    shapes = scene.primitives
    return [
        Marker(
            header=header, ns="geoms", id=i, type=_MARKER_TYPE[Shape(kind)], action=Marker.ADD,
            pose=Pose(position=Point(x=p[0], y=p[1], z=p[2]), orientation=Quaternion(w=q[0], x=q[1], y=q[2], z=q[3])),
            scale=Vector3(x=s[0], y=s[1], z=s[2]), color=_color(c),
        )
        for i, (kind, p, q, s, c) in enumerate(zip(
            shapes.kind.tolist(), shapes.pos.tolist(), shapes.quat.tolist(), shapes.size.tolist(), shapes.rgba.tolist()))
    ]


def _muscle_markers(scene: Scene, header: Header) -> list[Marker]:
    muscles = scene.muscles
    points = _points(muscles.points)
    return [
        Marker(
            header=header, ns="muscles", id=i, type=Marker.LINE_STRIP, action=Marker.ADD,
            pose=Pose(orientation=Quaternion(w=1.0)), scale=Vector3(x=MUSCLE_WIDTH_M),
            color=_color(c), points=points[start:start + n],
        )
        for i, (c, start, n) in enumerate(zip(muscles.rgba.tolist(), muscles.starts.tolist(), muscles.counts.tolist()))
    ]


def _points(points: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(points, dtype=float).tolist()]


def _color(rgba) -> ColorRGBA:
    r, g, b, a = (float(v) for v in rgba)
    return ColorRGBA(r=r, g=g, b=b, a=a)

"""Periodic gait cycles and their synthesis into ReferenceMotions of an embodiment.

A ``GaitCycle`` is one stride sampled at N equally spaced phases in [0, 1): joint
angles, root velocity in the heading frame and small pelvis tilts. ``synthesize``
plays it back along a phase schedule: speed factor s(t) (phase rate = s / duration,
so the root speed scales with s), blend weight w(t) between the standing pose (0)
and the cycle (1), and a yaw rate (rad/s, + turns left). Root x-y is integrated
from the heading-frame forward velocity; lateral sway and vertical bob are the
cycle's periodic lateral displacement. The root height is set per frame so that the
lowest foot geom just touches the floor (z = 0): in walking and standing one foot is
always on the ground. (Integrating the source's vertical pelvis velocity instead left
the feet 2-3 cm above the floor for most of the MyoSuite stride on this model, whose
segment lengths differ from the recorded subject's.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinesis_tasks.motions.kinematics import LegsKinematics, root_orientation
from kinesis_tasks.motions.motion import ReferenceMotion


@dataclass(frozen=True)
class GaitCycle:
    """One periodic stride.

    Attributes:
        name: short source name ("myosuite", "gaitanalysis").
        duration: stride duration, s.
        angles: joint name -> [N] angles (rad) at phases k / N.
        root_velocity: [N, 2] horizontal root velocity in the heading frame (forward, left), m/s.
        tilt: [N, 2] pelvis (pitch forward, roll) in rad.
        source: provenance text; licence: licence of the source data.
    """

    name: str
    duration: float
    angles: dict[str, np.ndarray]
    root_velocity: np.ndarray
    tilt: np.ndarray
    source: str
    licence: str

    @property
    def speed(self) -> float:
        """Mean forward speed over the cycle, m/s."""
        return float(self.root_velocity[:, 0].mean())

    @property
    def sagittal(self) -> bool:
        """True for a stride recorded in the sagittal plane only: no lateral root motion, no hip ab/adduction."""
        return not np.any(self.root_velocity[:, 1]) and not any("adduction" in joint for joint in self.angles)

    def periodic_displacement(self, axis: int) -> np.ndarray:
        """[N] zero-mean periodic displacement (m) along heading-frame ``axis`` (0 forward, 1 left)."""
        velocity = self.root_velocity[:, axis] - self.root_velocity[:, axis].mean()
        step = self.duration / len(velocity)
        position = np.concatenate([[0.0], np.cumsum(0.5 * (velocity[1:] + velocity[:-1]) * step)])
        return position - position.mean()


def sample_periodic(values: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Linear interpolation of periodic samples [N, ...] (at phases k / N) at phases [T] (cycles, any real)."""
    count = len(values)
    position = np.mod(phase, 1.0) * count
    low = np.floor(position).astype(int) % count
    alpha = (position - np.floor(position)).reshape((-1,) + (1,) * (values.ndim - 1))
    return (1 - alpha) * values[low] + alpha * values[(low + 1) % count]


def synthesize(cycle: GaitCycle, kinematics: LegsKinematics, *, name: str, text: str, fps: float,
               speed: np.ndarray, weight: np.ndarray, yaw_rate: np.ndarray, source: str,
               start_phase: float = 0.0, cadence: np.ndarray | None = None,
               feet: np.ndarray | None = None, lock_stance: bool = False,
               shift: np.ndarray | None = None) -> ReferenceMotion:
    """Play ``cycle`` back at ``fps`` along per-frame schedules [T]: speed factor, blend weight, yaw rate (rad/s).

    ``cadence`` [T] (default: ``speed``) is the phase rate factor. ``feet`` [T] in [0, 1] (default 0) is
    the share of the root's x-y velocity that comes from the feet on the floor (``LegsKinematics.foot_locked``)
    instead of the cycle's root velocity scaled by ``speed`` (with its lateral sway). The feet that carry
    are the lowest geoms of either foot, or with ``lock_stance`` the stance foot of the cycle's
    ``stance_sides`` at each frame's phase: free of foot sliding whatever the schedules (the lowest geom
    can be the toes of the foot about to swing, which slides the stance foot; docs/motions.md); with
    ``lock_stance`` the root also never moves backward (on a stride without double support the foot taking
    over is still swinging forward at the switch and would pull the root back).

    ``shift`` [T] (m) adds a lateral weight shift of up to that amplitude toward the foot on the floor, the hips
    ab/adducting so that the feet stay in place (``weight_shift``): a stride recorded in the sagittal plane
    only has none, and a slow step cannot lift a foot without one.
    """
    speed, weight, yaw_rate = (np.asarray(a, dtype=np.float64) for a in (speed, weight, yaw_rate))
    cadence = speed if cadence is None else np.asarray(cadence, dtype=np.float64)
    step = 1.0 / fps
    phase = start_phase + _cumulative(cadence / cycle.duration, step)
    yaw = _cumulative(yaw_rate, step)
    forward = speed * sample_periodic(cycle.root_velocity[:, 0], phase)
    heading = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
    left = np.stack([-np.sin(yaw), np.cos(yaw)], axis=1)
    sway = weight * sample_periodic(cycle.periodic_displacement(1), phase)
    planar = np.stack([_cumulative(forward * heading[:, i], step) for i in range(2)], axis=1) + sway[:, None] * left
    root_pos = np.column_stack([planar, np.full(len(phase), kinematics.standing_qpos[2])])
    tilt = weight[:, None] * sample_periodic(cycle.tilt, phase)
    root_quat = root_orientation(yaw, tilt[:, 0], tilt[:, 1])
    angles = {joint: weight * sample_periodic(values, phase) for joint, values in cycle.angles.items()}
    qpos = kinematics.qpos(root_pos, root_quat, angles)
    if shift is not None:
        lateral, adduction = weight_shift(kinematics, qpos, np.asarray(shift, dtype=np.float64), fps)
        planar += lateral[:, None] * left
        root_pos[:, :2] = planar
        for side, sign in (("l", 1.0), ("r", -1.0)):
            joint = f"hip_adduction_{side}"
            angles[joint] = angles.get(joint, 0.0) + sign * adduction
        qpos = kinematics.qpos(root_pos, root_quat, angles)
    if feet is not None:
        share = np.asarray(feet, dtype=np.float64)[1:, None]
        stance = sample_periodic(stance_sides(cycle, kinematics), phase) if lock_stance else None
        locked = kinematics.foot_locked(qpos, stance=stance)
        steps = share * np.diff(locked[:, :2], axis=0) + (1 - share) * np.diff(planar, axis=0)
        if lock_stance:  # the stance switch of a stride without double support would pull the root back
            steps -= np.minimum(np.sum(steps * heading[1:], axis=1), 0.0)[:, None] * heading[1:]
        qpos[:, :2] = planar[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    keypoints, clearance = kinematics.keypoints(qpos)
    qpos[:, 2] -= clearance
    keypoints[..., 2] -= clearance[:, None]
    return ReferenceMotion(name=name, fps=fps, keypoints=keypoints, body_names=kinematics.bodies,
                           root_quat=root_quat, qpos=qpos, embodiment=kinematics.embodiment, text=text,
                           source=source, licence=cycle.licence)


def weight_shift(kinematics: LegsKinematics, qpos: np.ndarray, amplitude: np.ndarray, fps: float, *,
                 gap_scale: float = 0.01, window: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """[T] lateral root offset (m, + left) of ``qpos`` [T, nq] toward the foot on the floor, ``amplitude`` [T] (m) at
    most, and [T] the left hip adduction (rad; the right hip's is its negative) that keeps the feet in place.

    The side is tanh of the feet's height difference over ``gap_scale`` (m), averaged over ``window`` (s)
    centred on each frame: the weight moves over the stance foot just before the other one lifts.
    """
    gaps = kinematics.foot_gaps(qpos)
    side = np.tanh((gaps[:, 1] - gaps[:, 0]) / gap_scale)  # +1: the right foot is up, the left one carries
    reach = max(1, int(round(0.5 * window * fps)))
    padded = np.concatenate([np.full(reach, side[0]), side, np.full(reach, side[-1])])
    lateral = amplitude * np.convolve(padded, np.ones(2 * reach + 1) / (2 * reach + 1), "valid")
    return lateral, np.arcsin(np.clip(lateral / kinematics.leg_length, -1.0, 1.0))


def cycle_poses(cycle: GaitCycle, kinematics: LegsKinematics) -> np.ndarray:
    """[N, nq] the stride's pose at each of its phases k / N, root at the standing position, facing +x."""
    count = len(cycle.root_velocity)
    phases = np.arange(count) / count
    angles = {joint: sample_periodic(values, phases) for joint, values in cycle.angles.items()}
    root = np.tile(kinematics.standing_qpos[:3], (count, 1))
    return kinematics.qpos(root, root_orientation(np.zeros(count)), angles)


def stance_sides(cycle: GaitCycle, kinematics: LegsKinematics, *, window: float = 0.08,
                 crossover: float = 0.003) -> np.ndarray:
    """[N, 2] (left, right) weights in [0, 1] of the foot that carries the body at each phase of ``cycle``.

    The carrying foot is the one whose lowest geom is nearer the floor, on average over +-``window``
    cycles (a swing foot that grazes the floor for a frame or two is not taken for the stance foot);
    the weights cross over linearly where the two averages are within ``crossover`` (m).
    """
    gaps = kinematics.foot_gaps(cycle_poses(cycle, kinematics))
    reach = max(1, int(round(window * len(gaps))))
    kernel = np.ones(2 * reach + 1) / (2 * reach + 1)
    smooth = np.stack([np.convolve(np.concatenate([g[-reach:], g, g[:reach]]), kernel, "valid") for g in gaps.T], 1)
    left = np.clip(0.5 + (smooth[:, 1] - smooth[:, 0]) / (2 * crossover), 0.0, 1.0)
    return np.column_stack([left, 1.0 - left])


def _cumulative(rate: np.ndarray, step: float) -> np.ndarray:
    """Trapezoidal integral of per-frame rates from frame 0 (value 0 at frame 0)."""
    return np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * step)])

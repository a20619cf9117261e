"""Walking references for velocity commands, composed from the motion library's clips (motion matching).

The KINESIS point-goal reference (root keypoint ahead, the other keypoints where they are) asks a tracker to
lean toward the goal with its feet planted; the bundled walker, trained on walking clips, falls within 1-2 s
on it, even from a walking start. ``GaitPlanner`` gives it instead the kind of reference it was trained on,
as kinematic controllers feed physics trackers in character animation (DReCon, Bergamin et al. 2019):

* walking command: a straight walking clip of the nearest pace, time-warped to the commanded speed (factor
  within ``speed_clamp``), looped, and bent (``text_to_motion.bend``) to the commanded turn rate, plus a turn
  toward the commanded travel direction over ``align_time``;
* standing: the start clip's first pose, held; from standing, the start clip (played at ``start_rate``)
  first, from just before it moves to a second after it reaches its pace (``starting_part``), where the
  commanded walk joins; a zero command (speed under ``min_speed``) while walking: the stop clip from where
  it slows down (``stopping_part``), its last pose held. Start and stop clips are time-warped to the pace
  commanded or walked (within ``speed_clamp``); with ``paced_start`` off the start clip plays at its own
  pace and the commanded walk, joined after it, sets the speed (a tracker that learned one start falls in a
  start slowed down: the directional task, docs/tasks.md).
* change of pace (a new walking command, or the first walk after an unpaced start): walks at the speeds in
  between, each at most ``MAX_SPEED_RATIO`` times the one before and ``SPEED_STEP_S`` long, lead to the
  commanded one: a tracker falls at a sudden change of pace (the bundled walker, started at 1.15 m/s and
  commanded 0.8 or 1.5 m/s, fell within a second of the join; through the steps it walks on).
  Standing poses come from the start and stop clips themselves, not from another clip, so that the feet
  never jump at a join.

A new command is joined to the current reference at the closest pose within the next
``text_to_motion.JOIN_WINDOW_S`` (``text_to_motion.append``): the reference never jumps. The first piece is
placed at the body's root and heading. A planner follows one episode; a state earlier than the last one it
saw starts a new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from kinesis_tasks.config import load_config
from kinesis_tasks.imitation import MotionTrack
from kinesis_tasks.motions import ReferenceMotion, load_library
from kinesis_tasks.tasks.base import TRACKED_BODIES, TaskState
from kinesis_tasks.tasks.text_to_motion import (
    JOIN_WINDOW_S,
    append,
    bend,
    clip_profile,
    heading_at,
    hold,
    loop_to_duration,
    select_frames,
    transform,
)

MAX_CACHED_PIECES = 64  # composed walks kept per planner (a 20 s walk: ~1 MB)
MAX_SPEED_RATIO = 1.15  # a change of pace goes through walks at most this much faster or slower than the last
SPEED_STEP_S = 2.5  # s, each of those walks (a join keeps 0.5-2.5 s of it)


@dataclass(frozen=True)
class GaitCommand:
    """``speed`` m/s along the travel direction, ``turn_rate`` rad/s (+ = left), ``direction`` rad of travel
    relative to the current heading (+ = left)."""

    speed: float
    turn_rate: float = 0.0
    direction: float = 0.0

    def close_to(self, other: GaitCommand | None, tolerance: float = 0.05) -> bool:
        """Every component within ``tolerance`` (m/s, rad/s, rad) of ``other``'s."""
        return other is not None and max(abs(self.speed - other.speed), abs(self.turn_rate - other.turn_rate),
                                         abs(self.direction - other.direction)) <= tolerance


class GaitPlanner:
    """Commands -> the reference (positions, velocities [K, 3]) for the next control step; see the module
    docstring. ``motions`` default: the training split of ``library`` ('planner', 'default' or a library path;
    the test clips stay unseen by anything trained on planned walks, `kinesis motions from-task`)."""

    def __init__(self, motions: Mapping[str, ReferenceMotion] | None = None, *, dt: float,
                 bodies: Sequence[str] = TRACKED_BODIES, start_clip: str | None = None, start_rate: float = 1.0,
                 stop_clip: str | None = None, speed_clamp: tuple[float, float] = (0.6, 1.6),
                 min_speed: float = 0.3, align_time: float = 1.0, horizon: float = 20.0,
                 paced_start: bool = True, library: str = "planner") -> None:
        motions = dict(load_library(library, split="train") if motions is None else motions)
        profiles = {name: clip_profile(motion) for name, motion in motions.items()}
        self.walks = sorted(((p.speed, motions[n]) for n, p in profiles.items() if p.kind == "walk" and p.turn == 0),
                            key=lambda pair: pair[0])
        chosen = {"start": start_clip, "stop": stop_clip}
        for kind, name in chosen.items():
            if name is not None and (name not in motions or profiles[name].kind != kind):
                raise ValueError(f"GaitPlanner: {kind}_clip {name!r} is not a {kind} clip of the library")
            chosen[kind] = name or next((n for n, p in sorted(profiles.items()) if p.kind == kind), None)
        missing = [kind for kind, name in chosen.items() if name is None] + ([] if self.walks else ["straight walk"])
        if missing:
            raise ValueError(f"GaitPlanner: the motion library has no {', '.join(missing)} clip")
        # Walks of the start clip's subject (name prefix) where the library has them: one gait style throughout.
        family = [w for w in self.walks if w[1].name.split("_")[0] == chosen["start"].split("_")[0]]
        self.walks = family or self.walks
        start = motions[chosen["start"]]
        self.start_clip = starting_part(warped(start, start_rate) if start_rate != 1.0 else start)
        self.stop_clip = stopping_part(motions[chosen["stop"]])
        self.start_pace, self.stop_pace = (clip_profile(clip).speed for clip in (self.start_clip, self.stop_clip))
        self.dt, self.bodies = float(dt), tuple(bodies)
        self.speed_clamp, self.min_speed = speed_clamp, float(min_speed)
        self.walk_range = (self.walks[0][0] * speed_clamp[0], self.walks[-1][0] * speed_clamp[1])  # m/s
        self.align_time, self.horizon = float(align_time), float(horizon)
        self.paced_start = bool(paced_start)
        self.motion: ReferenceMotion | None = None
        self.track: MotionTrack | None = None
        self.command: GaitCommand | None = None
        self.walking = False
        self.start_time = self.last_time = 0.0
        self._pieces: dict[tuple, ReferenceMotion] = {}  # walks and paced clips by command: replans reuse them

    def reference(self, state: TaskState, command: GaitCommand) -> tuple[np.ndarray, np.ndarray]:
        """(ref_pos, ref_vel) [K, 3] one control step after ``state`` under ``command``."""
        if self.track is None or state.time < self.last_time - 0.5 * self.dt:
            self._reset(state)
        self.last_time = state.time
        ending = self.start_time + self.motion.duration - state.time < 0.5 * self.horizon
        if ending or not command.close_to(self.command):
            self._plan(state.time, command)
        return self.track.at((state.time + self.dt - self.start_time) * self.track.fps)

    # --- planning ----------------------------------------------------------------------------------

    def _reset(self, state: TaskState) -> None:
        """Standing in the start clip's first pose (so that starting joins seamlessly), at the body's root and
        heading."""
        stand = self._placed(select_frames(self.start_clip, slice(0, 2)), state.root_pos[:2], state.heading)
        self._set(hold(stand, self.horizon), state.time)
        self.command, self.walking = GaitCommand(0.0), False

    def _plan(self, time: float, command: GaitCommand) -> None:
        """Joins the pieces for ``command`` to the reference from ``time`` on."""
        walk = command.speed >= self.min_speed
        now = min(int((time - self.start_time) * self.motion.fps), self.motion.num_frames - 2)
        if walk:
            paced = self._paced(self.start_clip, self.start_pace, command.speed) if self.paced_start else self.start_clip
            start = [] if self.walking else [paced]
            pace = self.command.speed if self.walking else (command.speed if self.paced_start else self.start_pace)
            pieces = [*start, *self._speed_steps(pace, command), self._walk(command)]
        elif self.walking:  # the stop clip at the pace walked, its last pose held
            stop = self._paced(self.stop_clip, self.stop_pace, self.command.speed)
            pieces = [hold(stop, stop.duration + self.horizon)]
        else:  # standing on: the current pose held
            pieces = [hold(select_frames(self.motion, slice(now, now + 2)), self.horizon)]
        keep = max(0, now - int(round(self.motion.fps)))  # one second of past frames stays for interpolation
        window = int(JOIN_WINDOW_S * self.motion.fps) if self.walking else 2  # a held pose joins at once
        join_end = min(self.motion.num_frames, now + window + 2)
        motion = select_frames(self.motion, slice(keep, join_end))  # the join falls after `now`
        for piece in pieces:
            motion = append(motion, piece)
        self._set(motion, self.start_time + keep / self.motion.fps)
        self.command, self.walking = command, walk

    def _walk(self, command: GaitCommand) -> ReferenceMotion:
        """The straight walk of the nearest pace at ``command.speed``, looped to the horizon, turned."""
        def compose() -> ReferenceMotion:
            speed, clip = min(self.walks, key=lambda pair: abs(np.log(command.speed / pair[0])))
            factor = float(np.clip(command.speed / speed, *self.speed_clamp))
            motion = loop_to_duration(warped(clip, factor), self.horizon)
            t = np.arange(motion.num_frames) / motion.fps
            return bend(motion, command.direction * np.minimum(t / self.align_time, 1.0) + command.turn_rate * t)
        return self._cached(("walk", command), compose)

    def _speed_steps(self, previous: float, command: GaitCommand) -> list[ReferenceMotion]:
        """``SPEED_STEP_S`` of walking at each speed between ``previous`` and ``command.speed`` (m/s, within the
        walks' range), each at most ``MAX_SPEED_RATIO`` times the one before, turning as commanded."""
        first = np.clip(previous, *self.walk_range)
        ratio = np.clip(command.speed, *self.walk_range) / first
        steps = int(np.ceil(abs(np.log(ratio)) / np.log(MAX_SPEED_RATIO) - 1e-9))
        steady = [self._walk(GaitCommand(float(first * ratio ** (k / steps)), command.turn_rate))
                  for k in range(1, steps)]
        return [select_frames(walk, slice(0, int(round(SPEED_STEP_S * walk.fps)) + 1)) for walk in steady]

    def _paced(self, clip: ReferenceMotion, pace: float, speed: float) -> ReferenceMotion:
        """A start or stop clip whose walking part goes at ``pace`` time-warped to ``speed`` (within speed_clamp)."""
        factor = float(np.clip(speed / pace, *self.speed_clamp))
        return self._cached((clip.name, factor), lambda: warped(clip, factor))

    def _cached(self, key: tuple, compose: Callable[[], ReferenceMotion]) -> ReferenceMotion:
        """``compose()``, kept under ``key``: pure pursuit re-plans with the same few quantized commands."""
        if key not in self._pieces:
            if len(self._pieces) >= MAX_CACHED_PIECES:
                self._pieces.clear()
            self._pieces[key] = compose()
        return self._pieces[key]

    def _placed(self, clip: ReferenceMotion, root_xy: np.ndarray, heading: float) -> ReferenceMotion:
        start = clip.keypoints[0, 0, :2]
        return transform(clip, heading - heading_at(clip, 0), pivot=start, offset=np.asarray(root_xy) - start)

    def _set(self, motion: ReferenceMotion, start_time: float) -> None:
        self.motion, self.start_time = motion, float(start_time)
        self.track = MotionTrack.prepare(motion, self.bodies, self.dt)


def warped(clip: ReferenceMotion, factor: float) -> ReferenceMotion:
    """``clip`` played ``factor`` times faster, at its own frame rate."""
    return clip.replace(fps=clip.fps * factor).resample(clip.fps)


def speed_ahead(clip: ReferenceMotion) -> np.ndarray:
    """[T - fps] root speed (m/s) over the second that follows each frame."""
    root, second = clip.keypoints[:, 0, :2], max(1, int(round(clip.fps)))
    return np.linalg.norm(root[second:] - root[:-second], axis=1) * clip.fps / second


def starting_part(clip: ReferenceMotion, lead_s: float = 0.2, walk_s: float = JOIN_WINDOW_S) -> ReferenceMotion:
    """``clip`` from ``lead_s`` before its first move (any keypoint 1 cm from frame 0) to ``walk_s`` after its
    root reaches 90% of its final speed: a start clip's still lead-in would only delay the walk (joined from
    standing, the start clip begins at its first frame), and once walking the commanded walk takes over
    (joined within ``walk_s``)."""
    moved = np.linalg.norm(clip.keypoints - clip.keypoints[0], axis=2).max(axis=1) > 0.01
    first = int(np.argmax(moved)) if moved.any() else 0
    speed = speed_ahead(clip)
    walking = int(np.argmax(speed >= 0.9 * speed[-1])) + int(round(clip.fps))  # end of the first full-speed second
    end = min(clip.num_frames, walking + int(round(walk_s * clip.fps)))
    return select_frames(clip, slice(max(0, first - int(round(lead_s * clip.fps))), end))


def stopping_part(clip: ReferenceMotion, lead_s: float = 0.0) -> ReferenceMotion:
    """``clip`` from ``lead_s`` before its root slows below 90% of its first second's speed: a stop command,
    joined at the best-matching pose of the part's first ``JOIN_WINDOW_S``, slows the body down at once
    instead of walking the clip's lead-in first (1.85 m from command to standing at 1.2 m/s; the whole clip
    took 2.3 m)."""
    speed = speed_ahead(clip)
    slowing = np.flatnonzero(speed < 0.9 * speed[0])
    first = int(slowing[0]) if len(slowing) else 0
    return select_frames(clip, slice(max(0, first - int(round(lead_s * clip.fps))), None))


def check_reference(task: str, reference: str) -> None:
    """ValueError unless ``reference`` is 'gait' or 'point' (the ``reference`` setting of ``task``)."""
    if reference not in ("gait", "point"):
        raise ValueError(f"{task} reference must be 'gait' or 'point', got {reference!r}")


class GaitReferenced:
    """Mixin of the tasks whose reference can be a planned walk (``reference: gait``): ``planner``, built on
    first use (it loads the motion library) with the ``gait`` section of config/tasks.yaml, follows the task's
    episodes, with the task config's ``paced_start`` and ``gait_library`` (if set)."""

    dt: float
    config: Any
    _planner: GaitPlanner | None = None

    @property
    def planner(self) -> GaitPlanner:
        if self._planner is None:
            settings = dict(load_config("tasks").get("gait", {}))
            if self.config.gait_library is not None:
                settings["library"] = self.config.gait_library
            self._planner = GaitPlanner(dt=self.dt, paced_start=self.config.paced_start, **settings)
        return self._planner

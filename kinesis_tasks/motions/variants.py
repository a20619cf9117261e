"""Synthetic derivatives of real gait cycles, each with a plain-English text label.

Every variant replays a recorded stride (``cycle.synthesize``) along a schedule:

=============== ======================================= ======================================
kind            label                                   schedule
=============== ======================================= ======================================
walk_slow_a/b   "walk forward slowly"                   0.75 / 0.90 m/s (time-warped stride)
walk_a/b        "walk forward"                          1.15 / 1.30 m/s
walk_quick_a/b  "walk forward quickly"                  1.55 / 1.70 m/s
turn_left       "turn left while walking"               1.15 m/s, yaw rate +0.4 rad/s
turn_right      "turn right while walking"              1.15 m/s, yaw rate -0.4 rad/s
start           "start walking from standing still"     1 s still, 0.4 s into mid-swing, cadence
                                                        ramped up over 0.8 s, then walking
stop            "stop walking and stand still"          walking, cadence ramped down to mid-swing
                                                        over 0.8 s, 0.4 s back to standing, still
stand_still     "stand still"                           the standing pose (no cycle involved)
=============== ======================================= ======================================

``transitions="amplitude"`` (the default library's since 2026-12-07 #6) builds the start and stop instead
as a walk whose stride amplitude (the blend weight) and cadence ramp together over
``AMPLITUDE_RAMP_SECONDS`` (cadence from half to full pace), the root with the stance foot while the
amplitude is low (``lock_stance``): the stride shortens to nothing within about two steps, as a person
stops, instead of a full stride slowed to a standstill (docs/motions.md). ``transitions="balanced"`` is
"amplitude" plus, for a stride recorded in the sagittal plane only (``GaitCycle.sagittal``: GaitAnalysisToolKit's),
a lateral weight shift over the stance foot of up to ``BALANCE_SHIFT`` at the first step (``balance_schedule``,
``cycle.weight_shift``): such a stride has no sway, and a slow step cannot lift a foot without one.

Time-warping keeps the stride length and scales the cadence, so the speed words
map to these mean root speeds (``SPEED_WORDS``): slowly 0.5-1.0 m/s, no word
1.0-1.45 m/s, quickly 1.45-2.0 m/s.

Starting and stopping change the pose only while the phase stands still (standing <->
the cycle's mid-swing pose, where the feet pass each other) and change the pace only
by the cadence at full stride. Their root moves with the feet on the floor while the
pace is low and blends into the cycle's root motion as it rises (``synthesize(feet=)``):
the weight shift and first step are free of foot sliding, and the walking part is the
walking clips' own. (An earlier version scaled the stride's amplitude and its cadence
together while the root kept its full speed: the root glided ~0.5 m over planted feet
as the walk began, and no policy could track that.)
"""

from __future__ import annotations

import numpy as np

from kinesis_tasks.motions.cycle import GaitCycle, cycle_poses, synthesize
from kinesis_tasks.motions.kinematics import LegsKinematics
from kinesis_tasks.motions.motion import ReferenceMotion

#: Speed word in a "walk forward ..." label -> (min, max) mean root speed, m/s.
SPEED_WORDS: dict[str, tuple[float, float]] = {"slowly": (0.5, 1.0), "": (1.0, 1.45), "quickly": (1.45, 2.0)}

WALK_SPEEDS = {"walk_slow_a": 0.75, "walk_slow_b": 0.90, "walk_a": 1.15, "walk_b": 1.30,
               "walk_quick_a": 1.55, "walk_quick_b": 1.70}
TURN_SPEED = 1.15
TURN_RATE = 0.4
WALK_SECONDS, TURN_SECONDS, START_SECONDS, STAND_SECONDS = 5.0, 6.0, 4.5, 3.0
STILL_SECONDS, BLEND_SECONDS, RAMP_SECONDS = 1.0, 0.4, 0.8
AMPLITUDE_RAMP_SECONDS, MIN_CADENCE = 1.6, 0.5
BALANCE_SHIFT = 0.04
TRANSITIONS = ("cadence", "amplitude", "balanced")


def check_transitions(transitions: str) -> None:
    """ValueError unless ``transitions`` is one of ``TRANSITIONS``."""
    if transitions not in TRANSITIONS:
        raise ValueError(f"transitions must be one of {TRANSITIONS}, got {transitions!r}")


def speed_range(text: str) -> tuple[float, float] | None:
    """Mean-speed range (m/s) a "walk forward [word]" label promises; None for other labels."""
    if not text.startswith("walk forward"):
        return None
    word = text[len("walk forward"):].strip()
    if word not in SPEED_WORDS:
        raise ValueError(f"unknown speed word {word!r} in label {text!r}; known: {sorted(SPEED_WORDS)}")
    return SPEED_WORDS[word]


def cycle_variants(cycle: GaitCycle, kinematics: LegsKinematics, fps: float, *,
                   lock_stance: bool = False, transitions: str = "cadence") -> list[ReferenceMotion]:
    """All walking, turning, starting and stopping variants of one recorded stride.

    ``lock_stance`` (``synthesize``) keeps the stance foot planted in the start and stop clips; the
    planner's library is built without it (the task policies were tuned on those clips).
    ``transitions``: "cadence" (the planner library's start and stop), "amplitude" (the default library's,
    the module docstring; implies ``lock_stance``) or "balanced" (amplitude with a weight shift).
    """
    check_transitions(transitions)
    source = f"synthetic derivative of {cycle.source}"
    motions = []

    def add(kind: str, text: str, speed: np.ndarray, weight: np.ndarray, yaw_rate: np.ndarray, **options) -> None:
        motions.append(synthesize(cycle, kinematics, name=f"{cycle.name}_{kind}", text=text, fps=fps,
                                  speed=speed, weight=weight, yaw_rate=yaw_rate, source=f"{source}: {kind}",
                                  **options))

    for kind, target in WALK_SPEEDS.items():
        word = "slowly" if target < 1.0 else "quickly" if target >= 1.45 else ""
        frames = frame_count(WALK_SECONDS, fps)
        add(kind, f"walk forward {word}".strip(), np.full(frames, target / cycle.speed), np.ones(frames),
            np.zeros(frames))
    frames = frame_count(TURN_SECONDS, fps)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        add(f"turn_{side}", f"turn {side} while walking", np.full(frames, TURN_SPEED / cycle.speed),
            np.ones(frames), np.full(frames, sign * TURN_RATE))
    frames = frame_count(START_SECONDS, fps)
    factor, still = TURN_SPEED / cycle.speed, np.zeros(frames)
    if transitions in ("amplitude", "balanced"):
        amplitude, cadence = amplitude_schedule(frames, fps)
        for kind, text, ramp, pace in (("start", "start walking from standing still", amplitude, cadence),
                                       ("stop", "stop walking and stand still", amplitude[::-1], cadence[::-1])):
            add(kind, text, factor * ramp * pace, ramp, still, cadence=factor * pace, feet=1.0 - ramp,
                lock_stance=True, shift=balance_schedule(cycle, transitions, ramp))
        return motions
    swing = mid_swing_phase(cycle, kinematics)
    weight, cadence = starting_schedule(frames, fps)  # the root goes with the feet, then the cycle's root as the pace rises
    add("start", "start walking from standing still", factor * cadence, weight, still, start_phase=swing,
        feet=1.0 - cadence, lock_stance=lock_stance)
    weight, cadence = weight[::-1], cadence[::-1]
    add("stop", "stop walking and stand still", factor * cadence, weight, still,
        start_phase=swing - phases_walked(cycle, cadence, factor, fps),
        feet=1.0 - cadence, lock_stance=lock_stance)
    return motions


def standing_motion(kinematics: LegsKinematics, fps: float, licence: str) -> ReferenceMotion:
    """The embodiment's standing pose held still, facing +x."""
    cycle = GaitCycle(name="stand", duration=1.0, angles={}, root_velocity=np.zeros((2, 2)), tilt=np.zeros((2, 2)),
                      source="", licence=licence)
    frames = frame_count(STAND_SECONDS, fps)
    zeros = np.zeros(frames)
    return synthesize(cycle, kinematics, name="stand_still", text="stand still", fps=fps, speed=zeros,
                      weight=zeros, yaw_rate=zeros, source=f"standing pose of the {kinematics.embodiment} model")


def frame_count(seconds: float, fps: float) -> int:
    """Frames of a clip ``seconds`` long at ``fps``, both ends included."""
    return int(round(seconds * fps)) + 1


def phases_walked(cycle: GaitCycle, cadence: np.ndarray, factor: float, fps: float) -> float:
    """Strides of ``cycle`` (cycles) played over a cadence schedule [T] at ``fps`` and speed factor ``factor``:
    a stop starts this far before the phase it is to end at."""
    return float(np.sum(0.5 * (cadence[1:] + cadence[:-1]))) * factor / (fps * cycle.duration)


def mid_swing_phase(cycle: GaitCycle, kinematics: LegsKinematics) -> float:
    """Phase (cycles) of ``cycle`` where the ankles are closest along the walking direction (mid-swing)."""
    keypoints, _ = kinematics.keypoints(cycle_poses(cycle, kinematics))
    ankles = [kinematics.bodies.index(f"talus_{side}") for side in "lr"]
    gap = np.abs(keypoints[:, ankles[0], 0] - keypoints[:, ankles[1], 0])
    return float(np.argmin(gap) / len(gap))


def starting_schedule(frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """[frames] blend weight and cadence factor of a start: still, blend into the pose, then cadence up."""
    t = np.arange(frames) / fps
    blend = smoothstep((t - STILL_SECONDS) / BLEND_SECONDS)
    cadence = smoothstep((t - STILL_SECONDS - BLEND_SECONDS) / RAMP_SECONDS)
    return blend, cadence


def amplitude_schedule(frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """[frames] stride amplitude and cadence factor of an "amplitude" start: still, then both ramp up together."""
    t = np.arange(frames) / fps
    amplitude = smoothstep((t - STILL_SECONDS) / AMPLITUDE_RAMP_SECONDS)
    return amplitude, np.where(t >= STILL_SECONDS, MIN_CADENCE + (1.0 - MIN_CADENCE) * amplitude, 0.0)


def balance_schedule(cycle: GaitCycle, transitions: str, amplitude: np.ndarray) -> np.ndarray | None:
    """``synthesize(shift=)`` of a start or stop of ``cycle`` at stride ``amplitude`` [T]: with "balanced"
    transitions of a sagittal-plane stride the largest lateral weight shift (m), ``BALANCE_SHIFT`` at the first
    step and none at full stride; otherwise None."""
    if transitions != "balanced" or not cycle.sagittal:
        return None
    return BALANCE_SHIFT * (1.0 - amplitude)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, 3x^2 - 2x^3 between: an ease with zero slope at both ends."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)

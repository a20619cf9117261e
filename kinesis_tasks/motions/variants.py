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
start           "start walking from standing still"     1 s still, 1.5 s ramp up, then 1.15 m/s
stop            "stop walking and stand still"          the reverse of ``start``
stand_still     "stand still"                           the standing pose (no cycle involved)
=============== ======================================= ======================================

Time-warping keeps the stride length and scales the cadence, so the speed words
map to these mean root speeds (``SPEED_WORDS``): slowly 0.5-1.0 m/s, no word
1.0-1.45 m/s, quickly 1.45-2.0 m/s.
"""

from __future__ import annotations

import numpy as np

from kinesis_tasks.motions.cycle import GaitCycle, synthesize
from kinesis_tasks.motions.kinematics import LegsKinematics
from kinesis_tasks.motions.motion import ReferenceMotion

#: Speed word in a "walk forward ..." label -> (min, max) mean root speed, m/s.
SPEED_WORDS: dict[str, tuple[float, float]] = {"slowly": (0.5, 1.0), "": (1.0, 1.45), "quickly": (1.45, 2.0)}

WALK_SPEEDS = {"walk_slow_a": 0.75, "walk_slow_b": 0.90, "walk_a": 1.15, "walk_b": 1.30,
               "walk_quick_a": 1.55, "walk_quick_b": 1.70}
TURN_SPEED = 1.15
TURN_RATE = 0.4
WALK_SECONDS, TURN_SECONDS, START_SECONDS, STAND_SECONDS = 5.0, 6.0, 4.5, 3.0
STILL_SECONDS, RAMP_SECONDS = 1.0, 1.5


def speed_range(text: str) -> tuple[float, float] | None:
    """Mean-speed range (m/s) a "walk forward [word]" label promises; None for other labels."""
    if not text.startswith("walk forward"):
        return None
    word = text[len("walk forward"):].strip()
    if word not in SPEED_WORDS:
        raise ValueError(f"unknown speed word {word!r} in label {text!r}; known: {sorted(SPEED_WORDS)}")
    return SPEED_WORDS[word]


def cycle_variants(cycle: GaitCycle, kinematics: LegsKinematics, fps: float) -> list[ReferenceMotion]:
    """All walking, turning, starting and stopping variants of one recorded stride."""
    source = f"synthetic derivative of {cycle.source}"
    motions = []

    def add(kind: str, text: str, speed: np.ndarray, weight: np.ndarray, yaw_rate: np.ndarray) -> None:
        motions.append(synthesize(cycle, kinematics, name=f"{cycle.name}_{kind}", text=text, fps=fps,
                                  speed=speed, weight=weight, yaw_rate=yaw_rate, source=f"{source}: {kind}"))

    for kind, target in WALK_SPEEDS.items():
        word = "slowly" if target < 1.0 else "quickly" if target >= 1.45 else ""
        frames = _frames(WALK_SECONDS, fps)
        add(kind, f"walk forward {word}".strip(), np.full(frames, target / cycle.speed), np.ones(frames),
            np.zeros(frames))
    frames = _frames(TURN_SECONDS, fps)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        add(f"turn_{side}", f"turn {side} while walking", np.full(frames, TURN_SPEED / cycle.speed),
            np.ones(frames), np.full(frames, sign * TURN_RATE))
    ramp = _ramp(_frames(START_SECONDS, fps), fps)
    factor = TURN_SPEED / cycle.speed
    add("start", "start walking from standing still", factor * ramp, ramp, np.zeros_like(ramp))
    add("stop", "stop walking and stand still", factor * ramp[::-1], ramp[::-1], np.zeros_like(ramp))
    return motions


def standing_motion(kinematics: LegsKinematics, fps: float, licence: str) -> ReferenceMotion:
    """The embodiment's standing pose held still, facing +x."""
    cycle = GaitCycle(name="stand", duration=1.0, angles={}, root_velocity=np.zeros((2, 2)), tilt=np.zeros((2, 2)),
                      source="", licence=licence)
    frames = _frames(STAND_SECONDS, fps)
    zeros = np.zeros(frames)
    return synthesize(cycle, kinematics, name="stand_still", text="stand still", fps=fps, speed=zeros,
                      weight=zeros, yaw_rate=zeros, source=f"standing pose of the {kinematics.embodiment} model")


def _frames(seconds: float, fps: float) -> int:
    return int(round(seconds * fps)) + 1


def _ramp(frames: int, fps: float) -> np.ndarray:
    """[frames] 0 for STILL_SECONDS, smoothstep to 1 over RAMP_SECONDS, then 1."""
    t = np.clip((np.arange(frames) / fps - STILL_SECONDS) / RAMP_SECONDS, 0.0, 1.0)
    return t * t * (3 - 2 * t)

"""Randomly scheduled walks from a recorded stride: training data that covers what the fixed variants do not.

The default library replays each stride along a handful of fixed schedules (``variants``):
one constant speed per clip, one yaw rate, one start and one stop. A policy trained on
those 16 clips learns their exact trajectories rather than walking in general (it loses
clips entered at unseen phases). ``random_walks`` draws many schedules instead:

=========== ================================================================================
kind        schedule
=========== ================================================================================
walk        speed and yaw rate vary smoothly through knots every ``KNOT_SECONDS``
            (speed in ``SPEED_RANGE``, yaw rate in ``YAW_RATE_RANGE`` or straight), any
            starting phase
start       still, then the ``variants`` start into a random speed and yaw rate (with
            ``lock_stance``: the stance foot stays planted); ``transitions="amplitude"`` (the
            shipped library's): the stride and cadence ramp up together from a random phase
stop        walking at a random speed and yaw rate, then the ``variants`` stop (``lock_stance``)
=========== ================================================================================

Every clip is ``CLIP_SECONDS`` long. Draws come from one ``numpy.random.Generator``, so a seed
gives the same library on every machine.
"""

from __future__ import annotations

import numpy as np

from kinesis_tasks.motions.cycle import GaitCycle, synthesize
from kinesis_tasks.motions.kinematics import LegsKinematics
from kinesis_tasks.motions.motion import ReferenceMotion
from kinesis_tasks.motions.variants import (amplitude_schedule, balance_schedule, check_transitions, frame_count,
                                            mid_swing_phase, phases_walked, smoothstep, starting_schedule)

CLIP_SECONDS = 6.0
KNOT_SECONDS = 2.0
SPEED_RANGE = (0.6, 1.8)          # m/s
YAW_RATE_RANGE = (-0.6, 0.6)      # rad/s
STRAIGHT_SHARE = 1 / 3            # share of walks with no turning at all
KIND_SHARES = {"walk": 0.7, "start": 0.15, "stop": 0.15}


def random_walks(cycle: GaitCycle, kinematics: LegsKinematics, fps: float, count: int,
                 rng: np.random.Generator, *, shares: dict[str, float] | None = None,
                 transitions: str = "cadence") -> list[ReferenceMotion]:
    """``count`` clips of ``cycle`` along random schedules (module docstring), named ``<cycle>_<kind>_<k>``.

    ``shares``: kind -> weight (default ``KIND_SHARES``); ``transitions``: the start and stop schedule,
    "cadence", "amplitude" or "balanced" (``variants``)."""
    check_transitions(transitions)
    shares = KIND_SHARES if shares is None else shares
    if not shares or set(shares) - set(KIND_SHARES) or min(shares.values()) < 0 or sum(shares.values()) <= 0:
        raise ValueError(f"shares must weigh kinds of {sorted(KIND_SHARES)}, got {shares}")
    weights = np.array(list(shares.values()), dtype=np.float64)
    kinds = rng.choice(list(shares), size=count, p=weights / weights.sum())
    swing = mid_swing_phase(cycle, kinematics)
    return [_clip(cycle, kinematics, fps, str(kind), index, rng, swing, transitions)
            for index, kind in enumerate(kinds)]


def _clip(cycle: GaitCycle, kinematics: LegsKinematics, fps: float, kind: str, index: int,
          rng: np.random.Generator, swing: float, transitions: str) -> ReferenceMotion:
    """One clip of ``kind``; ``swing``: the stride's mid-swing phase, where cadence starts begin and stops end."""
    frames = frame_count(CLIP_SECONDS, fps)
    options: dict = {}
    if kind == "walk":
        speed, yaw_rate = _knotted(rng, frames, fps, SPEED_RANGE), _yaw_rates(rng, frames, fps)
        weight = np.ones(frames)
        options["start_phase"] = float(rng.uniform())
        text = "walk with changing speed and heading"
    else:
        target = rng.uniform(*SPEED_RANGE)
        yaw = rng.uniform(*YAW_RATE_RANGE) if rng.uniform() > STRAIGHT_SHARE else 0.0
        text = "start walking from standing still" if kind == "start" else "stop walking and stand still"
        if transitions in ("amplitude", "balanced"):
            weight, pace = amplitude_schedule(frames, fps)
            weight, pace = (weight, pace) if kind == "start" else (weight[::-1], pace[::-1])
            speed, yaw_rate = target * weight * pace, yaw * weight
            options.update(start_phase=float(rng.uniform()), cadence=target / cycle.speed * pace, feet=1.0 - weight,
                           shift=balance_schedule(cycle, transitions, weight))
        else:
            weight, cadence = starting_schedule(frames, fps)
            if kind == "stop":
                weight, cadence = weight[::-1], cadence[::-1]
                swing -= phases_walked(cycle, cadence, target / cycle.speed, fps)
            speed, yaw_rate = target * cadence, yaw * cadence
            options.update(start_phase=swing, feet=1.0 - cadence)
        options["lock_stance"] = True
    factor = speed / cycle.speed
    return synthesize(cycle, kinematics, name=f"{cycle.name}_{kind}_{index:03d}", text=text, fps=fps,
                      speed=factor, weight=weight, yaw_rate=yaw_rate,
                      source=f"synthetic derivative of {cycle.source}: random {kind} schedule", **options)


def _knotted(rng: np.random.Generator, frames: int, fps: float, bounds: tuple[float, float]) -> np.ndarray:
    """[frames] values through random knots every KNOT_SECONDS, eased between them (zero slope at knots)."""
    knots = rng.uniform(*bounds, size=int(np.ceil((frames - 1) / fps / KNOT_SECONDS)) + 1)
    position = np.arange(frames) / fps / KNOT_SECONDS
    low = np.minimum(position.astype(int), len(knots) - 2)
    ease = smoothstep(position - low)
    return knots[low] + ease * (knots[low + 1] - knots[low])


def _yaw_rates(rng: np.random.Generator, frames: int, fps: float) -> np.ndarray:
    if rng.uniform() < STRAIGHT_SHARE:
        return np.zeros(frames)
    return _knotted(rng, frames, fps, YAW_RATE_RANGE)

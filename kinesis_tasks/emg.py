"""Compare simulated muscle activations with recorded EMG over the normalised gait cycle (pure functions).

The processing follows the usual gait-EMG practice (e.g. the comparisons of Wang et al. 2023 and KINESIS):

* EMG: zero-phase Butterworth band-pass (default 20-450 Hz, the upper edge kept below Nyquist), full-wave
  rectification, zero-phase Butterworth low-pass (default 6 Hz): the linear envelope.
* Activations (MuJoCo ``data.act``, already envelopes): the same low-pass only.
* Gait cycles: heel strike to heel strike of one side, each resampled to 0..100 % (101 points) and averaged.
* Per channel: Pearson r of the mean EMG envelope and the mean activation over the cycle, and the timing of
  their peaks (% of cycle; the difference activation - EMG wrapped to [-50, 50)).

Arrays are time-major: ``[T]`` or ``[T, K]``. Nothing here reads files (``emg_io`` does).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import interpolate, signal

N_POINTS = 101
SIDES = ("r", "l")
#: Order of SimState.foot_contacts (kinesis_tasks.embodiment.FOOT_TOUCH_SENSORS): r_foot, r_toes, l_foot, l_toes.
HEEL_CONTACT_INDEX = {"r": 0, "l": 2}


# --- filtering ------------------------------------------------------------------------------------


def sample_rate(time: np.ndarray) -> float:
    """Samples per second of a strictly increasing time vector (median step). Raises ValueError otherwise."""
    time = np.asarray(time, dtype=float)
    if time.ndim != 1 or time.size < 2:
        raise ValueError(f"time: need a 1-D vector of at least 2 samples, got shape {time.shape}")
    steps = np.diff(time)
    if not np.all(np.isfinite(time)) or np.any(steps <= 0):
        bad = int(np.argmax(~np.isfinite(steps) | (steps <= 0)))
        raise ValueError(f"time: must increase strictly (sample {bad + 1}: {time[bad]:g} -> {time[bad + 1]:g} s)")
    return float(1.0 / np.median(steps))


def _filtfilt(values: np.ndarray, sos: np.ndarray, what: str) -> np.ndarray:
    try:
        return signal.sosfiltfilt(sos, values, axis=0)
    except ValueError as error:  # too few samples for the filter's padding
        raise ValueError(f"{what}: {values.shape[0]} samples are too few to filter ({error})") from None


def lowpass(values: np.ndarray, fs: float, cutoff: float = 6.0, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0; the cutoff is capped at 0.9 x Nyquist."""
    if cutoff <= 0:
        raise ValueError(f"low-pass cutoff must be positive, got {cutoff:g} Hz")
    cutoff = min(cutoff, 0.45 * fs)
    sos = signal.butter(order, cutoff, btype="lowpass", fs=fs, output="sos")
    return _filtfilt(np.asarray(values, dtype=float), sos, "low-pass")


def emg_envelope(emg: np.ndarray, fs: float, band: tuple[float, float] = (20.0, 450.0), cutoff: float = 6.0,
                 order: int = 4) -> np.ndarray:
    """Linear envelope of raw EMG [T(, K)]: band-pass, full-wave rectify, low-pass (all zero-phase)."""
    low, high = band
    high = min(high, 0.95 * fs / 2.0)
    if not 0 < low < high:
        raise ValueError(f"EMG sampled at {fs:g} Hz cannot be band-passed from {low:g} Hz (upper edge {high:g} Hz); "
                         "if the file already holds envelopes, skip the band-pass")
    sos = signal.butter(order, (low, high), btype="bandpass", fs=fs, output="sos")
    bandpassed = _filtfilt(np.asarray(emg, dtype=float), sos, "band-pass")
    return lowpass(np.abs(bandpassed), fs, cutoff, order)


# --- gait events and cycles -----------------------------------------------------------------------


def heel_strikes(time: np.ndarray, contact: np.ndarray, threshold: float = 0.05, min_interval: float = 0.4) -> np.ndarray:
    """Times (s) of the rising edges of a contact signal (touch force, foot switch or 0/1 event pulses).

    Contact turns on above ``threshold`` x the signal's maximum and off below half of that (hysteresis
    against chatter); the strike is the first sample above the threshold (as a force-plate threshold or
    a foot switch; up to one sample late). An onset within ``min_interval`` s of the previous one (or of
    the start, when the signal starts on) is ignored; the start itself is no strike.
    """
    time, contact = np.asarray(time, dtype=float), np.asarray(contact, dtype=float)
    if contact.shape != time.shape:
        raise ValueError(f"contact: shape {contact.shape} differs from time {time.shape}")
    scale = float(np.max(contact)) if contact.size else 0.0
    if not np.isfinite(scale) or scale <= 0:
        return np.empty(0)
    on, off = threshold * scale, 0.5 * threshold * scale
    strikes: list[float] = []
    state = contact[0] > on
    last = time[0] if state else -np.inf
    for i in range(1, contact.size):
        if state and contact[i] < off:
            state = False
        elif not state and contact[i] > on:
            state = True
            if time[i] - last >= min_interval:
                strikes.append(float(time[i]))
                last = time[i]
    return np.asarray(strikes)


def strikes_by_duration(start: float, end: float, duration: float) -> np.ndarray:
    """Heel strikes every ``duration`` s from ``start`` up to ``end`` (recordings without gait events)."""
    if not duration > 0:
        raise ValueError(f"cycle duration must be positive, got {duration:g} s")
    return start + duration * np.arange(int(np.floor((end - start) / duration + 1e-9)) + 1)


def cycle_bounds(strikes: np.ndarray, start: float, end: float, tolerance: float = 0.3) -> list[tuple[float, float]]:
    """Consecutive heel-strike pairs inside [start, end] whose duration is within ``tolerance`` of the median."""
    strikes = np.sort(np.asarray(strikes, dtype=float))
    strikes = strikes[(strikes >= start) & (strikes <= end)]
    pairs = list(zip(strikes[:-1], strikes[1:]))
    if not pairs:
        return []
    median = float(np.median([b - a for a, b in pairs]))
    return [(float(a), float(b)) for a, b in pairs if abs((b - a) - median) <= tolerance * median]


def normalize_cycles(time: np.ndarray, values: np.ndarray, bounds: Sequence[tuple[float, float]],
                     n_points: int = N_POINTS) -> np.ndarray:
    """Each cycle (t0, t1) of ``values`` [T(, K)] resampled linearly at 0..100 % -> [C, n_points(, K)]."""
    values = np.asarray(values, dtype=float)
    if not bounds:
        return np.empty((0, n_points, *values.shape[1:]))
    curve = interpolate.interp1d(np.asarray(time, dtype=float), values, axis=0, assume_sorted=True)
    phase = np.linspace(0.0, 1.0, n_points)
    return np.stack([curve(t0 + phase * (t1 - t0)) for t0, t1 in bounds])


# --- comparison -----------------------------------------------------------------------------------


def peak_percent(curve: np.ndarray) -> float:
    """Where the maximum of a cycle curve [N] lies, in % of the cycle."""
    return 100.0 * int(np.argmax(curve)) / (len(curve) - 1)


def wrap_percent(delta: float) -> float:
    """A phase difference in % of the cycle wrapped to [-50, 50)."""
    return float((delta + 50.0) % 100.0 - 50.0)


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either curve is constant."""
    a, b = np.asarray(a, dtype=float) - np.mean(a), np.asarray(b, dtype=float) - np.mean(b)
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / norm) if norm > 0 else float("nan")


@dataclass(frozen=True)
class Comparison:
    """One channel: Pearson r, peak timings (% of cycle) and their difference (activation - EMG, wrapped)."""

    r: float
    emg_peak: float
    activation_peak: float
    peak_shift: float


def compare_curves(emg_mean: np.ndarray, activation_mean: np.ndarray) -> Comparison:
    """Comparison of a mean EMG envelope and a mean activation over the same normalised cycle."""
    emg_peak, act_peak = peak_percent(emg_mean), peak_percent(activation_mean)
    return Comparison(pearson_r(emg_mean, activation_mean), emg_peak, act_peak, wrap_percent(act_peak - emg_peak))


# --- channel -> muscle mapping --------------------------------------------------------------------

_SIDE_WORDS = {"r": "r", "l": "l", "right": "r", "left": "l"}
_SUFFIX = re.compile(r"^(?P<base>.+?)[\s_.\-]*(?P<side>right|left)$|^(?P<base2>.+?)[\s_.\-]+(?P<side2>r|l)$")
_PREFIX = re.compile(r"^(?P<side>right|left)[\s_.\-]*(?P<base>.+)$|^(?P<side2>r|l)[\s_.\-]+(?P<base2>.+)$")


def channel_key(name: str) -> str:
    """Case- and separator-insensitive form of a channel name: 'Tibialis_Anterior' -> 'tibialisanterior'."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def split_side(name: str) -> tuple[str, str | None]:
    """('TA_r' | 'R_TA' | 'TA right' | 'rightTA') -> ('ta', 'r'); no side token -> (key, None)."""
    lowered = name.strip().lower()
    for pattern in (_SUFFIX, _PREFIX):
        match = pattern.match(lowered)
        if match:
            base = match.group("base") or match.group("base2")
            side = match.group("side") or match.group("side2")
            return channel_key(base), _SIDE_WORDS[side]
    return channel_key(lowered), None


@dataclass(frozen=True)
class ChannelMap:
    """An EMG column, the side it belongs to and the model muscles whose activations are averaged for it."""

    channel: str
    side: str
    muscles: tuple[str, ...]


def _muscle_list(value: object, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(m, str) and m for m in items):
        raise ValueError(f"mapping {where}: expected a muscle name or a non-empty list of names, got {value!r}")
    return items


def _check_muscle(name: str, known: set[str], where: str) -> str:
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=3)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ValueError(f"mapping {where}: unknown muscle {name!r}: not an actuator of the model{hint}")
    return name


def _with_side(muscle: str, side: str, known: set[str], where: str) -> str:
    if muscle.endswith(("_r", "_l")) and (muscle in known or f"{muscle}_{side}" not in known):
        return _check_muscle(muscle, known, where)
    return _check_muscle(f"{muscle}_{side}", known, where)


def resolve_mapping(columns: Sequence[str], mapping: Mapping[str, object], muscle_names: Iterable[str],
                    default_side: str = "r") -> tuple[list[ChannelMap], list[str]]:
    """Match EMG columns to model muscles; returns (mapped channels in column order, unmapped columns).

    ``mapping`` has up to two sections. ``channels``: exact column name -> muscle name(s); every name must
    be a column. ``patterns``: channel base name (case and separators ignored) -> muscle base name(s); a
    column matches with its side token (``TA_r``, ``L_TA``, ``TA left``...), or ``default_side`` without one,
    and ``_r``/``_l`` is appended to muscle bases. The muscles of every entry used are checked against
    ``muscle_names`` (patterns no column matches are not: the default mapping serves several models).

    Raises:
        ValueError: a ``channels`` key that is no column, an unknown muscle, or a malformed mapping.
    """
    if default_side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {default_side!r}")
    unknown_sections = sorted(set(mapping) - {"channels", "patterns"})
    if unknown_sections:
        raise ValueError(f"mapping: unknown sections {unknown_sections} (expected 'channels' and/or 'patterns')")
    channels = dict(mapping.get("channels") or {})
    patterns = {channel_key(str(k)): (str(k), v) for k, v in (mapping.get("patterns") or {}).items()}
    known = set(muscle_names)
    missing = [name for name in channels if name not in columns]
    if missing:
        raise ValueError(f"mapping: channel {missing[0]!r} is not a column of the EMG recording "
                         f"(columns: {', '.join(columns)})")
    mapped, unmapped = [], []
    for column in columns:
        base, side = split_side(column)
        side = side or default_side
        if column in channels:
            muscles = [_with_side(m, side, known, f"channel {column!r}")
                       for m in _muscle_list(channels[column], f"channel {column!r}")]
        elif base in patterns or channel_key(column) in patterns:
            label, value = patterns.get(base) or patterns[channel_key(column)]
            side = side if base in patterns else default_side
            muscles = [_with_side(m, side, known, f"pattern {label!r}") for m in _muscle_list(value, f"pattern {label!r}")]
        else:
            unmapped.append(column)
            continue
        sides = {m[-1] for m in muscles if m.endswith(("_r", "_l"))}
        mapped.append(ChannelMap(column, sides.pop() if len(sides) == 1 else side, tuple(dict.fromkeys(muscles))))
    return mapped, unmapped


# --- the whole comparison -------------------------------------------------------------------------


@dataclass(frozen=True)
class SimEpisode:
    """One simulated episode: time [T] (s), activations [T, nu] (model actuator order), foot contacts [T, 4]."""

    time: np.ndarray
    activation: np.ndarray
    contacts: np.ndarray
    motion: str | None = None


@dataclass(frozen=True)
class ChannelResult:
    """A channel's comparison and its mean / standard deviation curves [N] over the normalised cycle."""

    channel: ChannelMap
    comparison: Comparison
    emg_mean: np.ndarray
    emg_std: np.ndarray
    activation_mean: np.ndarray
    activation_std: np.ndarray


@dataclass(frozen=True)
class GaitComparison:
    """Per-channel results plus the cycles they rest on (durations in s)."""

    results: list[ChannelResult]
    sim_cycle_durations: np.ndarray
    emg_cycle_durations: np.ndarray
    emg_events: str


def simulated_cycles(episodes: Sequence[SimEpisode], channels: Sequence[ChannelMap], muscle_names: Sequence[str],
                     side: str = "r", cutoff: float = 6.0, tolerance: float = 0.3,
                     n_points: int = N_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean activations, low-passed and cut at the heel strikes of ``side``, pooled over episodes.

    Returns (cycles [C, n_points, K], durations [C]).
    """
    index = {name: i for i, name in enumerate(muscle_names)}
    columns = [[index[m] for m in ch.muscles] for ch in channels]
    pooled, durations = [], []
    for episode in episodes:
        if episode.contacts.ndim != 2 or episode.contacts.shape[1] <= HEEL_CONTACT_INDEX[side]:
            raise ValueError(f"simulation: foot contacts of shape {episode.contacts.shape}, need the 4 touch sensors")
        strikes = heel_strikes(episode.time, episode.contacts[:, HEEL_CONTACT_INDEX[side]])
        bounds = cycle_bounds(strikes, episode.time[0], episode.time[-1], tolerance)
        if not bounds:
            continue
        act = np.stack([episode.activation[:, c].mean(axis=1) for c in columns], axis=1)
        envelope = lowpass(act, sample_rate(episode.time), cutoff)
        pooled.append(normalize_cycles(episode.time, envelope, bounds, n_points))
        durations += [b - a for a, b in bounds]
    if not pooled:
        raise ValueError(f"simulation: fewer than two heel strikes of side {side!r} in every episode "
                         "(did the policy walk? a longer recording or the other side may help)")
    return np.concatenate(pooled), np.asarray(durations)


def compare_gait(emg_time: np.ndarray, emg: np.ndarray, channels: Sequence[ChannelMap], episodes: Sequence[SimEpisode],
                 muscle_names: Sequence[str], *, side: str = "r", emg_strikes: np.ndarray | None = None,
                 emg_offset: float = 0.0, band: tuple[float, float] | None = (20.0, 450.0), cutoff: float = 6.0,
                 tolerance: float = 0.3, n_points: int = N_POINTS) -> GaitComparison:
    """Compare EMG [T, K] (columns in ``channels`` order) with the simulated activations.

    EMG cycles run between ``emg_strikes`` (s); without them they start at the first EMG sample +
    ``emg_offset`` and last the median simulated cycle. ``band=None``: the EMG columns are envelopes
    already (low-pass only).
    """
    emg = np.asarray(emg, dtype=float).reshape(len(emg_time), -1)
    if emg.shape[1] != len(channels):
        raise ValueError(f"EMG has {emg.shape[1]} columns for {len(channels)} channels")
    sim, sim_durations = simulated_cycles(episodes, channels, muscle_names, side, cutoff, tolerance, n_points)
    fs = sample_rate(emg_time)
    envelope = lowpass(emg, fs, cutoff) if band is None else emg_envelope(emg, fs, band, cutoff)
    if emg_strikes is None:
        events = f"none: cycles of the simulated median {np.median(sim_durations):.3f} s from t0 + {emg_offset:g} s"
        emg_strikes = strikes_by_duration(emg_time[0] + emg_offset, emg_time[-1], float(np.median(sim_durations)))
    else:
        events = f"{len(emg_strikes)} heel strikes"
    bounds = cycle_bounds(emg_strikes, emg_time[0], emg_time[-1], tolerance)
    if not bounds:
        raise ValueError("EMG: no complete gait cycle (need two heel strikes, or a recording longer than one cycle)")
    cycles = normalize_cycles(emg_time, envelope, bounds, n_points)
    results = []
    for k, channel in enumerate(channels):
        emg_mean, act_mean = cycles[:, :, k].mean(axis=0), sim[:, :, k].mean(axis=0)
        results.append(ChannelResult(channel, compare_curves(emg_mean, act_mean), emg_mean, cycles[:, :, k].std(axis=0),
                                     act_mean, sim[:, :, k].std(axis=0)))
    return GaitComparison(results, sim_durations, np.asarray([b - a for a, b in bounds]), events)

"""The treadmill walking trial of GaitAnalysisToolKit 0.2.0 as a GaitCycle.

Source: ``gaitanalysis/octave/2d_inverse_dynamics/test/rawdata.txt`` in the
GaitAnalysisToolKit 0.2.0 source distribution on PyPI (Apache-2.0, Cleveland
State University Human Motion and Control Lab). It holds 3 s at 100 Hz of
sagittal-plane markers of the right side (X forward, Y up, m): shoulder,
greater trochanter, lateral knee epicondyle, lateral malleolus, heel and 5th
metatarsal head, plus the right force plate (Fx, Fy in N, Mz).

Derivation: missing samples are interpolated linearly, markers are low-pass
filtered (4th-order zero-lag Butterworth, 6 Hz, as the toolkit's own analysis);
right heel strikes are where Fy rises above 50 N. Segment angles give MyoLeg
angles: hip flexion = thigh angle from vertical (pelvis assumed level), knee
flexion = thigh minus shank angle, ankle dorsiflexion = foot (heel to toe) pitch
minus shank angle. The complete strides are time-normalised and averaged; the
left leg is the right leg half a stride later (symmetric gait assumed); hip
ab/adduction and rotation are zero (sagittal data). The belt speed is the median
backward speed of the toe marker while Fy > 200 N; the root moves forward at the
belt speed plus the trochanter marker's own forward velocity.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import butter, filtfilt

from kinesis_tasks.motions.cycle import GaitCycle

MARKERS = ("RSHO", "RGTRO", "RLEK", "RLM", "RHEE", "RMT5")
COLUMNS = ("TimeStamp", *(f"{m}.Pos{axis}" for m in MARKERS for axis in "XY"), "FP2.ForX", "FP2.ForY", "FP2.MomZ")
TRIAL_PATH = "gaitanalysis/octave/2d_inverse_dynamics/test/rawdata.txt"
LICENCE = "Apache-2.0 (GaitAnalysisToolKit, Cleveland State University)"
PHASES = 100
CONTACT_N = 50.0
FLAT_FOOT_N = 200.0


def read_trial(path: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(times [T] s, marker name -> [T, 2] filtered positions m, vertical force [T] N) of rawdata.txt."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GaitAnalysisToolKit trial not found: {path} (extract {TRIAL_PATH} from "
                                "`pip download --no-deps --no-binary :all: GaitAnalysisToolKit==0.2.0`)")
    try:
        data = np.loadtxt(path, comments="%", ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path}: not a numeric table: {error}") from None
    if data.shape[1] != len(COLUMNS) or data.shape[0] < 50:
        raise ValueError(f"{path}: expected >= 50 rows of {len(COLUMNS)} columns {COLUMNS}, got {data.shape}")
    times = data[:, 0]
    rate = 1.0 / np.median(np.diff(times))
    filled = np.column_stack([_fill_gaps(column, path) for column in data[:, 1:].T])
    b, a = butter(2, 6.0 / (rate / 2))  # filtfilt doubles the order: 4th-order zero-lag
    smooth = filtfilt(b, a, filled[:, :12], axis=0)
    markers = {name: smooth[:, 2 * i:2 * i + 2] for i, name in enumerate(MARKERS)}
    return times, markers, filled[:, 13]


def gaitanalysis_cycle(path: str | Path) -> GaitCycle:
    """The averaged right stride of the trial as a GaitCycle (see the module docstring)."""
    times, markers, force = read_trial(path)
    step = float(np.median(np.diff(times)))
    contact = force > CONTACT_N
    strikes = np.flatnonzero(contact[1:] & ~contact[:-1]) + 1
    if len(strikes) < 2:
        raise ValueError(f"{path}: fewer than two heel strikes found (force plate Fy > {CONTACT_N} N)")
    thigh = _segment_angle(markers["RGTRO"], markers["RLEK"])
    shank = _segment_angle(markers["RLEK"], markers["RLM"])
    toe_vector = markers["RMT5"] - markers["RHEE"]
    foot_pitch = np.arctan2(toe_vector[:, 1], toe_vector[:, 0])
    belt = -np.median(np.gradient(markers["RMT5"][:, 0], step)[force > FLAT_FOOT_N])
    forward = belt + np.gradient(markers["RGTRO"][:, 0], step)
    series = np.column_stack([thigh, thigh - shank, foot_pitch - shank, forward])
    strides = [_time_normalise(series[start:end + 1]) for start, end in zip(strikes[:-1], strikes[1:])]
    mean = np.mean(strides, axis=0)
    half = np.roll(mean, -PHASES // 2, axis=0)
    right = {"hip_flexion_r": mean[:, 0], "knee_angle_r": mean[:, 1], "ankle_angle_r": mean[:, 2]}
    left = {"hip_flexion_l": half[:, 0], "knee_angle_l": half[:, 1], "ankle_angle_l": half[:, 2]}
    duration = float(np.mean(np.diff(strikes))) * step
    return GaitCycle(
        name="gaitanalysis",
        duration=duration,
        angles={**right, **left},
        root_velocity=np.column_stack([mean[:, 3], np.zeros(PHASES)]),
        tilt=np.zeros((PHASES, 2)),
        source=(f"GaitAnalysisToolKit 0.2.0 {TRIAL_PATH}: {len(strides)} right strides averaged, "
                f"belt speed {belt:.2f} m/s estimated"),
        licence=LICENCE,
    )


def _segment_angle(proximal: np.ndarray, distal: np.ndarray) -> np.ndarray:
    """[T] sagittal angle of proximal -> distal from straight down, + when the distal end is forward, rad."""
    vector = distal - proximal
    return np.arctan2(vector[:, 0], -vector[:, 1])


def _time_normalise(values: np.ndarray) -> np.ndarray:
    """[n, C] samples of one stride (both heel strikes included) -> [PHASES, C] at phases k / PHASES."""
    source = np.linspace(0.0, 1.0, len(values))
    target = np.arange(PHASES) / PHASES
    return np.column_stack([np.interp(target, source, column) for column in values.T])


def _fill_gaps(column: np.ndarray, path: Path) -> np.ndarray:
    missing = np.isnan(column)
    if missing.all():
        raise ValueError(f"{path}: a column has no values")
    if not missing.any():
        return column
    index = np.arange(len(column))
    return np.interp(index, index[~missing], column[~missing])

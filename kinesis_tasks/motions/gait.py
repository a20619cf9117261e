"""MyoSuite's sample gait cycle (``myosuite/envs/myo/assets/leg/sample_gait_cycle.csv``) as a GaitCycle.

The CSV holds one real stride in 247 rows without a time column: MyoLeg joint
angles (rad; the right knee and ankle columns are prefixed ``osl_``), pelvis
Euler angles, pelvis velocity (X forward, m/s) and foot positions relative to
the pelvis. Its sample interval is estimated here from stance-foot sliding:
a foot on the ground moves backwards relative to the pelvis at the pelvis speed,
so dt = -d(foot_x - pelvis_x) / v_x over the stance rows (the lowest 40 % of
each foot's relative height); the median over both feet gives about 4.2 ms per
row, a stride of about 1.03 s at 1.24 m/s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kinesis_tasks.motions.cycle import GaitCycle

#: MyoLeg joints read from the CSV: joint name -> CSV column.
JOINT_COLUMNS = {
    "hip_flexion_l": "hip_flexion_l", "hip_adduction_l": "hip_adduction_l", "hip_rotation_l": "hip_rotation_l",
    "hip_flexion_r": "hip_flexion_r", "hip_adduction_r": "hip_adduction_r", "hip_rotation_r": "hip_rotation_r",
    "knee_angle_l": "knee_angle_l", "knee_angle_r": "osl_knee_angle_r",
    "ankle_angle_l": "ankle_angle_l", "ankle_angle_r": "osl_ankle_angle_r",
}
REQUIRED_COLUMNS = (*JOINT_COLUMNS.values(), "pelvis_euler_roll", "pelvis_euler_pitch", "pelvis_vel_X",
                    "pelvis_vel_Y", "l_foot_relative_X", "l_foot_relative_Z",
                    "r_foot_relative_X", "r_foot_relative_Z")
LICENCE = "Apache-2.0 (MyoSuite)"


def myosuite_csv_path() -> Path:
    """Location of sample_gait_cycle.csv inside the installed myosuite package."""
    import myosuite

    return Path(myosuite.__file__).parent / "envs" / "myo" / "assets" / "leg" / "sample_gait_cycle.csv"


def read_gait_table(path: str | Path) -> dict[str, np.ndarray]:
    """CSV columns by name -> [N] float arrays (ValueError naming the file on bad content)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gait cycle CSV not found: {path}")
    table = np.genfromtxt(path, delimiter=",", names=True)
    if table.dtype.names is None or table.ndim != 1 or len(table) < 10:
        raise ValueError(f"{path}: expected a CSV with a header row and at least 10 data rows")
    missing = sorted(set(REQUIRED_COLUMNS) - set(table.dtype.names))
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    columns = {name: np.asarray(table[name], dtype=np.float64) for name in table.dtype.names}
    bad = [name for name, values in columns.items() if not np.all(np.isfinite(values))]
    if bad:
        raise ValueError(f"{path}: non-numeric or missing values in columns {bad}")
    return columns


def estimate_row_interval(table: dict[str, np.ndarray]) -> float:
    """Seconds per CSV row from stance-foot sliding (see the module docstring)."""
    estimates = []
    for side in "lr":
        height = table[f"{side}_foot_relative_Z"]
        stance = height < np.percentile(height, 40)
        slide = np.gradient(table[f"{side}_foot_relative_X"])
        estimates.append(-slide[stance] / table["pelvis_vel_X"][stance])
    return float(np.median(np.concatenate(estimates)))


def myosuite_gait_cycle(path: str | Path | None = None) -> GaitCycle:
    """The MyoSuite sample stride as a GaitCycle (duration estimated, velocities in the heading frame).

    The CSV does not document its axes; X is forward, and ``pelvis_vel_Y`` is taken as
    the left velocity because then the pelvis sways over the stance foot (the other
    sign puts it over the swing foot, about 2 cm off, which no walker does).
    """
    path = Path(path) if path is not None else myosuite_csv_path()
    table = read_gait_table(path)
    interval = estimate_row_interval(table)
    rows = len(table["pelvis_vel_X"])
    velocity = np.column_stack([table["pelvis_vel_X"], table["pelvis_vel_Y"]])
    tilt = np.column_stack([table["pelvis_euler_pitch"], table["pelvis_euler_roll"]])
    tilt[:, 1] -= tilt[:, 1].mean()  # keep the mean forward lean, remove the mean roll
    return GaitCycle(
        name="myosuite",
        duration=interval * rows,
        angles={joint: table[column] for joint, column in JOINT_COLUMNS.items()},
        root_velocity=velocity,
        tilt=tilt,
        source=f"MyoSuite 3.0.0 sample_gait_cycle.csv ({rows} rows, {interval * 1e3:.2f} ms/row estimated)",
        licence=LICENCE,
    )

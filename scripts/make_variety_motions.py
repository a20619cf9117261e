"""Write a training library of randomly scheduled walks (kinesis_tasks.motions.variety) beside a base library.

Usage:
    pip download --no-deps --no-binary :all: GaitAnalysisToolKit==0.2.0 -d /tmp
    python scripts/make_variety_motions.py /tmp/GaitAnalysisToolKit-0.2.0.tar.gz --count 60 --seed 0 \\
        --out runs/variety.npz

``--count`` clips are drawn from each of the two recorded strides (MyoSuite's and GaitAnalysisToolKit's),
the same ones the default library replays; the clips of ``--with`` (default ``default:train``; ``none``) are
added unchanged. Every motion of the output is in its ``train`` split: never add test clips. The same seed
gives the same file on every machine; another seed (``--seed 1 --count 10 --with none``) gives held-out
clips of the same kind, to measure how a policy does on walks it was not trained on. ``--kinds start=1,stop=1``
draws only starts and stops (a transition specialist's data).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kinesis_tasks.motions import load_library, parse_library_spec, save_library
from kinesis_tasks.motions.gait import myosuite_gait_cycle
from kinesis_tasks.motions.gaitanalysis import gaitanalysis_cycle
from kinesis_tasks.motions.kinematics import LegsKinematics
from kinesis_tasks.motions.variants import TRANSITIONS
from kinesis_tasks.motions.variety import random_walks

from make_default_motions import trial_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gaitanalysis", type=Path, help="GaitAnalysisToolKit-0.2.0.tar.gz or its rawdata.txt")
    parser.add_argument("--count", type=int, default=60, help="random clips per recorded stride (default: 60)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the schedule draws (default: 0)")
    parser.add_argument("--with", dest="base", default="default:train", metavar="LIB[:split]",
                        help="library whose clips are added unchanged (default: default:train; 'none': no base)")
    parser.add_argument("--out", type=Path, required=True, help="output library (.npz file or folder)")
    parser.add_argument("--fps", type=float, default=30.0, help="frame rate of the clips (Hz)")
    parser.add_argument("--kinds", default=None, metavar="KIND=W,...",
                        help="share of each kind, e.g. start=1,stop=1 (default: walk=0.7,start=0.15,stop=0.15)")
    parser.add_argument("--transitions", choices=TRANSITIONS, default="amplitude",
                        help="start and stop schedule: amplitude (the default library's), balanced (amplitude with "
                             "a weight shift for the sagittal-plane stride) or cadence (the earlier one)")
    args = parser.parse_args()
    shares = None
    if args.kinds is not None:
        try:
            shares = {kind: float(weight) for kind, weight in (item.split("=") for item in args.kinds.split(","))}
        except ValueError:
            parser.error(f"--kinds must read KIND=WEIGHT,..., got {args.kinds!r}")

    kinematics = LegsKinematics("legs")
    with tempfile.TemporaryDirectory() as workdir:
        cycles = [myosuite_gait_cycle(), gaitanalysis_cycle(trial_file(args.gaitanalysis, Path(workdir)))]
    rng = np.random.default_rng(args.seed)
    motions = [] if args.base == "none" else list(load_library(*parse_library_spec(args.base)).values())
    for cycle in tqdm(cycles, desc="strides"):
        motions += random_walks(cycle, kinematics, args.fps, args.count, rng, shares=shares,
                               transitions=args.transitions)
    path = save_library(args.out, motions, {"train": [motion.name for motion in motions]})
    print(f"wrote {len(motions)} motions to {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

"""Score walker checkpoints side by side on the gauges that decide a bundle swap (docs/training.md).

Usage:
    python scripts/compare_checkpoints.py kinesis_tasks/data/policies/legs/model.pth runs/walker/model_11*.pth \\
        --gauges train,holdout,directional,reach --holdout runs/variety_holdout.npz --json runs/compare.json

One row per checkpoint, one column per gauge, each with ``kinesis eval``'s mean action and criteria:

* ``train`` / ``test``: ``default:train`` / ``default:test`` entered at ``--starts`` frames (default 8: the
  swap rule's 128 training episodes), success rate and MPJPE;
* ``holdout``: every motion of ``--holdout`` from frame 0 (random walks of another seed:
  ``scripts/make_variety_motions.py --seed 1 --with none``);
* ``directional`` / ``reach``: ``--goals`` seeded goals of ``--seed`` (default 1: the evaluation seed 0 stays
  for the final report), success rate and, for directional, the mean time up.

Each gauge runs in this process (one core): the five take about 30 s per checkpoint on the 2-core machine.
The evaluation modules load only once the arguments are checked, so that a wrong argument answers at once.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

GAUGES = ("train", "test", "holdout", "directional", "reach")


def motion_gauge(library: str, starts: int) -> Callable[[Path], dict[str, Any]]:
    from kinesis_tasks.evaluation import evaluate
    from kinesis_tasks.metrics import summarize
    from kinesis_tasks.motions import load_library, parse_library_spec
    from kinesis_training.inference import CheckpointPolicy

    name, split = parse_library_spec(library)
    motions = load_library(name, split=split)

    def run(checkpoint: Path) -> dict[str, Any]:
        return summarize(evaluate(motions, CheckpointPolicy(str(checkpoint)), starts=starts))
    return run


def task_gauge(task: str, goals: int, seed: int) -> Callable[[Path], dict[str, Any]]:
    from kinesis_tasks.evaluation import evaluate_task, summarize_tasks
    from kinesis_training.inference import CheckpointPolicy

    def run(checkpoint: Path) -> dict[str, Any]:
        return summarize_tasks(evaluate_task(task, CheckpointPolicy(str(checkpoint)), goals=goals, seed=seed))
    return run


def cell(gauge: str, summary: dict[str, Any]) -> str:
    if gauge == "directional":
        return f"{summary['success_rate']:.0%}, up {summary['mean_episode_s']:.1f} s"
    if gauge == "reach":
        return f"{summary['success_rate']:.0%}"
    return f"{summary['success_rate']:.1%} / {summary['mpjpe_mm']:.0f} mm"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path, help="model.pth files")
    parser.add_argument("--gauges", default="train,directional,reach",
                        help=f"comma-separated, of {', '.join(GAUGES)} (default: train,directional,reach)")
    parser.add_argument("--starts", type=int, default=8, help="train/test: start frames per motion (default 8)")
    parser.add_argument("--holdout", default=None, metavar="LIB", help="holdout: the held-out motion library")
    parser.add_argument("--goals", type=int, default=50, help="directional/reach: goals (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="directional/reach: goal seed (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summaries here")
    args = parser.parse_args()
    gauges = [g.strip() for g in args.gauges.split(",") if g.strip()]
    unknown = sorted(set(gauges) - set(GAUGES))
    if unknown:
        parser.error(f"unknown gauges {unknown}; known: {', '.join(GAUGES)}")
    if "holdout" in gauges and args.holdout is None:
        parser.error("the holdout gauge needs --holdout LIB (scripts/make_variety_motions.py --seed 1 --with none)")
    missing = [str(path) for path in args.checkpoints if not path.is_file()]
    if missing:
        parser.error(f"no such checkpoint: {', '.join(missing)}")
    runners = {
        "train": lambda: motion_gauge("default:train", args.starts),
        "test": lambda: motion_gauge("default:test", args.starts),
        "holdout": lambda: motion_gauge(args.holdout, 1),
        "directional": lambda: task_gauge("directional", args.goals, args.seed),
        "reach": lambda: task_gauge("reach", args.goals, args.seed),
    }
    run = {gauge: runners[gauge]() for gauge in gauges}
    console, table = Console(), Table(title=f"checkpoints on {', '.join(gauges)}")
    for column in ("checkpoint", *gauges, "s"):
        table.add_column(column, justify="left" if column == "checkpoint" else "right", overflow="fold")
    scores: dict[str, dict[str, Any]] = {}
    for checkpoint in args.checkpoints:
        began = time.perf_counter()
        scores[str(checkpoint)] = {gauge: run[gauge](checkpoint) for gauge in gauges}
        row = [cell(gauge, scores[str(checkpoint)][gauge]) for gauge in gauges]
        table.add_row(str(checkpoint), *row, f"{time.perf_counter() - began:.0f}")
        console.print(f"{checkpoint}: " + " | ".join(f"{g} {c}" for g, c in zip(gauges, row)))
    console.print(table)
    if args.json is not None:
        args.json.write_text(json.dumps({"gauges": gauges, "starts": args.starts, "goals": args.goals,
                                         "seed": args.seed, "holdout": args.holdout, "scores": scores}, indent=1))


if __name__ == "__main__":
    main()

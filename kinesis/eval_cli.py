"""`kinesis eval`: success rate, MPJPE and frame coverage of a policy on a motion library.

Every motion runs once from its first frame with the policy's mean action; an episode fails when the
mean tracked-body distance exceeds 0.5 m. Prints a table per motion and the overall figures, and
optionally writes them as JSON.

Without --checkpoint the policy is the zero action (every muscle's target length at half its maximum):
an untrained baseline, so that `kinesis eval --motions default:test` runs on a fresh machine. Its
numbers are low by design.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a policy on a motion library", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=None,
                        help="model.pth to evaluate (default: the zero-action baseline)")
    parser.add_argument("--motions", default="default:test",
                        help="LIBRARY[:SPLIT]: 'default', a library .npz file or folder, optional split (default default:test)")
    parser.add_argument("--embodiment", default="legs", help="legs, legs_abs, legs_back or an MJCF path (default legs)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1; same results)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every episode reset (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Policy factory: the mean action of a checkpoint, size-checked against the embodiment."""

    path: str

    @property
    def description(self) -> str:
        return f"checkpoint {self.path} (mean action)"

    def __call__(self, obs_size: int, action_size: int):
        import torch
        from kinesis_training import load_policy

        torch.set_num_threads(1)
        return load_policy(self.path, obs_dim=obs_size, action_dim=action_size).mean_action


def parse_motions(spec: str) -> tuple[str, str | None]:
    """'LIB[:SPLIT]' -> (library, split or None)."""
    library, sep, split = spec.rpartition(":")
    if not sep or not library:
        return spec, None
    return library, split


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from kinesis_tasks.evaluation import ZeroPolicy, evaluate, evaluation_config
    from kinesis_tasks.metrics import summarize
    from kinesis_tasks.motions import load_library

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    library, split = parse_motions(args.motions)
    motions = load_library(library, split=split)
    if not motions:
        raise ValueError(f"--motions {args.motions}: no motions")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: file not found")
    factory = ZeroPolicy() if args.checkpoint is None else CheckpointPolicy(str(args.checkpoint))
    config = evaluation_config(embodiment=args.embodiment)
    console = Console()
    console.print(f"policy: {factory.description}; embodiment {args.embodiment}; {len(motions)} motions "
                  f"from {args.motions}; termination at {config.eval_termination_distance} m; seed {args.seed}")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(motions))
        results = evaluate(motions, factory, config=config, workers=args.workers, seed=args.seed,
                           on_result=lambda result: progress.advance(task))
    summary = summarize(results)

    table = Table(title=f"{factory.description} on {args.motions}")
    for column in ("motion", "success", "MPJPE (mm)", "coverage", "frames"):
        table.add_column(column, justify="left" if column == "motion" else "right")
    for r in results:
        table.add_row(r.motion, "yes" if r.success else "[red]no[/]", f"{r.mpjpe_mm:.1f}", f"{100 * r.coverage:.1f}%",
                      f"{r.frames_tracked}/{r.frames_total}")
    table.add_section()
    table.add_row("overall", f"{100 * summary['success_rate']:.1f}%", f"{summary['mpjpe_mm']:.1f}",
                  f"{100 * summary['coverage']:.1f}%", str(len(results)))
    console.print(table)

    if args.json is not None:
        report = {
            "policy": factory.description,
            "checkpoint": None if args.checkpoint is None else str(args.checkpoint),
            "embodiment": args.embodiment,
            "motions": args.motions,
            "seed": args.seed,
            "workers": args.workers,
            "termination_distance_m": config.eval_termination_distance,
            "summary": summary,
            "per_motion": [r.to_dict() for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
        console.print(f"results: {args.json}")
    return 0

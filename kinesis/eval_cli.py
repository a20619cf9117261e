"""`kinesis eval`: success rate of a policy on a motion library or on a seeded set of task goals.

Motions (default): every motion runs once from its first frame with the policy's mean action; an episode
fails when the mean tracked-body distance exceeds 0.5 m. Prints a table per motion (success, MPJPE, frame
coverage) and the overall figures, and optionally writes them as JSON.

--task reach|directional|kick: N goals (--goals, default 10) drawn with --seed (goal i from
numpy default_rng([seed, i]): the same seed gives the same goals), each run once from the standing start
with the mean action until success, a fall or the time limit (--max-time, default the task's). Prints a
table per goal (goal, success, outcome, time to success, final distance / mean velocity error / ball to
target, return) and the success rate. The kick runs the legs_back soccer scene.

Without --checkpoint the policy is the bundled policy of the embodiment (kinesis_tasks/data/policies/:
a trained walker for legs), so that `kinesis eval --motions default:test` evaluates a trained policy on a
fresh machine; an embodiment without one is an error (--checkpoint PATH). --checkpoint hold-pose runs the
untrained baseline instead (the standing muscle lengths held, no balance: it falls, its numbers are low by
design), --checkpoint zero-action every muscle's target length at half its maximum. --task: the task's own
bundle where one ships (legs: reach and directional, from the walker's lineage), else the embodiment's; the
task turns its goal into the reference the policy tracks; the kick runs legs_back, which has no bundled
policy, so without --checkpoint it runs the hold-pose fallback and says so. --weights float16 runs the checkpoint's mean action with its weight matrices rounded
to float16 (about half the latency; actions ~1e-4 relative from float32).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate a policy on a motion library or a task's goals",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None,
                        help="model.pth, kinesis:NAME for an official one (kinesis assets fetch), or a fallback "
                             "controller by name: hold-pose (the untrained baseline) or zero-action (default: the "
                             "bundled policy of the embodiment; --task kick: hold-pose, none is bundled for legs_back)")
    parser.add_argument("--motions", default="default:test",
                        help="LIBRARY[:SPLIT]: 'default', a library .npz file or folder, optional split (default default:test)")
    parser.add_argument("--embodiment", default=None,
                        help="legs, legs_abs, legs_back or an MJCF path (default legs; --task kick: legs_back)")
    parser.add_argument("--task", default=None, metavar="TASK",
                        help="evaluate a downstream task instead of motions: reach, directional or kick")
    parser.add_argument("--starts", type=int, default=1,
                        help="start each motion at this many frames: 0 and evenly over its first half (default 1: "
                             "frame 0 only, the KINESIS criterion); more measures entering a motion mid-stride")
    parser.add_argument("--goals", type=int, default=10, help="--task: number of seeded goals (default 10)")
    parser.add_argument("--max-time", type=float, default=None,
                        help="--task: episode time limit in s (default the task's, config/tasks.yaml)")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1; same results)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every episode reset; --task: seed of the goal set (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--weights", choices=("float32", "float16"), default="float32",
                        help="--checkpoint: weight storage of the mean action (default float32; float16: about half "
                             "the latency, actions ~1e-4 relative from float32; docs/performance.md)")
    parser.set_defaults(func=run)


def embodiment_of(args: argparse.Namespace) -> str:
    """--embodiment, or the default: legs, or the task's (``task_env.default_embodiment``: legs_back for kick)."""
    if args.embodiment:
        return args.embodiment
    if args.task is not None:
        from kinesis_tasks.task_env import default_embodiment

        return default_embodiment(args.task)
    return "legs"


def _policy_factory(args: argparse.Namespace):
    """The policy factory of --checkpoint (``kinesis_tasks.bundled.resolve_policy``: default the bundled policy,
    hold-pose/zero-action the fallbacks, kinesis:NAME, a path); ``.path`` is the checkpoint file or None."""
    from kinesis_tasks.bundled import resolve_policy
    from kinesis_tasks.evaluation import FallbackPolicy
    from kinesis_tasks.imitation import ImitationConfig
    from kinesis_training.inference import CheckpointPolicy

    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    embodiment = embodiment_of(args)
    control_mode = ImitationConfig.default(embodiment=embodiment).control_mode
    # downstream tasks keep a fallback where nothing is bundled (the kick's legs_back); motions need a policy
    choice = resolve_policy(args.checkpoint, embodiment, control_mode=control_mode,
                            unbundled="error" if args.task is None else "fallback", task=args.task)
    if choice.checkpoint is None:
        return FallbackPolicy(choice.fallback, embodiment, control_mode, description=choice.description)
    return CheckpointPolicy(str(choice.checkpoint), args.weights, bundled=choice.bundled)


def _progress(console, total: int):
    """A transient progress bar and its ``advance`` callback."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    bar = progress.add_task("evaluating", total=total)
    return progress, lambda result: progress.advance(bar)


def _write_json(console, path: Path | None, report: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        console.print(f"results: {path}")


def run(args: argparse.Namespace) -> int:
    if args.task is not None:
        return run_task(args)
    from rich.console import Console
    from rich.table import Table

    from kinesis_tasks.evaluation import evaluate, evaluation_config, start_frames
    from kinesis_tasks.metrics import summarize
    from kinesis_tasks.motions import load_library, parse_library_spec

    factory = _policy_factory(args)
    library, split = parse_library_spec(args.motions)
    motions = load_library(library, split=split)
    if not motions:
        raise ValueError(f"--motions {args.motions}: no motions")
    embodiment = embodiment_of(args)
    config = evaluation_config(embodiment=embodiment)
    console = Console()
    console.print(f"policy: {factory.description}; embodiment {embodiment}; {len(motions)} motions "
                  f"from {args.motions}; termination at {config.eval_termination_distance} m; seed {args.seed}")

    episodes = sum(len(start_frames(motion, args.starts)) for motion in motions.values())
    progress, advance = _progress(console, episodes)
    with progress:
        results = evaluate(motions, factory, config=config, workers=args.workers, seed=args.seed, on_result=advance,
                           starts=args.starts)
    summary = summarize(results)

    table = Table(title=f"{factory.description} on {args.motions}")
    for column in ("motion", "success", "MPJPE (mm)", "coverage", "frames"):
        table.add_column(column, justify="left" if column == "motion" else "right")
    for r in results:
        table.add_row(r.episode, "yes" if r.success else "[red]no[/]", f"{r.mpjpe_mm:.1f}", f"{100 * r.coverage:.1f}%",
                      f"{r.frames_tracked}/{r.frames_total}")
    table.add_section()
    table.add_row("overall", f"{100 * summary['success_rate']:.1f}%", f"{summary['mpjpe_mm']:.1f}",
                  f"{100 * summary['coverage']:.1f}%", str(len(results)))
    console.print(table)

    _write_json(console, args.json, {
        "policy": factory.description,
        "checkpoint": getattr(factory, "path", None),
        "bundled": getattr(factory, "bundled", False),
        "embodiment": embodiment,
        "motions": args.motions,
        "seed": args.seed,
        "starts": args.starts,
        "workers": args.workers,
        "termination_distance_m": config.eval_termination_distance,
        "summary": summary,
        "per_motion": [r.to_dict() for r in results],
    })
    return 0


METRIC_COLUMNS = {"goal_distance_m": "final distance (m)", "velocity_error_mps": "mean |v - v_cmd| (m/s)",
                  "ball_target_distance_m": "ball to target (m)"}


def describe_goal(goal: dict) -> str:
    """Short table text of a goal dict (``task_env.goal_to_dict``)."""
    if "commands" in goal:
        first, more = goal["commands"][0], len(goal["commands"]) - 1
        text = f"vx {first['linear_x']:.2f} vy {first['linear_y']:.2f} wz {first['angular_z']:.2f}"
        return text + (f" (+{more} more)" if more else "")
    return "(" + ", ".join(f"{v:.2f}" for v in goal["point"]) + ")"


def run_task(args: argparse.Namespace) -> int:
    """`kinesis eval --task TASK`: success rate over a seeded goal set."""
    from rich.console import Console
    from rich.table import Table

    from kinesis_tasks.evaluation import evaluate_task, summarize_tasks
    from kinesis_tasks.imitation import ImitationConfig
    from kinesis_tasks.task_env import METRICS, check_task, time_limit

    task = check_task(args.task)
    factory = _policy_factory(args)
    if args.goals < 1:
        raise ValueError(f"--goals must be >= 1, got {args.goals}")
    embodiment = embodiment_of(args)
    config = ImitationConfig.default(embodiment=embodiment)
    console = Console()
    console.print(f"policy: {factory.description}; task {task}; embodiment {embodiment}; {args.goals} goals "
                  f"of seed {args.seed}; time limit {time_limit(task, args.max_time):g} s")
    progress, advance = _progress(console, args.goals)
    with progress:
        results = evaluate_task(task, factory, goals=args.goals, seed=args.seed, config=config,
                                max_time=args.max_time, workers=args.workers, on_result=advance)
    summary = summarize_tasks(results)
    metric = METRICS[task]

    table = Table(title=f"{factory.description} on {task}, seed {args.seed}")
    for column in ("#", "goal", "success", "outcome", "time (s)", "to success (s)", METRIC_COLUMNS[metric], "return"):
        table.add_column(column, justify="left" if column in ("goal", "outcome") else "right")
    for r in results:
        table.add_row(str(r.index), describe_goal(r.goal), "yes" if r.success else "[red]no[/]", r.outcome,
                      f"{r.time_s:.2f}", "-" if r.time_to_success_s is None else f"{r.time_to_success_s:.2f}",
                      f"{r.metric:.2f}", f"{r.episode_return:.2f}")
    table.add_section()
    mean_time = summary["mean_time_to_success_s"]
    table.add_row("", "overall", f"{100 * summary['success_rate']:.1f}%", "", f"{summary['mean_episode_s']:.2f}",
                  "-" if mean_time is None else f"{mean_time:.2f}", f"{summary[f'mean_{metric}']:.2f}",
                  f"{summary['mean_return']:.2f}")
    console.print(table)
    _write_json(console, args.json, {
        "task": task,
        "policy": factory.description,
        "checkpoint": getattr(factory, "path", None),
        "bundled": getattr(factory, "bundled", False),
        "embodiment": embodiment,
        "goals": args.goals,
        "seed": args.seed,
        "max_time_s": time_limit(task, args.max_time),
        "workers": args.workers,
        "summary": summary,
        "per_goal": [r.to_dict() for r in results],
    })
    return 0

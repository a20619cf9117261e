"""`kinesis train expert|moe|pipeline` and `kinesis mine`: offline PPO training of KINESIS policies.

`kinesis train --task reach|directional|kick --init-from CKPT --name N` fine-tunes an imitation checkpoint
on a downstream task (same as `kinesis train expert --task ...`; the kick runs the legs_back soccer scene).

Runs live under RUNS/NAME (default runs/NAME): config.yaml, model.pth (latest), model_<epoch>.pth, best.pth
and TensorBoard events (`tensorboard --logdir runs`). --resume continues from model.pth with the run's
config.yaml (flags given on the command line override it); Ctrl-C saves model.pth before exiting.
--dry-run builds everything and runs one tiny epoch. See docs/training.md.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path


def _add_common(parser: argparse.ArgumentParser, *, name_required: bool = True) -> None:
    parser.add_argument("--name", required=name_required, help="run name: the run folder is RUNS/NAME")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="folder of all runs (default runs)")
    parser.add_argument("--config", default=None,
                        help="preset (paper, cpu) or YAML file (default: cpu, or the run's config.yaml with --resume)")
    parser.add_argument("--motions", default=None, help="training motions LIBRARY[:SPLIT] (default default:train)")
    parser.add_argument("--embodiment", default=None, help="legs, legs_abs, legs_back or an MJCF path")
    parser.add_argument("--muscle-condition", choices=("none", "fatigue"), default=None, help="muscle condition")
    parser.add_argument("--sampler", choices=("inprocess", "mp", "ray"), default=None,
                        help="rollout sampler (default from the config: mp)")
    parser.add_argument("--workers", type=int, default=None, help="sampler workers (0: one per CPU core)")
    parser.add_argument("--envs-per-worker", type=int, default=None, help="envs stepped together by each worker")
    parser.add_argument("--ray-address", default=None, help="Ray cluster address for --sampler ray")
    parser.add_argument("--epochs", type=int, default=None, help="total epochs to train to")
    parser.add_argument("--seed", type=int, default=None, help="seed of envs and action noise")
    parser.add_argument("--device", default=None, help="torch device of the PPO update (cpu, cuda)")
    parser.add_argument("--resume", action="store_true", help="continue from RUNS/NAME/model.pth")
    parser.add_argument("--dry-run", action="store_true", help="build everything and run one tiny epoch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_expert(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The flags of an expert run (also those of `kinesis train --task ...`)."""
    _add_common(parser, name_required=required)
    parser.add_argument("--task", default=None, metavar="TASK",
                        help="imitation (default) or a downstream task to fine-tune on: reach, directional, kick")
    parser.add_argument("--init-from", default=None,
                        help="start from this checkpoint (an imitation policy for a task, or an official model.pth)")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train policies with PPO (expert, moe, pipeline; --task TASK)",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_expert(train, required=False)  # `kinesis train --task reach ...` without a KIND: an expert run
    train.set_defaults(func=run_task)
    kinds = train.add_subparsers(dest="train_kind", metavar="KIND", required=False)
    expert = kinds.add_parser("expert", help="train one expert (Gaussian or Lattice actor), optionally on --task")
    _add_expert(expert, required=True)
    expert.set_defaults(func=run_expert)
    moe = kinds.add_parser("moe", help="train a MoE gate over frozen experts DIR_PREFIX*")
    _add_common(moe)
    moe.add_argument("--experts", required=True, help="folder prefix: every DIR_PREFIX* folder with a model.pth")
    moe.set_defaults(func=run_moe)
    pipeline = kinds.add_parser("pipeline", help="negative-mining loop: experts on failed motions, then a MoE")
    _add_common(pipeline)
    pipeline.add_argument("--max-experts", type=int, default=3, help="stop after this many experts (default 3)")
    pipeline.add_argument("--stop-when-failed-below", type=int, default=1,
                          help="stop when fewer motions than this fail (default 1: none fail)")
    pipeline.set_defaults(func=run_pipeline)

    curves = kinds.add_parser("curves", help="plot learning curves of runs (metrics.jsonl) to a PNG")
    curves.add_argument("runs", nargs="+", metavar="RUN[=LABEL]",
                        help="run folder or metrics.jsonl, optionally labelled: runs/walker=walker")
    curves.add_argument("--out", type=Path, default=Path("curves.png"), help="PNG to write (default curves.png)")
    curves.add_argument("--window", type=int, default=20, help="moving-average window in epochs (default 20)")
    curves.set_defaults(func=run_curves)

    mine = subparsers.add_parser("mine", help="evaluate an expert, write its failed motions as a new library")
    mine.add_argument("--expert", type=Path, required=True, help="run folder (with model.pth) or checkpoint file")
    mine.add_argument("--motions", default=None,
                      help="LIBRARY[:SPLIT] to evaluate (default: the expert run's training set, else default:train)")
    mine.add_argument("--out", type=Path, default=None, help="library of failed motions (default EXPERT/mined)")
    mine.add_argument("--embodiment", default=None, help="embodiment (default: the expert run's)")
    mine.add_argument("--muscle-condition", choices=("none", "fatigue"), default=None, help="muscle condition")
    mine.add_argument("--workers", type=int, default=1, help="evaluation processes (default 1; same results)")
    mine.set_defaults(func=run_mine)


def _imitation_overrides(args: argparse.Namespace) -> dict:
    from kinesis_tasks.motions import parse_library_spec

    changes = {}
    if args.motions is not None:
        changes["motions"], changes["split"] = parse_library_spec(args.motions)
    if args.embodiment is not None:
        changes["embodiment"] = args.embodiment
    if args.muscle_condition is not None:
        changes["muscle_condition"] = args.muscle_condition
    return changes


def build_config(args: argparse.Namespace, **fixed):
    """The run's TrainConfig: --config (or the run's config.yaml on --resume), then the flags given."""
    from kinesis_training.config import load_config

    run_config = args.runs / args.name / "config.yaml"
    if args.config is not None:
        config = load_config(args.config)
    elif args.resume and run_config.is_file():
        config = load_config(run_config)
    else:
        config = load_config("cpu")
    flags = {"sampler": args.sampler, "workers": args.workers, "envs_per_worker": args.envs_per_worker,
             "ray_address": args.ray_address, "epochs": args.epochs, "seed": args.seed, "device": args.device}
    changes = {k: v for k, v in flags.items() if v is not None}
    imitation = _imitation_overrides(args)
    if fixed.get("task", config.task) == "kick" and args.embodiment is None:
        imitation["embodiment"] = "legs_back"  # the soccer scene's kicker (kinesis_tasks.task_env.KICK_EMBODIMENT)
    if imitation:
        changes["imitation"] = imitation
    return config.replace(**changes, **fixed)


def _train(config, args: argparse.Namespace) -> int:
    from kinesis_training.trainer import train

    run_dir = args.runs / args.name
    scalars = train(config, run_dir, resume=args.resume, dry_run=args.dry_run, progress=not args.no_progress)
    print(f"run {run_dir}: epoch scalars " + ", ".join(
        f"{k} {scalars[k]:.3g}" for k in ("episode/return", "episode/success_rate", "perf/samples_per_s") if k in scalars))
    return 0


def run_expert(args: argparse.Namespace) -> int:
    fixed = {"init_from": args.init_from} if args.init_from else {}
    if args.task is not None:
        fixed["task"] = args.task
    config = build_config(args, **fixed)
    if config.actor == "moe":
        raise ValueError("kinesis train expert: the config's actor is 'moe'; use `kinesis train moe`")
    if config.task != "imitation" and not config.init_from and not args.resume:
        print(f"kinesis train: warning: task {config.task!r} without --init-from trains from scratch; "
              f"KINESIS fine-tunes an imitation policy (--init-from runs/NAME/best.pth)", file=sys.stderr)
    return _train(config, args)


def run_task(args: argparse.Namespace) -> int:
    """`kinesis train --task TASK ...` (no KIND): an expert run on the task."""
    if args.task is None:
        raise ValueError("choose a KIND (expert, moe, pipeline) or a downstream --task (reach, directional, kick)")
    if args.name is None:
        raise ValueError("--task: --name is required")
    return run_expert(args)


def expert_dirs(prefix: str) -> list[Path]:
    """Folders DIR_PREFIX* holding a model.pth, in natural order (expert_2 before expert_10)."""
    prefix_path = Path(prefix)
    parent = prefix_path.parent
    candidates = [p for p in parent.glob(prefix_path.name + "*") if (p / "model.pth").is_file()] if parent.is_dir() else []
    if not candidates:
        raise ValueError(f"--experts {prefix}: no folders {prefix}* holding a model.pth")
    natural = lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]  # noqa: E731
    return sorted(candidates, key=natural)


def run_moe(args: argparse.Namespace) -> int:
    experts = tuple(str(p / "model.pth") for p in expert_dirs(args.experts))
    print(f"experts: {', '.join(experts)}")
    return _train(build_config(args, actor="moe", experts=experts, init_from=None), args)


def run_pipeline(args: argparse.Namespace) -> int:
    from kinesis_training.mining import run_pipeline as pipeline
    from kinesis_training.trainer import dry_run_config

    config = build_config(args)
    if config.task != "imitation":
        raise ValueError(f"pipeline: negative mining runs on motions; the config's task is {config.task!r}")
    if args.dry_run:
        config = dry_run_config(config)

    def report(stage) -> None:
        failed = stage.mining.failed
        print(f"{stage.policy}: {len(stage.mining.results) - len(failed)}/{len(stage.mining.results)} motions "
              f"succeeded; failed: {', '.join(failed) or 'none'}")

    stages = pipeline(config, args.runs / args.name, max_experts=args.max_experts,
                      stop_when_failed_below=args.stop_when_failed_below, progress=not args.no_progress, on_stage=report)
    print(f"pipeline {args.runs / args.name}: {len(stages)} round(s); final policy {stages[-1].policy}")
    return 0


def run_mine(args: argparse.Namespace) -> int:
    from kinesis_tasks.imitation import ImitationConfig

    from kinesis_training.config import load_config
    from kinesis_training.mining import mine

    run_config = args.expert / "config.yaml"
    config = load_config(run_config).imitation if run_config.is_file() else ImitationConfig.default()
    changes = _imitation_overrides(args)
    config = replace(config, **changes)
    out = args.out or (args.expert if args.expert.is_dir() else args.expert.parent) / "mined"
    result = mine(args.expert, config, out, workers=args.workers)
    print(f"{len(result.results) - len(result.failed)}/{len(result.results)} motions succeeded; "
          f"{len(result.failed)} failed" + (f" -> {result.library}" if result.library else ""))
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from kinesis_training.curves import plot_curves

    runs = {}
    for item in args.runs:
        source, _, label = item.partition("=")
        if not Path(source).exists():
            raise FileNotFoundError(f"no run folder or metrics file {source}")
        runs[label or Path(source).name] = source
    print(f"curves: {plot_curves(runs, args.out, window=args.window)}")
    return 0

"""Distil expert policies into one student by DAgger: each motion has its teacher, the student acts.

Usage:
    python scripts/distill_experts.py --student kinesis_tasks/data/policies/legs/model.pth \\
        --teacher runs/spec/best_eval.pth=gaitanalysis_start,gaitanalysis_stop,myosuite_start \\
        --motions runs/v2.npz:train --iterations 10 --states 20000 --out runs/distill

Why (docs/training.md, "distilling a transition specialist"): PPO on mixed data never learned the start and stop
clips that a specialist learns alone; a learned mixture-of-experts gate flips between experts. Distillation
trains one network by regression instead, where the skills do not compete for a gradient sign.

Each iteration rolls out the current student (mean action plus ``--noise``) from random frames of the first half
of random motions (a ``--teacher-share`` of the episodes on the teachers' motions), until the 0.5 m termination
or the motion's end; labels every state with its motion's teacher's mean action (``--student``'s checkpoint
teaches the motions no ``--teacher`` names), clipped to +-1.5; adds them to the data of all earlier iterations;
and fits the student (Huber loss on the mean action, clipped to +-1.5 in value with the gradient passed through,
``--epochs`` passes of Adam). The student starts as ``--student`` and keeps its observation normalizer; each
teacher normalizes with its own. Writes ``model_<iteration>.pth`` (the student with ``--student``'s critic) and
``log.jsonl`` (loss and, unless ``--no-eval``, ``kinesis eval`` over ``--eval-starts`` starts of the motions) and
its plot ``curve.png``.
One process, one core: ~30 s per 20,000 states with the evaluation.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

ACTION_LIMIT = 1.5
"""Teacher labels and the student's mean are compared clipped to this (the env clips actions to +-1)."""


def parse_teacher(text: str) -> tuple[str, list[str]]:
    checkpoint, _, motions = text.partition("=")
    names = [name for name in motions.split(",") if name]
    if not checkpoint or not names:
        raise argparse.ArgumentTypeError(f"--teacher CHECKPOINT=MOTION[,MOTION...] expected, got {text!r}")
    return checkpoint, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True, help="the student's initial checkpoint; it also teaches the "
                                                         "motions no --teacher names")
    parser.add_argument("--teacher", type=parse_teacher, action="append", default=[],
                        metavar="CKPT=MOTION[,...]", help="a teacher and the motions it teaches (repeatable)")
    parser.add_argument("--motions", required=True, metavar="LIB[:split]", help="the motions to distil on")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--states", type=int, default=20000, help="states collected per iteration")
    parser.add_argument("--teacher-share", type=float, default=0.5,
                        help="share of the episodes on the --teacher motions (default 0.5)")
    parser.add_argument("--noise", type=float, default=0.05, help="std of the noise added to the student's action")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=3, help="passes over all the data per iteration")
    parser.add_argument("--eval-starts", type=int, default=4)
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation after each iteration")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.iterations, args.states, args.epochs) < 1 or not 0.0 <= args.teacher_share <= 1.0:
        parser.error("--iterations, --states and --epochs must be >= 1 and --teacher-share within [0, 1]")
    run(args)


def run(args: argparse.Namespace) -> None:
    import torch

    from kinesis_tasks.evaluation import evaluate, evaluation_config
    from kinesis_tasks.imitation import ImitationEnv
    from kinesis_tasks.metrics import summarize
    from kinesis_tasks.motions import load_library, parse_library_spec
    from kinesis_training.checkpoint import load_checkpoint, save_checkpoint
    from kinesis_training.curves import plot_distillation
    from kinesis_training.inference import CheckpointPolicy

    torch.set_num_threads(1)
    library, split = parse_library_spec(args.motions)
    motions = load_library(library, split=split)
    student_checkpoint = load_checkpoint(args.student)
    student, critic = student_checkpoint.policy, student_checkpoint.critic
    teachers, teacher_of = [copy.deepcopy(student)], {}  # a frozen copy: the student changes
    for checkpoint, names in args.teacher:
        unknown = sorted(set(names) - set(motions))
        if unknown:
            raise SystemExit(f"--teacher {checkpoint}: motions {unknown} are not in {args.motions}")
        teachers.append(load_checkpoint(checkpoint).policy)
        teacher_of.update({name: len(teachers) - 1 for name in names})
    taught = sorted(teacher_of)
    others = [name for name in motions if name not in teacher_of]
    env = ImitationEnv(evaluation_config(motions=library, split=split, termination_distance=0.5))
    rng = np.random.default_rng(args.seed)
    optimizer = torch.optim.Adam(student.parameters(), lr=args.lr)
    observations, labels = [], []
    args.out.mkdir(parents=True, exist_ok=True)
    log = (args.out / "log.jsonl").open("a")

    def collect() -> tuple[np.ndarray, np.ndarray]:
        states, owners = [], []
        while len(states) < args.states:
            pool = taught if taught and (not others or rng.random() < args.teacher_share) else others
            name = str(rng.choice(pool))
            obs, _ = env.reset(seed=args.seed, options={"motion": name,
                                                         "start": int(rng.integers(0, motions[name].num_frames // 2))})
            done = False
            while not done:
                states.append(obs)
                owners.append(teacher_of.get(name, 0))
                with torch.no_grad():
                    action = student.mean(torch.as_tensor(obs[None]))[0].numpy()
                action = action + args.noise * rng.standard_normal(action.shape).astype(np.float32)
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
        states, owners = np.array(states, dtype=np.float32), np.array(owners)
        targets = np.empty((len(states), env.action_space.shape[0]), dtype=np.float32)
        with torch.no_grad():
            for index, teacher in enumerate(teachers):
                mine = owners == index
                if mine.any():
                    targets[mine] = teacher.mean(torch.as_tensor(states[mine])).clamp(-ACTION_LIMIT, ACTION_LIMIT).numpy()
        return states, targets

    def fit() -> float:
        x, y = torch.as_tensor(np.concatenate(observations)), torch.as_tensor(np.concatenate(labels))
        student.train()
        for _ in range(args.epochs):
            order, total = torch.randperm(len(x)), 0.0
            for i in range(0, len(x), 1024):
                batch = order[i:i + 1024]
                mean = student.unclipped_mean(x[batch])
                mean = mean + (mean.clamp(-ACTION_LIMIT, ACTION_LIMIT) - mean).detach()
                loss = torch.nn.functional.smooth_l1_loss(mean, y[batch], beta=0.1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
        student.eval()
        return total / len(x)

    for iteration in range(1, args.iterations + 1):
        started = time.time()
        states, targets = collect()
        observations.append(states)
        labels.append(targets)
        record = {"iteration": iteration, "states": int(sum(len(s) for s in observations)), "loss": fit()}
        path = args.out / f"model_{iteration}.pth"
        save_checkpoint(path, student, critic, epoch=iteration, frame=record["states"])
        if not args.no_eval:
            results = evaluate(motions, CheckpointPolicy(str(path)), starts=args.eval_starts)
            summary = summarize(results)
            record.update({"eval/success_rate": summary["success_rate"], "eval/mpjpe_mm": summary["mpjpe_mm"],
                           "eval/taught_success": float(np.mean([r.success for r in results if r.motion in teacher_of]
                                                                or [np.nan])),
                           "eval/other_success": float(np.mean([r.success for r in results
                                                                if r.motion not in teacher_of] or [np.nan]))})
        record["wall_s"] = round(time.time() - started, 1)
        log.write(json.dumps(record) + "\n")
        log.flush()
        plot_distillation(args.out / "log.jsonl", args.out / "curve.png")
        print(" ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()), flush=True)


if __name__ == "__main__":
    main()

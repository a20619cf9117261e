"""The PPO training loop of one run: collect >= ``min_batch_size`` samples, update, log, checkpoint.

A run lives in one folder (``runs/NAME``)::

    config.yaml            the complete TrainConfig
    model.pth              latest checkpoint (original KINESIS layout), written after every epoch
    model_<epoch>.pth      every ``save_every`` epochs
    best.pth, best.json    highest mean episode return so far (and its epoch)
    best_eval.pth, .json   with ``eval_every``: the best evaluated checkpoint (success, then MPJPE; its epoch)
    evals/<epoch>.json     with ``eval_every``: each evaluation, per motion (as ``kinesis eval --json``)
    metrics.jsonl          one line per epoch: epoch, samples, wall_s (training time, resumes included), scalars
    events.out.tfevents.*  TensorBoard scalars (see kinesis_training.logging)

Every epoch prints one line (epoch, samples, samples/s, episode length, return, MPJPE, success rate,
ETA) above a progress bar (the bar only on a terminal).

``Trainer(config, run_dir, resume=True)`` continues from ``model.pth`` (weights, optimizer states, epoch,
frame). Ctrl-C or SIGTERM (``kill PID``, the way to stop a run started in the background, where the shell
ignores SIGINT) writes ``model.pth`` with the current weights (epoch = the last completed one) and
raises KeyboardInterrupt. Fresh runs are deterministic given ``seed`` for the in-process sampler and for 'mp' with a
fixed worker count (both give the same batches); resumed runs reseed their workers from (seed, epoch).

``config.task`` picks the env: ``imitation`` (``VectorImitationEnv``) or a downstream task (``VectorTaskEnv``
of ``kinesis_tasks.task_env``), normally fine-tuned from an imitation checkpoint (``init_from``: weights and
observation normalizer; its sizes must match the task env's). The samplers count an episode as a success
when it reaches its time limit (imitation: the end of the motion); for a task the trainer reports instead
the env's ``episode_success`` (goal reached; directional: tracked to the time limit) as
``episode/success_rate``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from kinesis_tasks.imitation import ImitationConfig, ImitationEnv
from kinesis_tasks.metrics import summarize
from kinesis_tasks.motions import load_library, parse_library_spec
from kinesis_tasks.symmetry import MirrorMap
from kinesis_tasks.task_env import VectorTaskEnv
from kinesis_tasks.vector_env import VectorImitationEnv

from kinesis_training.checkpoint import infer_spec, load_checkpoint, load_moe_from_experts, save_checkpoint
from kinesis_training.config import TrainConfig, save_config, to_dict
from kinesis_training.hard_motions import eval_scalars, evaluate_checkpoint, failure_weights, is_better, weights_line
from kinesis_training.logging import MetricsFile, TrainLogger, epoch_line
from kinesis_training.networks import Critic
from kinesis_training.policies import Actor, MoEActor
from kinesis_training.ppo import PPO, RolloutBatch
from kinesis_training.presets import build_actor, build_critic, get_preset
from kinesis_training.samplers import EnvFactory, EpisodeStats, make_sampler

DRY_RUN_BATCH = 64
"""Samples of the single epoch of a dry run."""


@dataclass(frozen=True)
class ImitationEnvFactory:
    """Picklable ``make_env(num_envs) -> VectorImitationEnv`` for the samplers (config kept as plain data)."""

    config: dict[str, Any]
    """``to_dict(ImitationConfig)``."""

    @staticmethod
    def of(config: ImitationConfig) -> ImitationEnvFactory:
        return ImitationEnvFactory(to_dict(config))

    def __call__(self, num_envs: int) -> VectorImitationEnv:
        return VectorImitationEnv(num_envs, ImitationConfig.from_dict(self.config))


@dataclass(frozen=True)
class TaskEnvFactory:
    """Picklable ``make_env(num_envs) -> VectorTaskEnv`` of a downstream task (config kept as plain data)."""

    task: str
    config: dict[str, Any]
    """``to_dict(ImitationConfig)``: embodiment, control mode, muscle condition, head tracking."""

    def __call__(self, num_envs: int) -> VectorTaskEnv:
        return VectorTaskEnv(num_envs, self.task, ImitationConfig.from_dict(self.config))


def env_factory(config: TrainConfig) -> EnvFactory:
    """The samplers' env factory of a run: imitation or its downstream task."""
    if config.task == "imitation":
        return ImitationEnvFactory.of(config.imitation)
    return TaskEnvFactory(config.task, to_dict(config.imitation))


def env_sizes(make_env: EnvFactory) -> tuple[int, int]:
    """(observation size, action size) of the envs ``make_env`` builds."""
    env = make_env(1)
    sizes = env.single_observation_space.shape[0], env.single_action_space.shape[0]
    env.close()
    return sizes


def run_mirror(config: TrainConfig) -> MirrorMap | None:
    """The embodiment's left-right mirror when ``ppo.mirror`` or ``ppo.symmetry_weight`` is on (imitation runs only)."""
    if not config.ppo.needs_mirror:
        return None
    if config.task != "imitation":
        raise ValueError(f"ppo.mirror and ppo.symmetry_weight are supported for imitation runs, not task {config.task!r}")
    return ImitationEnv(config.imitation).mirror_map()


def task_success_rate(stats: EpisodeStats) -> float:
    """Fraction of a collection's completed episodes whose last step reported ``episode_success`` (NaN if none)."""
    return stats.info_sums.get("episode_success", 0.0) / len(stats.returns) if stats.returns else math.nan


def eval_library(config: TrainConfig) -> dict[str, Any]:
    """The motions the run's evaluations use: ``eval_motions`` (``LIB[:split]``) or the training motions."""
    if config.eval_motions:
        return load_library(*parse_library_spec(config.eval_motions))
    return load_library(config.imitation.motions, split=config.imitation.split)


def build_networks(config: TrainConfig, obs_dim: int, action_dim: int) -> tuple[Actor, Critic]:
    """Fresh networks of a run: MoE over ``experts`` (critic from expert 0), ``init_from``, or the preset."""
    if config.actor == "moe":
        policy = load_moe_from_experts(config.experts, get_preset(config.network).gate_units,
                                       freeze_expert_norms=config.freeze_expert_norms)
        critic = load_checkpoint(config.experts[0], obs_dim=obs_dim, action_dim=action_dim).critic
        if policy.obs_dim != obs_dim or policy.action_dim != action_dim:
            raise ValueError(f"experts {config.experts[0]}...: sizes {policy.obs_dim}/{policy.action_dim} differ from "
                             f"the env's {obs_dim}/{action_dim}")
        return policy, critic
    if config.init_from:
        try:
            ckpt = load_checkpoint(config.init_from, obs_dim=obs_dim, action_dim=action_dim)
        except ValueError as error:
            if config.task == "imitation":
                raise
            raise ValueError(f"{error}. Task {config.task!r} on embodiment {config.imitation.embodiment!r} fine-tunes "
                             f"an imitation policy of that embodiment ({obs_dim} observations, {action_dim} actions)"
                             ) from None
        return ckpt.policy, ckpt.critic
    preset = get_preset(config.network)
    if config.log_std_init is not None:
        preset = replace(preset, log_std_init=config.log_std_init)
    return build_actor(config.actor, obs_dim, action_dim, preset), build_critic(obs_dim, preset)


class Trainer:
    """One run: networks, PPO, sampler, logger; ``train()`` runs the remaining epochs."""

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False,
                 make_env: EnvFactory | None = None, progress: bool = True) -> None:
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.make_env = make_env if make_env is not None else env_factory(config)
        self.checkpoint_path = self.run_dir / "model.pth"
        obs_dim, action_dim = env_sizes(self.make_env)
        optimizer_states: tuple[Any, Any] = ({}, {})
        if resume:
            if not self.checkpoint_path.is_file():
                raise ValueError(f"--resume: no checkpoint {self.checkpoint_path} to resume from")
            ckpt = load_checkpoint(self.checkpoint_path, obs_dim=obs_dim, action_dim=action_dim)
            policy, critic, self.epoch, self.frame = ckpt.policy, ckpt.critic, ckpt.epoch, ckpt.frame
            optimizer_states = (ckpt.optimizer_policy, ckpt.optimizer_value)
            if isinstance(policy, MoEActor):
                policy.freeze_expert_norms = config.freeze_expert_norms
        else:
            if self.checkpoint_path.exists():
                raise ValueError(f"run folder {self.run_dir} already holds model.pth; pass --resume or another --name")
            torch.manual_seed(config.seed)
            policy, critic = build_networks(config, obs_dim, action_dim)
            self.epoch, self.frame = 0, 0
        self.spec = infer_spec(policy.state_dict(), critic.state_dict())
        device = torch.device(config.device)
        self.policy, self.critic = policy.to(device), critic.to(device)
        self.ppo = PPO(self.policy, self.critic, config.ppo, *optimizer_states, mirror=run_mirror(config))
        self.best = self._read_best()
        self.eval_motions = eval_library(config) if config.eval_every else {}
        best_eval = self.run_dir / "best_eval.json"
        self.best_eval = json.loads(best_eval.read_text()) if resume and best_eval.is_file() else None
        self.eval_note = ""
        self.metrics = MetricsFile(self.run_dir / "metrics.jsonl", resume=resume, epoch=self.epoch)
        save_config(config, self.run_dir / "config.yaml")

    def _read_best(self) -> float:
        path = self.run_dir / "best.json"
        return json.loads(path.read_text())["episode/return"] if path.is_file() else -math.inf

    def _sampler_seed(self) -> int:
        if self.epoch == 0:
            return self.config.seed
        return int(np.random.SeedSequence([self.config.seed, self.epoch]).generate_state(1)[0] >> 1)

    def save(self, path: Path | None = None) -> Path:
        """Writes the current state (original layout) to ``path`` (default ``model.pth``)."""
        path = path or self.checkpoint_path
        save_checkpoint(path, self.policy, self.critic, epoch=self.epoch, frame=self.frame,
                        optimizer_policy=self.ppo.optimizer_policy, optimizer_value=self.ppo.optimizer_value)
        return path

    def train(self, epochs: int | None = None) -> dict[str, float]:
        """Runs epochs ``epoch + 1 .. epochs`` (default ``config.epochs``); returns the last epoch's scalars."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        config, last = self.config, epochs if epochs is not None else self.config.epochs
        sampler = make_sampler(config.sampler, self.make_env, self.spec, workers=config.num_workers,
                               envs_per_worker=config.envs_per_worker, seed=self._sampler_seed(),
                               ray_address=config.ray_address,
                               mean_clip=config.ppo.mean_clip if config.ppo.sample_clipped_mean else None)
        logger = TrainLogger(self.run_dir, wandb=config.wandb, name=self.run_dir.name, config=to_dict(config))
        scalars: dict[str, float] = {}
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        first_epoch, started = self.epoch, time.perf_counter()
        try:
            with _sigterm_interrupts(), Progress(*columns, disable=not self.progress, transient=True) as bar:
                task = bar.add_task(self.run_dir.name, total=last, completed=self.epoch)
                if config.motion_sampling == "failures" and self.checkpoint_path.is_file():
                    self._evaluate(sampler)  # weights for the resumed run's first epochs
                    self._note(bar)
                while self.epoch < last:
                    scalars = self._epoch(sampler)
                    logger.log(scalars, self.epoch)
                    bar.update(task, completed=self.epoch)
                    if self.progress:
                        per_epoch = (time.perf_counter() - started) / (self.epoch - first_epoch)
                        bar.console.print(epoch_line(self.epoch, last, self.frame, scalars,
                                                     eta_s=per_epoch * (last - self.epoch)),
                                          highlight=False, soft_wrap=True)
                        self._note(bar)
        except KeyboardInterrupt:
            self.save()
            raise
        finally:
            sampler.close()
            logger.close()
        return scalars

    def _epoch(self, sampler) -> dict[str, float]:
        start = time.perf_counter()
        rollout = sampler.collect(self.policy, self.config.min_batch_size)
        sampled = time.perf_counter()
        stats = self.ppo.update(RolloutBatch(
            obs=torch.from_numpy(rollout.obs), actions=torch.from_numpy(rollout.actions),
            rewards=torch.from_numpy(rollout.rewards), masks=torch.from_numpy(rollout.masks),
            log_probs=torch.from_numpy(rollout.log_probs), cut_index=torch.from_numpy(rollout.cut_index),
            cut_obs=torch.from_numpy(rollout.cut_obs),
        ))
        updated = time.perf_counter()
        self.epoch += 1
        elapsed = updated - start
        self.frame += len(rollout)
        scalars = {
            **rollout.stats.summary(),
            **{f"ppo/{k}": v for k, v in stats.items()},
            "perf/samples_per_s": len(rollout) / (sampled - start),
            "perf/sample_s": sampled - start,
            "perf/update_s": updated - sampled,
            "perf/epoch_samples_per_s": len(rollout) / (updated - start),
            "perf/batch_size": float(len(rollout)),
        }
        if self.config.task != "imitation":
            scalars["episode/success_rate"] = task_success_rate(rollout.stats)
            scalars.pop("step/episode_success", None)
        self.save()
        if self.config.save_every and self.epoch % self.config.save_every == 0:
            self.save(self.run_dir / f"model_{self.epoch}.pth")
        episode_return = scalars["episode/return"]
        if math.isfinite(episode_return) and episode_return > self.best:
            self.best = episode_return
            self.save(self.run_dir / "best.pth")
            (self.run_dir / "best.json").write_text(json.dumps({"epoch": self.epoch, "episode/return": episode_return}))
        if self.config.eval_every and self.epoch % self.config.eval_every == 0:
            evaluated = time.perf_counter()
            scalars.update(self._evaluate(sampler))
            elapsed += time.perf_counter() - evaluated
        self.metrics.append(self.epoch, self.frame, elapsed, scalars)
        return scalars

    def _evaluate(self, sampler) -> dict[str, float]:
        """Evaluates ``model.pth`` on the evaluation motions; keeps ``best_eval.pth``; sets the sampling weights."""
        results = evaluate_checkpoint(self.checkpoint_path, self.eval_motions, self.config.imitation,
                                      self.config.eval_starts)
        scalars = eval_scalars(results)
        report = {"epoch": self.epoch, "samples": self.frame, "summary": summarize(results),
                  "per_motion": [r.to_dict() for r in results]}
        (self.run_dir / "evals").mkdir(exist_ok=True)
        (self.run_dir / "evals" / f"{self.epoch}.json").write_text(json.dumps(report))
        self.eval_note = (f"eval: success {scalars['eval/success_rate']:.2f}  mpjpe "
                          f"{scalars['eval/mpjpe_mm']:.0f} mm  coverage {scalars['eval/coverage']:.2f}")
        if is_better(scalars, self.best_eval):
            self.best_eval = {"epoch": self.epoch, **scalars}
            shutil.copyfile(self.checkpoint_path, self.run_dir / "best_eval.pth")
            (self.run_dir / "best_eval.json").write_text(json.dumps(self.best_eval))
            self.eval_note += "  (best: best_eval.pth)"
        if self.config.motion_sampling == "failures":
            weights = failure_weights(results, self.config.sampling_floor)
            sampler.call("set_motion_weights", weights)
            self.eval_note += f"\n  most sampled: {weights_line(weights)}"
        return scalars

    def _note(self, bar) -> None:
        """Prints and clears the pending evaluation note."""
        if self.eval_note and self.progress:
            bar.console.print(self.eval_note, highlight=False, soft_wrap=True)
        self.eval_note = ""


@contextmanager
def _sigterm_interrupts():
    """Within the block, SIGTERM raises KeyboardInterrupt (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def dry_run_config(config: TrainConfig) -> TrainConfig:
    """``config`` shrunk to one tiny epoch (``DRY_RUN_BATCH`` samples, at most 2 workers, 1 PPO epoch)."""
    return replace(config, epochs=1, min_batch_size=DRY_RUN_BATCH, workers=min(config.num_workers, 2),
                   envs_per_worker=1, save_every=0, eval_every=0, motion_sampling="uniform",
                   ppo=replace(config.ppo, opt_epochs=1))


def train(config: TrainConfig, run_dir: str | os.PathLike, *, resume: bool = False, dry_run: bool = False,
          progress: bool = True, make_env: EnvFactory | None = None) -> dict[str, float]:
    """Builds a Trainer and trains to ``config.epochs`` (dry run: one tiny epoch); returns the last scalars."""
    if dry_run:
        config = dry_run_config(config)
    trainer = Trainer(config, run_dir, resume=resume, make_env=make_env, progress=progress)
    if dry_run:
        return trainer.train(trainer.epoch + 1)
    return trainer.train()

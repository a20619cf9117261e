"""Training run configuration: ``TrainConfig`` (per-field docstrings), presets ``paper`` and ``cpu``, YAML io.

A run's complete configuration is written as ``config.yaml`` beside its checkpoints; ``load_config`` reads
it back (or any YAML file of the same shape: keys left out take the defaults of the preset named by its
``preset`` key, ``cpu`` if none). The imitation task settings are ``kinesis_tasks.imitation.ImitationConfig``
and the PPO hyper-parameters ``kinesis_training.ppo.PPOConfig``, nested under ``imitation`` and ``ppo``.
``task`` picks the environment: ``imitation`` (motions) or a downstream task (``kinesis_tasks.task_env``),
which uses the embodiment and muscle settings of ``imitation``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml
from kinesis_tasks.imitation import ImitationConfig
from kinesis_tasks.task_env import TASKS as DOWNSTREAM_TASKS

from kinesis_training.hard_motions import MOTION_SAMPLING
from kinesis_training.ppo import PPOConfig

SamplerKind = Literal["inprocess", "mp", "ray"]
SAMPLERS: tuple[str, ...] = ("inprocess", "mp", "ray")
TRAIN_TASKS: tuple[str, ...] = ("imitation", *DOWNSTREAM_TASKS)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs (one ``config.yaml``)."""

    preset: str = "cpu"
    """Name of the preset this configuration started from (informational; 'paper' or 'cpu')."""
    task: str = "imitation"
    """'imitation' (track motions) or a downstream task 'reach', 'directional', 'kick' (fine-tune with init_from)."""
    seed: int = 0
    """Seed of the worker environments and action noise; same seed + sampler worker count -> same batches."""
    epochs: int = 200
    """Total training epochs (one batch collection + one PPO update each); resume continues up to it."""
    min_batch_size: int = 2048
    """Samples collected per epoch at least (the paper: 51,200); split evenly over workers and their envs."""
    network: str = "small"
    """Network size preset of ``kinesis_training.presets`` ('paper' or 'small')."""
    actor: Literal["gaussian", "lattice", "moe"] = "lattice"
    """Actor kind of an expert run; 'moe' runs are built from ``experts``."""
    log_std_init: float | None = None
    """Initial log std of the exploration noise of a fresh actor (None: the network preset's, 0.0)."""
    experts: tuple[str, ...] = ()
    """MoE runs: expert checkpoint files (``model.pth``), frozen; the gate is trained."""
    freeze_expert_norms: bool = False
    """MoE runs: keep the experts' observation normalizers fixed (the original lets them update)."""
    init_from: str | None = None
    """Checkpoint to start an expert from (e.g. an official KINESIS ``model.pth`` or a previous expert)."""
    sampler: SamplerKind = "mp"
    """Rollout sampler: 'inprocess', 'mp' (multiprocessing worker processes) or 'ray'."""
    workers: int = 2
    """Sampler workers (processes or Ray actors); 0 means one per CPU core."""
    envs_per_worker: int = 1
    """Environments each worker steps as one vector env (one batched policy call per step)."""
    ray_address: str | None = None
    """Ray cluster address for sampler 'ray' (None: start or join a local instance)."""
    device: str = "cpu"
    """Torch device of the PPO update ('cpu', 'cuda'); sampling always runs on CPU."""
    save_every: int = 50
    """Write ``model_<epoch>.pth`` every this many epochs (0: never); ``model.pth`` is written every epoch."""
    eval_every: int = 0
    """Imitation: evaluate the latest checkpoint on the training motions every this many epochs as ``kinesis
    eval`` does (0: never); logs ``eval/*`` and keeps ``best_eval.pth`` (``kinesis_training.hard_motions``)."""
    eval_starts: int = 1
    """Imitation: start frames per motion in those evaluations (1: frame 0, as ``kinesis eval``; K: also K - 1
    frames over its first half, ``kinesis eval --starts K``): a less noisy measure on a small motion set."""
    eval_motions: str | None = None
    """Imitation: ``LIB[:split]`` evaluated instead of the training motions (None: the training motions), e.g.
    ``default:train`` while training on a larger library, so checkpoints of different runs compare."""
    motion_sampling: str = "uniform"
    """Imitation: 'uniform', or 'failures' (after each evaluation, motion m is drawn with weight
    ``sampling_floor + 1 - coverage_m``; needs ``eval_every``)."""
    sampling_floor: float = 0.2
    """Weight of a motion tracked to its end under ``motion_sampling: failures``."""
    wandb: bool = False
    """Also log to Weights & Biases in offline mode (needs ``pip install wandb``)."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyper-parameters."""
    imitation: ImitationConfig = field(default_factory=ImitationConfig.default)
    """Imitation task: embodiment, motion library and split, muscle condition, rewards."""

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.task not in TRAIN_TASKS:
            raise ValueError(f"task must be one of {TRAIN_TASKS}, got {self.task!r}")
        if self.actor not in ("gaussian", "lattice", "moe"):
            raise ValueError(f"actor must be 'gaussian', 'lattice' or 'moe', got {self.actor!r}")
        if self.actor == "moe" and not self.experts:
            raise ValueError("actor 'moe' needs expert checkpoints in 'experts'")
        for name in ("epochs", "min_batch_size", "envs_per_worker"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers < 0 or self.save_every < 0:
            raise ValueError(f"workers and save_every must be >= 0, got {self.workers} and {self.save_every}")
        if self.eval_starts < 1:
            raise ValueError(f"eval_starts must be >= 1, got {self.eval_starts}")
        if self.eval_every < 0 or self.sampling_floor < 0:
            raise ValueError(f"eval_every and sampling_floor must be >= 0, got {self.eval_every} and {self.sampling_floor}")
        if self.motion_sampling not in MOTION_SAMPLING:
            raise ValueError(f"motion_sampling must be one of {MOTION_SAMPLING}, got {self.motion_sampling!r}")
        if self.eval_every and self.task != "imitation":
            raise ValueError(f"eval_every evaluates motion imitation; task {self.task!r} has no motions to evaluate")
        if self.motion_sampling == "failures" and not self.eval_every:
            raise ValueError("motion_sampling 'failures' needs eval_every > 0 (the evaluations give the weights)")
        if self.motion_sampling == "failures" and self.eval_motions:
            raise ValueError("motion_sampling 'failures' weights the training motions by their evaluation; "
                             "it cannot be combined with eval_motions")

    @property
    def num_workers(self) -> int:
        """``workers`` with 0 resolved to the CPU count."""
        return self.workers or os.cpu_count() or 1

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``; ``imitation`` and ``ppo`` may be given as partial mappings."""
        for name, cls in (("imitation", ImitationConfig), ("ppo", PPOConfig)):
            if isinstance(changes.get(name), Mapping):
                changes[name] = _sub_config(cls, {**to_dict(getattr(self, name)), **changes[name]}, name)
        return dataclasses.replace(self, **changes)


def paper_preset() -> TrainConfig:
    """The published KINESIS scale: paper network, Lattice exploration, 51,200 samples per epoch."""
    return TrainConfig(
        preset="paper", epochs=5000, min_batch_size=51_200, network="paper", actor="lattice",
        workers=0, envs_per_worker=1, save_every=100,
    )


def cpu_preset() -> TrainConfig:
    """A laptop-sized run: small network, 2,048 samples per epoch on 2 worker processes."""
    return TrainConfig(preset="cpu")


PRESETS = {"paper": paper_preset, "cpu": cpu_preset}


def to_dict(config: Any) -> Any:
    """Plain YAML-ready data (dicts, lists, scalars) of a (nested) dataclass config."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in fields(config)}
    if isinstance(config, Mapping):
        return {str(k): to_dict(v) for k, v in config.items()}
    if isinstance(config, (tuple, list)):
        return [to_dict(v) for v in config]
    return config


def _sub_config(cls: type, values: Mapping[str, Any], where: str) -> Any:
    if cls is ImitationConfig:
        return ImitationConfig.from_dict(values)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    return cls(**values)


def from_dict(values: Mapping[str, Any], where: str = "config") -> TrainConfig:
    """TrainConfig from a mapping: keys left out take the values of preset ``values['preset']`` (default cpu)."""
    preset = values.get("preset", "cpu")
    if preset not in PRESETS:
        raise ValueError(f"{where}: unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    base = PRESETS[preset]()
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
    changes = dict(values)
    if "experts" in changes:
        changes["experts"] = tuple(str(p) for p in changes["experts"] or ())
    for name, cls in (("imitation", ImitationConfig), ("ppo", PPOConfig)):
        if name in changes:
            if not isinstance(changes[name], Mapping):
                raise ValueError(f"{where}: '{name}' must be a mapping")
            changes[name] = _sub_config(cls, {**to_dict(getattr(base, name)), **changes[name]}, f"{where}: {name}")
    return dataclasses.replace(base, **changes)


def load_config(preset_or_path: str | os.PathLike) -> TrainConfig:
    """A preset by name ('paper', 'cpu') or a YAML file (see ``from_dict``)."""
    if str(preset_or_path) in PRESETS:
        return PRESETS[str(preset_or_path)]()
    path = Path(preset_or_path)
    if not path.is_file():
        raise ValueError(f"--config {preset_or_path}: neither a preset ({sorted(PRESETS)}) nor a YAML file")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return from_dict(values, where=str(path))


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Writes ``config`` as YAML (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_suffix(".yaml.partial")
    staged.write_text("# kinesis training run configuration (kinesis_training.config.TrainConfig)\n"
                      + yaml.safe_dump(to_dict(config), sort_keys=False))
    staged.replace(path)
    return path

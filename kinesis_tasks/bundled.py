"""The bundled policies, and the one resolution of a ``checkpoint`` argument every entry point uses.

A bundled policy is a trained checkpoint that ships with the package, one per embodiment, in
``kinesis_tasks/data/policies/<embodiment>/``:

* ``model.pth``: the checkpoint in the original KINESIS layout, as the trainer writes it;
* ``config.yaml``: the training configuration of that run (``imitation.control_mode`` tells the control
  mode it was trained for; target_length when absent);
* optionally its evaluation (``eval_*.json``), learning curve (``curve.png``) and ``MODEL_CARD.md``.

Replacing a bundle is copying a run's ``best.pth`` (or ``model.pth``) and ``config.yaml`` over these files;
nothing depends on which checkpoint it is. Today only ``legs`` (80 muscles, observation 504) has one. A
downstream task may have its own, fine-tuned from it, in ``<embodiment>/<task>/`` (same files): the default
policy wherever that task runs (``kinesis eval/view --task``, the policy node and launch files with
``task:=``); the embodiment's bundle otherwise.

``resolve_policy(value, embodiment)`` turns what a user gave (``kinesis eval/view/demo --checkpoint``, the
policy node's ``checkpoint`` parameter, the launch files' ``checkpoint`` argument) into a ``PolicyChoice``:

* nothing (None or ""), ``bundled`` or ``default``: the bundled policy of the embodiment;
* ``hold-pose`` or ``zero-action`` (``kinesis_tasks.controllers.FALLBACKS``): that fallback controller,
  no checkpoint;
* ``kinesis:NAME``: an official checkpoint fetched by ``kinesis assets fetch`` (``assets.resolve_checkpoint``);
* anything else: a checkpoint file path (a file named like one of the names above: ``./hold-pose``).

Without a bundle for the embodiment (and control mode), ``bundled``/``default`` is an error; so is nothing
unless the caller passes ``unbundled="fallback"``, then the hold-pose fallback runs and the choice says why
(the policy node, the launch files and the downstream tasks do: the penalty kick runs ``legs_back``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from kinesis_tasks.assets import resolve_checkpoint
from kinesis_tasks.controllers import FALLBACKS

BUNDLE_ROOT = Path(__file__).resolve().parent / "data" / "policies"
"""Folder of the bundles, one sub-folder per embodiment name."""
BUNDLE_CHECKPOINT = "model.pth"
BUNDLE_CONFIG = "config.yaml"
BUNDLED_NAMES = ("bundled", "default")
"""Checkpoint arguments that ask for the bundled policy explicitly (an error when there is none)."""
DEFAULT_FALLBACK = "hold-pose"
"""The fallback that runs for ``unbundled="fallback"`` when the embodiment has no bundle."""


@dataclass(frozen=True)
class Bundle:
    """One bundled policy: its folder and what its training configuration says."""

    embodiment: str
    folder: Path
    control_mode: str

    @property
    def checkpoint(self) -> Path:
        return self.folder / BUNDLE_CHECKPOINT

    @property
    def config(self) -> Path:
        return self.folder / BUNDLE_CONFIG


def bundled_embodiments() -> tuple[str, ...]:
    """Embodiment names with a bundled policy (a ``model.pth`` in their folder), sorted."""
    if not BUNDLE_ROOT.is_dir():
        return ()
    return tuple(sorted(p.name for p in BUNDLE_ROOT.iterdir() if (p / BUNDLE_CHECKPOINT).is_file()))


def _no_bundle(embodiment: str, control_mode: str | None = None) -> ValueError:
    mode = f" in {control_mode} control" if control_mode else ""
    known = ", ".join(bundled_embodiments()) or "none"
    return ValueError(
        f"no bundled policy for embodiment {os.fspath(embodiment)!r}{mode} (bundled: {known}): give a checkpoint "
        f"(--checkpoint PATH/model.pth or kinesis:NAME; the policy node's checkpoint:=...), or run a fallback "
        f"controller by name (--checkpoint {DEFAULT_FALLBACK})")


def bundle(embodiment: str = "legs", task: str | None = None) -> Bundle:
    """The bundled policy of ``embodiment`` (for ``task``: its own when it has one); ValueError naming the
    alternatives when there is none."""
    folder = BUNDLE_ROOT / str(embodiment)
    if not isinstance(embodiment, str) or "/" in embodiment or not (folder / BUNDLE_CHECKPOINT).is_file():
        raise _no_bundle(embodiment)
    if task and "/" not in task and (folder / task / BUNDLE_CHECKPOINT).is_file():
        folder = folder / task
    config = folder / BUNDLE_CONFIG
    values = (yaml.safe_load(config.read_text()) or {}) if config.is_file() else {}
    imitation = values.get("imitation") or {}
    return Bundle(embodiment=embodiment, folder=folder, control_mode=str(imitation.get("control_mode", "target_length")))


def bundled_checkpoint(embodiment: str = "legs") -> Path:
    """The ``model.pth`` of the bundled policy of ``embodiment`` (ValueError when there is none)."""
    return bundle(embodiment).checkpoint


@dataclass(frozen=True)
class PolicyChoice:
    """What a checkpoint argument resolved to: a checkpoint file, or a fallback controller by name."""

    checkpoint: Path | None
    """The model.pth to load; None for a fallback controller."""
    fallback: str | None = None
    """The fallback controller (a key of ``controllers.FALLBACKS``) when ``checkpoint`` is None."""
    bundled: bool = False
    """The checkpoint is the bundled policy of the embodiment."""
    reason: str = ""
    """Why a fallback runs without having been asked for by name (empty otherwise)."""

    @property
    def description(self) -> str:
        """One line for logs and reports: which policy runs."""
        if self.checkpoint is None:
            text = FALLBACKS[self.fallback]
            return f"{text}: {self.reason}" if self.reason else text
        return f"bundled policy {self.checkpoint}" if self.bundled else f"checkpoint {self.checkpoint}"

    @property
    def argument(self) -> str:
        """The value to hand on as a checkpoint argument (to a node, a launch file) that resolves the same:
        the fallback's name, ``bundled``, or the checkpoint file."""
        if self.checkpoint is None:
            return self.fallback
        return BUNDLED_NAMES[0] if self.bundled else str(self.checkpoint)


def resolve_policy(
    value: str | os.PathLike | None,
    embodiment: str | os.PathLike = "legs",
    *,
    control_mode: str = "target_length",
    unbundled: str = "error",
    task: str | None = None,
) -> PolicyChoice:
    """The policy a checkpoint argument names for ``embodiment`` (see the module docstring); the bundle of
    ``task`` (reach, directional, ...) where it has its own.

    Args:
        value: None or "" (the default), "bundled"/"default", a fallback name, kinesis:NAME or a path.
        embodiment: the embodiment the policy will drive (the bundle is looked up by this name).
        control_mode: the control mode it will run; a bundle trained for another one does not count.
        unbundled: what None or "" gives when there is no bundle: "error" (ValueError) or "fallback" (the
            hold-pose fallback, with the reason in ``PolicyChoice.reason``).

    Raises:
        ValueError: no bundle where one is needed; an unknown kinesis:NAME (``assets.resolve_checkpoint``).
        FileNotFoundError: a path that is not a file (``AssetsMissingError`` for an official one not fetched).
    """
    if unbundled not in ("error", "fallback"):
        raise ValueError(f"unbundled must be 'error' or 'fallback', got {unbundled!r}")
    text = "" if value is None else os.fspath(value).strip()
    if text in FALLBACKS:
        return PolicyChoice(checkpoint=None, fallback=text)
    if not text or text in BUNDLED_NAMES:
        try:
            found = bundle(str(embodiment), task)
            if found.control_mode != control_mode:
                raise _no_bundle(str(embodiment), control_mode)
        except ValueError:
            if text or unbundled == "error":
                raise
            return PolicyChoice(checkpoint=None, fallback=DEFAULT_FALLBACK,
                                reason=f"no bundled policy for {os.fspath(embodiment)} ({control_mode} control)")
        return PolicyChoice(checkpoint=found.checkpoint, bundled=True)
    path = resolve_checkpoint(text)  # kinesis:NAME -> the fetched file (errors name `kinesis assets fetch`)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {text}: file not found (a model.pth path, kinesis:NAME, {' or '.join(BUNDLED_NAMES)} for "
            f"the bundled policy, or a fallback controller: {', '.join(FALLBACKS)})")
    return PolicyChoice(checkpoint=path)

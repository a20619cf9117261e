"""Numpy-in, numpy-out access to a trained policy: ``load_policy(path)`` (stable public API).

Wraps a checkpoint (conformance README section 7.3) loaded by ``checkpoint.load_checkpoint`` in evaluation
mode: no call ever updates a normalizer. Every method takes a batch [B, obs_dim] (a single [obs_dim] row
is accepted and gives unbatched results) and returns float32 arrays. ``mean_action`` of small batches runs
the packed kernels of ``fast_policy`` (the acting path of evaluation and the policy node), with the
checkpoint's float32 weights or, opt-in, ``weights="float16"``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from kinesis_training.checkpoint import Checkpoint, PolicySpec, load_checkpoint
from kinesis_training.fast_policy import MAX_FAST_BATCH, FastMeanAction, check_weights
from kinesis_training.policies import MoEActor


class LoadedPolicy:
    """Evaluation-mode policy and critic of one checkpoint.

    ``weights`` ("float32" or "float16") is the storage of the packed mean network(s) that ``mean_action`` runs
    for batches of 1 to ``MAX_FAST_BATCH`` rows; larger batches, and every other method, use the torch
    modules with the checkpoint's float32 weights.
    """

    def __init__(self, checkpoint: Checkpoint, seed: int | None = None, weights: str = "float32") -> None:
        self.checkpoint = checkpoint
        self.policy = checkpoint.policy.eval()
        self.critic = checkpoint.critic.eval()
        self._generator = torch.Generator()
        if seed is not None:
            self._generator.manual_seed(seed)
        # packed snapshot of the mean network(s) for batches of 1..MAX_FAST_BATCH rows; the first call loads
        # (or compiles) the kernels, here rather than on the first action
        self.fast_mean_action = FastMeanAction(self.policy, weights)
        self.fast_mean_action(np.zeros((1, self.obs_dim), np.float32))

    @property
    def spec(self) -> PolicySpec:
        return self.checkpoint.spec

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def obs_dim(self) -> int:
        return self.spec.obs_dim

    @property
    def action_dim(self) -> int:
        return self.spec.action_dim

    @staticmethod
    def _rows(array: np.ndarray, width: int, name: str) -> tuple[np.ndarray, bool]:
        """(float32 array [B, width], whether the input was a single row)."""
        x = np.asarray(array, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != width:
            raise ValueError(f"{name} must have shape [B, {width}] or [{width}], got {np.shape(array)}")
        return x, single

    def _batch(self, array: np.ndarray, width: int, name: str) -> tuple[torch.Tensor, bool]:
        x, single = self._rows(array, width, name)
        return torch.from_numpy(x), single

    @staticmethod
    def _out(t: torch.Tensor, single: bool) -> np.ndarray:
        out = t.detach().cpu().numpy().astype(np.float32, copy=False)
        return out[0] if single else out

    @property
    def weights(self) -> str:
        """Weight storage of the fast ``mean_action`` path: "float32" or "float16"."""
        return self.fast_mean_action.weights

    def mean_action(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action [B, A] (MoE: the most probable expert's action).

        Batches of 1 to ``MAX_FAST_BATCH`` rows run the packed kernels with the ``weights`` chosen at load; above
        that, the torch modules in float32 (with ``weights="float16"`` those actions differ from the small-batch
        ones by ~1e-4 relative, the float16 rounding).
        """
        x, single = self._rows(obs, self.obs_dim, "obs")
        if 0 < x.shape[0] <= MAX_FAST_BATCH:
            actions = self.fast_mean_action(x)
            return actions[0] if single else actions
        return self._out(self.policy.mean_action(torch.from_numpy(x)), single)

    def act(self, obs: np.ndarray, deterministic: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(actions [B, A], log_probs [B]) sampled as in the original acting path (seeded by `seed`)."""
        x, single = self._batch(obs, self.obs_dim, "obs")
        actions, log_probs = self.policy.get_action_and_log_prob(x, deterministic, self._generator)
        return self._out(actions, single), self._out(log_probs, single)

    def log_prob(self, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Log density (MoE: log gate probability of the L1-nearest expert) of actions [B, A] -> [B]."""
        x, single = self._batch(obs, self.obs_dim, "obs")
        a, _ = self._batch(actions, self.action_dim, "actions")
        with torch.no_grad():
            return self._out(self.policy.log_prob(x, a), single)

    def value(self, obs: np.ndarray) -> np.ndarray:
        """Critic value [B]."""
        x, single = self._batch(obs, self.obs_dim, "obs")
        with torch.inference_mode():
            return self._out(self.critic(x)[:, 0], single)

    def normalized_obs(self, obs: np.ndarray) -> np.ndarray:
        """Output of the policy's (MoE: the gate's) normalizer [B, obs_dim]."""
        x, single = self._batch(obs, self.obs_dim, "obs")
        with torch.inference_mode():
            return self._out(self.policy.norm.normalize(x), single)

    def _moe(self, what: str) -> MoEActor:
        if not isinstance(self.policy, MoEActor):
            raise ValueError(f"{what} needs a mixture-of-experts checkpoint, this one is {self.kind}")
        return self.policy

    def gate_probs(self, obs: np.ndarray) -> np.ndarray:
        """MoE gate probabilities [B, K]."""
        moe = self._moe("gate_probs")
        x, single = self._batch(obs, self.obs_dim, "obs")
        return self._out(moe.gate_probs(x), single)

    def expert_actions(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action of every MoE expert [B, K, A]."""
        moe = self._moe("expert_actions")
        x, single = self._batch(obs, self.obs_dim, "obs")
        return self._out(moe.expert_actions(x), single)


def load_policy(
    path: str | os.PathLike,
    *,
    obs_dim: int | None = None,
    action_dim: int | None = None,
    seed: int | None = None,
    weights: str = "float32",
) -> LoadedPolicy:
    """Loads a ``model.pth`` for evaluation; obs_dim/action_dim, if given, must match the checkpoint.

    ``weights="float16"`` (opt-in) runs ``mean_action`` of small batches with the weight matrices rounded to
    float16: about half the latency of the default float32 at batch 1 on the paper networks (memory bound),
    actions within ~1e-4 of the largest action's size from the float32 ones (docs/performance.md, "Policy
    inference"). A checkpoint with a weight beyond the float16 range (65504) is a ValueError then.
    """
    check_weights(weights)
    return LoadedPolicy(load_checkpoint(path, obs_dim=obs_dim, action_dim=action_dim), seed=seed, weights=weights)


@dataclass(frozen=True)
class CheckpointPolicy:
    """Picklable policy factory (``kinesis_tasks.evaluation``'s ``PolicyFactory``): the mean action of a
    ``model.pth``, size-checked against the env, one torch thread per process (evaluation workers)."""

    path: str
    weights: str = "float32"
    bundled: bool = False

    @property
    def description(self) -> str:
        kind = "bundled policy" if self.bundled else "checkpoint"
        return f"{kind} {self.path} (mean action{', float16 weights' if self.weights == 'float16' else ''})"

    def __call__(self, obs_size: int, action_size: int) -> Callable[[np.ndarray], np.ndarray]:
        torch.set_num_threads(1)
        return load_policy(self.path, obs_dim=obs_size, action_dim=action_size, weights=self.weights).mean_action

"""PPO update of the original KINESIS training, independent of any environment.

Implements conformance README sections 6 and 9: GAE (gamma 0.99, tau 0.95) over a batch whose ``masks``
are 0 on the last sample of each trajectory; advantages normalized over the batch; then 10 optimisation
epochs on the full batch, each one critic step (MSE to the GAE returns, Adam lr 3e-4) and one clipped
policy step (clip 0.2, Adam lr 5e-5, gradient norm clipped to 25). The policy is in training mode during
the epochs, so its normalizer(s) update once per epoch with the whole batch; the old log-probs are
taken in evaluation mode (no update).

Some options depart from the original (their defaults keep it; docs/training.md measures them):

- ``minibatch_size``: several gradient steps per optimisation epoch, on shuffled minibatches (the
  normalizer then updates once per minibatch, i.e. still once per sample and epoch);
- ``critic_input`` 'normalized': the critic reads the policy normalizer's output, not the raw observation;
- ``normalizer_update`` 'per_batch': the normalizer moves once per batch, before the update, instead of
  in every epoch, so the PPO ratio and KL measure the weight change alone;
- ``bootstrap_cut``: a trajectory cut without termination (end of its motion or of a collection) gets
  gamma V(s') added to its last reward instead of being treated as terminal;
- ``desired_kl``: the policy learning rate adapts to the measured KL, as in legged-robot PPO codes (the
  current rate lives in the optimizer state, so it is saved and resumed with the checkpoint);
- ``mirror``: each batch is doubled with its left-right mirror image (same advantages; old log-probs of
  the mirrored pairs under the pre-update policy);
- ``symmetry_weight``: a mirror-symmetry loss on the mean action, |mu(mirror(o)) - mirror(mu(o))|^2, added to
  the policy loss of every step (Yu, Turk and Liu 2018, "Learning symmetric and low-energy locomotion");
- ``bound_weight``: a penalty on mean actions beyond the action space, |mu| - 1 squared where positive (the
  "bounds loss" of rl_games-based motion imitation codes): the environment clips actions to [-1, 1], so a
  mean far beyond it makes the log-probability move without any change of behaviour;
- ``mean_clip``: the update sees mean actions clipped to +-mean_clip, and each sampled action shifted by the
  same amount (its noise, hence its log-probability, unchanged): entries the environment saturates either
  way stop adding noise to the gradient and moving the ratio; ``sample_clipped_mean``: the samplers draw
  around the clipped mean too (exploration where the mean saturates, no shift needed).

A resumed run takes the configured learning rates, except an adaptive policy rate, which goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from kinesis_tasks.symmetry import MirrorMap

from kinesis_training.networks import Critic
from kinesis_training.policies import Actor, GaussianActor, LatticeActor

MAX_LOG_RATIO = 20.0
"""|log ratio| cap before exp (a numerical guard; the original has none)."""


@dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of the PPO update (defaults: the original KINESIS values)."""

    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.95
    """GAE lambda."""
    clip_epsilon: float = 0.2
    """Ratio clip range [1 - eps, 1 + eps]."""
    policy_lr: float = 5e-5
    """Adam learning rate of the policy."""
    value_lr: float = 3e-4
    """Adam learning rate of the critic."""
    policy_grad_clip: float = 25.0
    """Maximum global gradient norm of the policy step."""
    opt_epochs: int = 10
    """Optimisation epochs per batch."""
    minibatch_size: int | None = None
    """Samples per gradient step (shuffled each epoch); None: the full batch, one step per epoch (original)."""
    critic_input: Literal["raw", "normalized"] = "raw"
    """Critic input: the raw observation (original) or the policy normalizer's output."""
    bootstrap_cut: bool = False
    """Add gamma V(s') to the last reward of trajectories cut without termination (original: treated as terminal)."""
    normalizer_update: Literal["per_epoch", "per_batch"] = "per_epoch"
    """'per_epoch': the policy normalizer(s) update in every optimisation epoch (per minibatch), as the original;
    'per_batch': once with the batch before the update, the old log-probs then recomputed with it, so the
    ratio starts at 1 and measures only the weight change."""
    mirror: bool = False
    """Also train on the left-right mirror image of every sample (``kinesis_tasks.symmetry``; the embodiment
    must be symmetric); doubles the update's work."""
    symmetry_weight: float = 0.0
    """Weight of the mirror-symmetry loss: the mean over the minibatch and the action entries of
    (mu(mirror(o)) - mirror(mu(o)))^2, means clipped to [-1, 1], gradients through both terms (0: none; the
    embodiment must be symmetric)."""
    bound_weight: float = 0.0
    """Weight of the bounds loss: the mean over the minibatch and the action entries of max(|mu| - 1, 0)^2 (0: none)."""
    mean_clip: float | None = None
    """Clip the policy's mean action to [-mean_clip, mean_clip] in the update (>= 1: the environment clips actions
    to [-1, 1]); each sampled action a becomes a - mu + clip(mu), mu its sampling mean (Gaussian and Lattice
    actors; None: the original, unclipped)."""
    sample_clipped_mean: bool = False
    """With ``mean_clip``: the sampling policy too draws its actions around the clipped mean (the trainer's
    samplers), so that the noise explores muscles whose mean is saturated (beyond +-1 the environment clips
    the action, and noise around a mean of 10 never changes what it does) and the update needs no shift."""
    desired_kl: float | None = None
    """Adapt the policy learning rate after every gradient step to keep the approximate KL near this value
    (x1.5 below half of it, /1.5 above twice it, within [1e-6, 1e-2]); None: constant ``policy_lr`` (original)."""

    def __post_init__(self) -> None:
        if self.minibatch_size is not None and int(self.minibatch_size) < 1:
            raise ValueError(f"ppo.minibatch_size must be >= 1 or null, got {self.minibatch_size}")
        if self.normalizer_update not in ("per_epoch", "per_batch"):
            raise ValueError(f"ppo.normalizer_update must be 'per_epoch' or 'per_batch', got {self.normalizer_update!r}")
        if self.critic_input not in ("raw", "normalized"):
            raise ValueError(f"ppo.critic_input must be 'raw' or 'normalized', got {self.critic_input!r}")
        for name in ("symmetry_weight", "bound_weight"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"ppo.{name} must be >= 0, got {getattr(self, name)}")
        if self.mean_clip is not None and float(self.mean_clip) < 1.0:
            raise ValueError(f"ppo.mean_clip must be >= 1 (actions are clipped to [-1, 1]) or null, got {self.mean_clip}")
        if self.sample_clipped_mean and self.mean_clip is None:
            raise ValueError("ppo.sample_clipped_mean needs ppo.mean_clip")
        if int(self.opt_epochs) < 1:
            raise ValueError(f"ppo.opt_epochs must be >= 1, got {self.opt_epochs}")

    @property
    def needs_mirror(self) -> bool:
        """Whether the update needs the embodiment's mirror map (mirror augmentation or the symmetry loss)."""
        return bool(self.mirror or self.symmetry_weight)


@dataclass
class RolloutBatch:
    """N samples, ordered trajectory by trajectory (each worker's chunk must end with mask 0)."""

    obs: torch.Tensor
    """[N, obs_dim] float32 raw observations."""
    actions: torch.Tensor
    """[N, A] float32 actions as sampled (before clipping to [-1, 1])."""
    rewards: torch.Tensor
    """[N] rewards."""
    masks: torch.Tensor
    """[N] 0 on the last sample of a trajectory, 1 elsewhere."""
    log_probs: torch.Tensor | None = None
    """[N] log-probs at sampling time; None recomputes them with the current policy (evaluation mode)."""
    cut_index: torch.Tensor | None = None
    """[M] int64: samples that end a trajectory without termination (end of motion, end of collection)."""
    cut_obs: torch.Tensor | None = None
    """[M, obs_dim] the observation after each of those samples (bootstrapped with ``bootstrap_cut``)."""


def compute_gae(
    rewards: np.ndarray, masks: np.ndarray, values: np.ndarray, gamma: float, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation over [N] arrays; the value after a mask-0 sample is 0.

    Returns (advantages [N], returns [N] = values + advantages), float64.
    """
    rewards, masks, values = (np.asarray(a, dtype=np.float64) for a in (rewards, masks, values))
    advantages = np.empty_like(rewards)
    next_value, next_advantage = 0.0, 0.0
    for i in range(len(rewards) - 1, -1, -1):
        delta = rewards[i] + gamma * next_value * masks[i] - values[i]
        next_advantage = delta + gamma * tau * next_advantage * masks[i]
        advantages[i] = next_advantage
        next_value = values[i]
    return advantages, values + advantages


class PPO:
    """Owns the two Adam optimizers; ``update(batch)`` runs one training iteration."""

    def __init__(
        self,
        policy: Actor,
        critic: Critic,
        config: PPOConfig = PPOConfig(),
        optimizer_policy_state: Mapping[str, Any] | None = None,
        optimizer_value_state: Mapping[str, Any] | None = None,
        mirror: MirrorMap | None = None,
    ) -> None:
        """``mirror``: the embodiment's left-right mirror (``kinesis_tasks.symmetry``), needed by ``config.mirror``
        and ``config.symmetry_weight``."""
        if config.needs_mirror and mirror is None:
            raise ValueError("ppo.mirror and ppo.symmetry_weight need the embodiment's mirror map")
        if config.mean_clip is not None:
            if not isinstance(policy, (GaussianActor, LatticeActor)):
                raise ValueError(f"ppo.mean_clip needs a Gaussian or Lattice actor, not {type(policy).__name__}")
            policy.mean_clip = float(config.mean_clip)
        self.policy, self.critic, self.config = policy, critic, config
        self.mirror = None if mirror is None else (
            torch.as_tensor(mirror.obs_index), torch.as_tensor(mirror.obs_sign), torch.as_tensor(mirror.action_index))
        # All policy parameters are registered (frozen MoE experts too), so the Adam indices match README 7.3.
        self.optimizer_policy = torch.optim.Adam(policy.parameters(), lr=config.policy_lr)
        self.optimizer_value = torch.optim.Adam(critic.parameters(), lr=config.value_lr)
        if optimizer_policy_state:
            self.optimizer_policy.load_state_dict(optimizer_policy_state)
        if optimizer_value_state:
            self.optimizer_value.load_state_dict(optimizer_value_state)
        # A resumed run takes the configured rates (a loaded state carries its own); adaptive ones go on.
        for optimizer, lr in ((self.optimizer_policy, None if config.desired_kl else config.policy_lr),
                              (self.optimizer_value, config.value_lr)):
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] if lr is None else lr
        self.generator = torch.Generator().manual_seed(0)  # minibatch shuffling

    def _mirrored(self, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(observations, actions) of the mirrored samples, or None without mirror augmentation."""
        if not self.config.mirror:
            return None
        index, sign, action_index = self.mirror
        return obs[:, index] * sign, actions[:, action_index]

    def auxiliary_losses(self, obs: torch.Tensor) -> dict[str, tuple[float, torch.Tensor]]:
        """{name: (weight, loss)} of the configured losses on the mean action (none: {}).

        symmetry_loss: mean squared difference between the mean action of the mirrored observations and the
        mirrored mean action, both clipped to [-1, 1] as the environment clips them (saturated entries agree);
        bound_loss: mean of max(|mu| - 1, 0)^2.
        """
        cfg = self.config
        if not (cfg.symmetry_weight or cfg.bound_weight):
            return {}
        mean = self.policy.mean(obs)
        losses = {}
        if cfg.bound_weight:
            losses["bound_loss"] = cfg.bound_weight, (mean.abs() - 1.0).clamp(min=0.0).pow(2).mean()
        if cfg.symmetry_weight:
            index, sign, action_index = self.mirror
            mirrored = self.policy.mean(obs[:, index] * sign).clamp(-1.0, 1.0)
            losses["symmetry_loss"] = (cfg.symmetry_weight,
                                       (mirrored - mean.clamp(-1.0, 1.0)[:, action_index]).pow(2).mean())
        return losses

    def critic_values(self, obs: torch.Tensor) -> torch.Tensor:
        """V(obs) [N] with the configured critic input (no normalizer update)."""
        if self.config.critic_input == "normalized":
            obs = self.policy.norm.normalize(obs)
        return self.critic(obs).squeeze(-1)

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """One PPO iteration on `batch`; returns the logged statistics."""
        cfg = self.config
        device = next(self.critic.parameters()).device
        obs = torch.as_tensor(batch.obs, dtype=torch.float32, device=device).clone()
        actions = torch.as_tensor(batch.actions, dtype=torch.float32, device=device).clone()
        if obs.ndim != 2 or actions.ndim != 2 or obs.shape[0] != actions.shape[0]:
            raise ValueError(f"batch.obs {tuple(obs.shape)} and batch.actions {tuple(actions.shape)} must be [N, .]")
        rewards = torch.as_tensor(batch.rewards).cpu().numpy().astype(np.float64)

        if cfg.mean_clip is not None and not cfg.sample_clipped_mean:  # the same noise around the clipped mean
            with torch.no_grad():
                unclipped = self.policy.eval().unclipped_mean(obs)
                actions += unclipped.clamp(-cfg.mean_clip, cfg.mean_clip) - unclipped

        # 1. Old log-probs and values, without touching the normalizers (per batch: right after updating them).
        per_batch = cfg.normalizer_update == "per_batch"
        mirrored = self._mirrored(obs, actions)
        if per_batch:
            with torch.no_grad():  # training mode: updates what the original updates
                self.policy.train().log_prob(*((obs, actions) if mirrored is None else
                                               (torch.cat((obs, mirrored[0])), torch.cat((actions, mirrored[1])))))
        self.policy.eval()
        self.critic.eval()
        with torch.no_grad():
            values = self.critic_values(obs)
            if batch.log_probs is None or per_batch:
                old_log_probs = self.policy.log_prob(obs, actions)
            else:
                old_log_probs = torch.as_tensor(batch.log_probs, dtype=torch.float32, device=device).clone()
            if cfg.bootstrap_cut and batch.cut_index is not None and len(batch.cut_index):
                cut_obs = torch.as_tensor(batch.cut_obs, dtype=torch.float32, device=device)
                np.add.at(rewards, np.asarray(batch.cut_index), cfg.gamma * self.critic_values(cut_obs).cpu().numpy())

        # 2. GAE, normalized advantages.
        adv, ret = compute_gae(rewards, torch.as_tensor(batch.masks).cpu().numpy(), values.cpu().numpy(),
                               cfg.gamma, cfg.tau)
        advantages = torch.as_tensor(adv, dtype=torch.float32, device=device)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        returns = torch.as_tensor(ret, dtype=torch.float32, device=device)
        if mirrored is not None:  # the mirrored samples: same advantages and returns, log-probs of the old policy
            with torch.no_grad():
                old_log_probs = torch.cat((old_log_probs, self.policy.log_prob(*mirrored)))
            obs, actions = torch.cat((obs, mirrored[0])), torch.cat((actions, mirrored[1]))
            advantages, returns, values = advantages.repeat(2), returns.repeat(2), values.repeat(2)

        # 3. Optimisation epochs: per minibatch one critic step, one policy step (full batch: one each).
        self.policy.train(not per_batch)
        self.critic.train()
        size = len(obs)
        step = min(cfg.minibatch_size or size, size)
        v_losses, pg_losses, aux_losses = [], [], {}
        for _ in range(cfg.opt_epochs):
            chunks = [slice(None)] if step == size else torch.randperm(size, generator=self.generator).split(step)
            for rows in chunks:
                v_loss = (self.critic_values(obs[rows]) - returns[rows]).pow(2).mean()
                self.optimizer_value.zero_grad()
                v_loss.backward()
                self.optimizer_value.step()

                log_ratio = self.policy.log_prob(obs[rows], actions[rows]) - old_log_probs[rows]  # normalizer updates
                # Guard: the first batch is sampled with an empty normalizer, so ratios can overflow float32.
                log_ratio = log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
                ratio = torch.exp(log_ratio)
                clipped = torch.clamp(ratio, 1.0 - cfg.clip_epsilon, 1.0 + cfg.clip_epsilon)
                pg_loss = -torch.min(ratio * advantages[rows], clipped * advantages[rows]).mean()
                loss = pg_loss
                for name, (weight, aux_loss) in self.auxiliary_losses(obs[rows]).items():
                    loss = loss + weight * aux_loss
                    aux_losses.setdefault(name, []).append(aux_loss.item())
                self.optimizer_policy.zero_grad()
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    [p for p in self.policy.parameters() if p.requires_grad], cfg.policy_grad_clip
                )
                self.optimizer_policy.step()
                if cfg.desired_kl is not None:
                    with torch.no_grad():
                        self._adapt_learning_rate(float(((ratio - 1.0) - log_ratio).mean()))
                v_losses.append(v_loss.item())
                pg_losses.append(pg_loss.item())

        # 4. Statistics; the ratio-based ones over the whole batch, after the update: how far it moved.
        self.policy.eval()
        self.critic.eval()
        with torch.no_grad():
            log_ratio = (self.policy.log_prob(obs, actions) - old_log_probs).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
            approx_kl = (torch.expm1(log_ratio) - log_ratio).mean().item()
            clip_fraction = (torch.expm1(log_ratio).abs() > cfg.clip_epsilon).float().mean().item()
            entropy = self.policy.entropy(obs).mean().item()
            explained = 1.0 - float(torch.var(returns - values)) / max(float(torch.var(returns)), 1e-12)
        return {
            "pg_loss": float(np.mean(pg_losses)),
            "v_loss": float(np.mean(v_losses)),
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
            "entropy": entropy,
            "grad_norm": float(grad_norm),
            "mean_return": float(returns.mean()),
            "explained_variance": explained,
            "policy_lr": self.optimizer_policy.param_groups[0]["lr"],
            **{name: float(np.mean(values)) for name, values in aux_losses.items()},
        }

    def _adapt_learning_rate(self, kl: float) -> None:
        """Policy lr x1.5 when ``kl`` < desired/2, /1.5 when > 2 desired (bounded to [1e-6, 1e-2])."""
        target = self.config.desired_kl
        for group in self.optimizer_policy.param_groups:
            if kl > 2.0 * target:
                group["lr"] = max(group["lr"] / 1.5, 1e-6)
            elif kl < 0.5 * target:
                group["lr"] = min(group["lr"] * 1.5, 1e-2)

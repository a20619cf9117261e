"""PPO update of the original KINESIS training, independent of any environment.

Implements conformance README sections 6 and 9: GAE (gamma 0.99, tau 0.95) over a batch whose ``masks``
are 0 on the last sample of each trajectory; advantages normalized over the batch; then 10 optimisation
epochs on the full batch, each one critic step (MSE to the GAE returns, Adam lr 3e-4) and one clipped
policy step (clip 0.2, Adam lr 5e-5, gradient norm clipped to 25). The policy is in training mode during
the epochs, so its normalizer(s) update once per epoch with the whole batch; the old log-probs are
taken in evaluation mode (no update).

Usage::

    ppo = PPO(policy, critic)
    stats = ppo.update(RolloutBatch(obs, actions, rewards, masks, log_probs))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from kinesis_training.networks import Critic
from kinesis_training.policies import Actor

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
    """Optimisation epochs per batch, each on the full batch."""


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
    ) -> None:
        self.policy, self.critic, self.config = policy, critic, config
        # All policy parameters are registered (frozen MoE experts too), so the Adam indices match README 7.3.
        self.optimizer_policy = torch.optim.Adam(policy.parameters(), lr=config.policy_lr)
        self.optimizer_value = torch.optim.Adam(critic.parameters(), lr=config.value_lr)
        if optimizer_policy_state:
            self.optimizer_policy.load_state_dict(optimizer_policy_state)
        if optimizer_value_state:
            self.optimizer_value.load_state_dict(optimizer_value_state)

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """One PPO iteration on `batch`; returns the logged statistics."""
        cfg = self.config
        device = next(self.critic.parameters()).device
        obs = torch.as_tensor(batch.obs, dtype=torch.float32, device=device).clone()
        actions = torch.as_tensor(batch.actions, dtype=torch.float32, device=device).clone()
        if obs.ndim != 2 or actions.ndim != 2 or obs.shape[0] != actions.shape[0]:
            raise ValueError(f"batch.obs {tuple(obs.shape)} and batch.actions {tuple(actions.shape)} must be [N, .]")

        # 1. Old log-probs and values, without touching the normalizers.
        self.policy.eval()
        self.critic.eval()
        with torch.no_grad():
            values = self.critic(obs).squeeze(-1)
            if batch.log_probs is None:
                old_log_probs = self.policy.log_prob(obs, actions)
            else:
                old_log_probs = torch.as_tensor(batch.log_probs, dtype=torch.float32, device=device).clone()

        # 2. GAE, normalized advantages.
        adv, ret = compute_gae(
            torch.as_tensor(batch.rewards).cpu().numpy(), torch.as_tensor(batch.masks).cpu().numpy(),
            values.cpu().numpy(), cfg.gamma, cfg.tau,
        )
        advantages = torch.as_tensor(adv, dtype=torch.float32, device=device)
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        returns = torch.as_tensor(ret, dtype=torch.float32, device=device)

        # 3. Optimisation epochs on the full batch: one critic step, one policy step.
        self.policy.train()
        self.critic.train()
        v_losses, pg_losses = [], []
        for _ in range(cfg.opt_epochs):
            v_loss = (self.critic(obs).squeeze(-1) - returns).pow(2).mean()
            self.optimizer_value.zero_grad()
            v_loss.backward()
            self.optimizer_value.step()

            log_ratio = self.policy.log_prob(obs, actions) - old_log_probs  # the normalizer updates here
            # Guard: the first batch is sampled with an empty normalizer, so ratios can overflow float32.
            log_ratio = log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)
            ratio = torch.exp(log_ratio)
            clipped = torch.clamp(ratio, 1.0 - cfg.clip_epsilon, 1.0 + cfg.clip_epsilon)
            pg_loss = -torch.min(ratio * advantages, clipped * advantages).mean()
            self.optimizer_policy.zero_grad()
            pg_loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(
                [p for p in self.policy.parameters() if p.requires_grad], cfg.policy_grad_clip
            )
            self.optimizer_policy.step()
            v_losses.append(v_loss.item())
            pg_losses.append(pg_loss.item())

        # 4. Statistics (last epoch for the ratio-based ones).
        self.policy.eval()
        self.critic.eval()
        with torch.no_grad():
            approx_kl = ((ratio - 1.0) - log_ratio).mean().item()
            clip_fraction = ((ratio - 1.0).abs() > cfg.clip_epsilon).float().mean().item()
            entropy = self.policy.entropy(obs).mean().item()
        return {
            "pg_loss": float(np.mean(pg_losses)),
            "v_loss": float(np.mean(v_losses)),
            "approx_kl": approx_kl,
            "clip_fraction": clip_fraction,
            "entropy": entropy,
            "grad_norm": float(grad_norm),
            "mean_return": float(returns.mean()),
        }

"""Actors of the original KINESIS policies: Gaussian, Lattice and mixture of experts (MoE).

Implements conformance README sections 7.2 (Lattice: mean W h + b, constant covariance
Sigma = W diag(exp(2 log_std[A:])) W^T + diag(exp(2 log_std[:A]))) and 8 (MoE: softmax gate over frozen
experts, each with its own normalizer; log-prob of the gate probability of the L1-nearest expert).
Module attribute names give the state-dict keys of README section 7.3, so original checkpoints load with
``strict=True``.

All actors share one small interface (CleanRL style), batch-first, obs [B, obs_dim], actions [B, A]:

* ``get_action_and_log_prob(obs, deterministic=False, generator=None) -> (actions [B, A], log_prob [B])``
  acting: inference mode, never updates a normalizer, no distribution objects;
* ``mean_action(obs) -> [B, A]`` the deterministic action, also acting;
* ``mean(obs) -> [B, A]`` the same, differentiable, without a normalizer update (Gaussian and Lattice actors);
* ``log_prob(obs, actions) -> [B]`` differentiable; in training mode it updates the normalizers first
  (this is the one call per optimisation epoch that moves them, README section 6);
* ``entropy(obs) -> [B]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kinesis_training.networks import MLP, scale_output_layer
from kinesis_training.normalizer import RunningNorm

LOG_2PI = math.log(2.0 * math.pi)


class Actor(nn.Module):
    """Shared interface of all actors; see the module docstring."""

    obs_dim: int
    action_dim: int

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no differentiable mean action")

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def get_action_and_log_prob(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _MLPActor(Actor):
    """Common trunk of the Gaussian and Lattice actors: ``log_std``, ``norm``, ``net``, ``action_mean``.

    Registration order (log_std first) gives the stored key order and the Adam parameter indices
    of README section 7.3.
    """

    def __init__(
        self, obs_dim: int, action_dim: int, units: Sequence[int], log_std_width: int, log_std_init: float
    ) -> None:
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.log_std = nn.Parameter(torch.full((1, log_std_width), float(log_std_init)))
        self.norm = RunningNorm(obs_dim)
        self.net = MLP(obs_dim, units)
        self.action_mean = nn.Linear(self.net.out_dim, action_dim)
        scale_output_layer(self.action_mean)
        self.mean_clip: float | None = None
        """Training option (``ppo.mean_clip``): mu clipped to [-mean_clip, mean_clip] (None: not clipped)."""

    def unclipped_mean(self, obs: torch.Tensor, update_norm: bool = False) -> torch.Tensor:
        """The network's mu(x) [B, A], ignoring ``mean_clip``; update_norm=True lets the normalizer update (in
        training mode only)."""
        x = self.norm(obs) if update_norm else self.norm.normalize(obs)
        return self.action_mean(self.net(x))

    def _mean(self, obs: torch.Tensor, update_norm: bool) -> torch.Tensor:
        """mu(x) [B, A], clipped to ``mean_clip`` when set."""
        mu = self.unclipped_mean(obs, update_norm)
        return mu if self.mean_clip is None else mu.clamp(-self.mean_clip, self.mean_clip)

    def mean(self, obs: torch.Tensor) -> torch.Tensor:
        return self._mean(obs, update_norm=False)

    @torch.inference_mode()
    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        return self.mean(obs)


class GaussianActor(_MLPActor):
    """Diagonal Gaussian N(mu(x), diag(exp(2 log_std))) with state-independent ``log_std`` (1, A)."""

    def __init__(self, obs_dim: int, action_dim: int, units: Sequence[int], log_std_init: float = 0.0) -> None:
        super().__init__(obs_dim, action_dim, units, action_dim, log_std_init)

    def _log_density(self, diff: torch.Tensor) -> torch.Tensor:
        log_std = self.log_std[0]
        z = diff * torch.exp(-log_std)
        return -0.5 * (z * z).sum(-1) - log_std.sum() - 0.5 * self.action_dim * LOG_2PI

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self._log_density(actions - self._mean(obs, update_norm=True))

    @torch.inference_mode()
    def get_action_and_log_prob(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self._mean(obs, update_norm=False)
        if deterministic:
            noise = torch.zeros_like(mu)
        else:
            eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
            noise = eps * torch.exp(self.log_std[0])
        return mu + noise, self._log_density(noise)

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        value = self.log_std.sum() + 0.5 * self.action_dim * (1.0 + LOG_2PI)
        return value.expand(obs.shape[0])


class LatticeActor(_MLPActor):
    """Lattice: N(mu(x), Sigma) with Sigma = W diag(sigma_latent^2) W^T + diag(sigma_action^2) (README 7.2).

    ``log_std`` is (1, A + latent), latent = the last hidden width = columns of W = ``action_mean.weight``.
    The covariance does not depend on the input; outside autograd its Cholesky factor is cached until
    ``log_std`` or W change.
    """

    def __init__(self, obs_dim: int, action_dim: int, units: Sequence[int], log_std_init: float = 0.0) -> None:
        super().__init__(obs_dim, action_dim, units, action_dim + units[-1], log_std_init)
        self.latent_dim = units[-1]
        self._cache_key: tuple | None = None
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def covariance(self) -> torch.Tensor:
        """Sigma [A, A]."""
        var = torch.exp(2.0 * self.log_std[0])
        w = self.action_mean.weight
        return (w * var[self.action_dim :]) @ w.T + torch.diag(var[: self.action_dim])

    def _cholesky(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(L [A, A] lower, log det Sigma); cached when autograd is off."""
        if torch.is_grad_enabled():
            chol = torch.linalg.cholesky(self.covariance())
            return chol, 2.0 * torch.log(torch.diagonal(chol)).sum()
        w, s = self.action_mean.weight, self.log_std
        key = (w.data_ptr(), w._version, s.data_ptr(), s._version, w.dtype)
        if key != self._cache_key:
            with torch.inference_mode():
                chol = torch.linalg.cholesky(self.covariance())
                self._cache = (chol, 2.0 * torch.log(torch.diagonal(chol)).sum())
            self._cache_key = key
        return self._cache

    def _log_density(self, diff: torch.Tensor, chol: torch.Tensor, logdet: torch.Tensor) -> torch.Tensor:
        z = torch.linalg.solve_triangular(chol, diff.T, upper=False)
        return -0.5 * ((z * z).sum(0) + logdet + self.action_dim * LOG_2PI)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        chol, logdet = self._cholesky()
        return self._log_density(actions - self._mean(obs, update_norm=True), chol, logdet)

    @torch.inference_mode()
    def get_action_and_log_prob(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self._mean(obs, update_norm=False)
        chol, logdet = self._cholesky()
        if deterministic:
            log_p = -0.5 * (logdet + self.action_dim * LOG_2PI)
            return mu, log_p.expand(mu.shape[0])
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
        log_p = -0.5 * ((eps * eps).sum(-1) + logdet + self.action_dim * LOG_2PI)
        return mu + eps @ chol.T, log_p

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        _, logdet = self._cholesky()
        return (0.5 * (logdet + self.action_dim * (1.0 + LOG_2PI))).expand(obs.shape[0])


def make_expert(obs_dim: int, action_dim: int, units: Sequence[int]) -> nn.Sequential:
    """One MoE expert: Sequential(RunningNorm, MLP, Linear head) -> keys ``{0,1,2}.*``."""
    mlp = MLP(obs_dim, units)
    head = nn.Linear(mlp.out_dim, action_dim)
    scale_output_layer(head)
    return nn.Sequential(RunningNorm(obs_dim), mlp, head)


class ExpertBank(nn.Module):
    """The ``experts`` sub-module: an unused ``norm`` (kept for the layout) and ``experts.K``."""

    def __init__(self, obs_dim: int, action_dim: int, units: Sequence[int], num_experts: int) -> None:
        super().__init__()
        self.norm = RunningNorm(obs_dim)
        self.experts = nn.ModuleList(make_expert(obs_dim, action_dim, units) for _ in range(num_experts))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [B, obs_dim] -> actions of every expert [B, K, A]; in training mode the norms update."""
        return torch.stack([expert(obs) for expert in self.experts], dim=1)

    def actions(self, obs: torch.Tensor) -> torch.Tensor:
        """Like forward, but never updates a normalizer."""
        return torch.stack([head(mlp(norm.normalize(obs))) for norm, mlp, head in self.experts], dim=1)

    def act(self, obs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Action of expert index[b] for each row b [B, A], evaluating only the chosen experts; no update."""
        out = obs.new_empty(obs.shape[0], self.experts[0][2].out_features)
        for k in torch.unique(index).tolist():
            rows = (index == k).nonzero(as_tuple=True)[0]
            norm, mlp, head = self.experts[k]
            out[rows] = head(mlp(norm.normalize(obs[rows])))
        return out


class MoEActor(Actor):
    """Mixture of experts (README 8): gate g(x) = softmax(gate(norm(x))) over frozen experts.

    Acting samples expert K ~ g(x) and returns its action, also when ``deterministic`` is asked (the
    original has no mean mode). ``mean_action`` is our deterministic addition: the action of the most
    probable expert. The experts' weights are frozen; by default their normalizers still update in
    training mode as in the original (README 8, "Quirk"); ``freeze_expert_norms=True`` stops that.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        units: Sequence[int],
        gate_units: Sequence[int],
        num_experts: int,
        freeze_expert_norms: bool = False,
    ) -> None:
        super().__init__()
        if num_experts < 1:
            raise ValueError(f"num_experts must be at least 1, got {num_experts}")
        self.obs_dim, self.action_dim, self.num_experts = obs_dim, action_dim, num_experts
        self.freeze_expert_norms = freeze_expert_norms
        self.norm = RunningNorm(obs_dim)
        gate_mlp = MLP(obs_dim, gate_units)
        self.gate = nn.Sequential(gate_mlp, nn.Linear(gate_mlp.out_dim, num_experts))
        self.experts = ExpertBank(obs_dim, action_dim, units, num_experts)
        self.experts.requires_grad_(False)

    def train(self, mode: bool = True) -> MoEActor:
        super().train(mode)
        if self.freeze_expert_norms:
            self.experts.eval()
        return self

    def _gate_probs(self, obs: torch.Tensor, update_norm: bool) -> torch.Tensor:
        x = self.norm(obs) if update_norm else self.norm.normalize(obs)
        return torch.softmax(self.gate(x), dim=-1)

    @torch.inference_mode()
    def gate_probs(self, obs: torch.Tensor) -> torch.Tensor:
        """Gate probabilities [B, K]."""
        return self._gate_probs(obs, update_norm=False)

    @torch.inference_mode()
    def expert_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action of every expert [B, K, A]."""
        return self.experts.actions(obs)

    @staticmethod
    def _clamped_log(probs: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(probs.dtype).eps
        probs = probs / probs.sum(-1, keepdim=True)
        return torch.log(probs.clamp(eps, 1.0 - eps))

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log g(x)[K*] with K* the L1-nearest expert action (first index wins ties)."""
        probs = self._gate_probs(obs, update_norm=True)
        nearest = (actions.unsqueeze(1) - self.experts(obs)).abs().sum(-1).argmin(-1)
        return self._clamped_log(probs).gather(-1, nearest.unsqueeze(-1)).squeeze(-1)

    @torch.inference_mode()
    def get_action_and_log_prob(
        self, obs: torch.Tensor, deterministic: bool = False, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        probs = self._gate_probs(obs, update_norm=False)
        index = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        log_p = self._clamped_log(probs).gather(-1, index.unsqueeze(-1)).squeeze(-1)
        return self.experts.act(obs, index), log_p

    @torch.inference_mode()
    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        return self.experts.act(obs, self._gate_probs(obs, update_norm=False).argmax(-1))

    def entropy(self, obs: torch.Tensor) -> torch.Tensor:
        probs = self._gate_probs(obs, update_norm=False)
        return -(probs * self._clamped_log(probs)).sum(-1)

"""Fast deterministic actions for small batches: the acting path of ``load_policy(...).mean_action``.

At batch 1 every weight of a network is read once per call for a single multiply-add, so a call costs
about (bytes of weights) / (memory bandwidth). The paper Lattice policy holds 7.6 M float32 weights
(30.5 MB), more than this machine's share of the L3 cache, so each call streams them from DRAM. Through
``nn.Linear`` (MKL sgemv) that runs at about half the rate of a plain read of the same memory (1.9 ms
idle); the kernels here run close to the plain read (docs/performance.md, "Policy inference"):

* each network (normalizer, hidden layers, head) is packed once into one contiguous float32 array, every
  weight matrix stored transposed ([in, out]) and followed by its bias, so a layer is a sequence of
  vectorised row updates ``y += W^T[i] x[i]`` over the outputs, then SiLU; the array lives in 2 MiB huge
  pages where the OS allows (fewer TLB misses while streaming);
* no torch dispatch, autograd, module calls or distribution objects on the path;
* MoE: the gate, then only the chosen expert of each row.

Faithful in float32: the normalizer is the same arithmetic as ``RunningNorm.normalize`` (bit for bit); the
matrix products add the same terms as BLAS in another order (differences ~1e-7 relative). The packed arrays
are a snapshot: pack again after changing the module's weights. Batches above ``MAX_FAST_BATCH`` rows are
left to the torch modules (there the products are compute bound and BLAS wins).
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence

import numba
import numpy as np
import torch
from torch import nn

from kinesis_training.normalizer import RunningNorm
from kinesis_training.policies import Actor, GaussianActor, LatticeActor, MoEActor

MAX_FAST_BATCH = 8
"""Largest batch the kernels serve: about where BLAS (compute bound from there) catches up on the paper networks."""

BLOCK = 16
"""Rows of W^T combined per pass over a layer's outputs (16 measured faster than 4, 8, 12, 24 or 32 on Zen 4)."""

_HUGE_PAGE = 2 << 20


def _aligned_float32(size: int) -> np.ndarray:
    """A zeroed float32 array of `size`, 2 MiB aligned and advised into transparent huge pages (Linux)."""
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(size, np.float32)
    buffer = mmap.mmap(-1, size * 4 + _HUGE_PAGE)
    buffer.madvise(mmap.MADV_HUGEPAGE)
    whole = np.frombuffer(buffer, np.float32)
    start = (-whole.ctypes.data % _HUGE_PAGE) // 4
    return whole[start : start + size]


def _kernel(function):
    """``function`` compiled by numba like ``kinesis_tasks.jit.kernel``, but with a*b+c contracted into one
    fused multiply-add (no reassociation): half the instructions in the inner loop, and one rounding less."""
    options = dict(error_model="numpy", fastmath={"contract"})
    try:
        return numba.njit(cache=True, **options)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **options)(function)


@_kernel
def _affine(params: np.ndarray, start: int, x: np.ndarray, n_in: int, n_out: int, silu: bool, y: np.ndarray) -> None:
    """y[r, :n_out] = act(x[r, :n_in] @ W^T + b) for every row r, with W^T [n_in, n_out] then b at params[start:].

    ``BLOCK`` rows of W^T per pass over the outputs, so each y[j] is loaded and stored once per BLOCK weights.
    """
    rows = x.shape[0]
    bias = params[start + n_in * n_out : start + (n_in + 1) * n_out]
    for r in range(rows):
        y[r, :n_out] = bias
    i = 0
    while i + BLOCK <= n_in:
        block = params[start + i * n_out : start + (i + BLOCK) * n_out].reshape(BLOCK, n_out)
        for r in range(rows):
            xs = x[r, i : i + BLOCK]
            out = y[r]
            for j in range(n_out):
                acc = out[j]
                for k in range(BLOCK):
                    acc += block[k, j] * xs[k]
                out[j] = acc
        i += BLOCK
    for k in range(i, n_in):
        weights = params[start + k * n_out : start + (k + 1) * n_out]
        for r in range(rows):
            xk = x[r, k]
            out = y[r]
            for j in range(n_out):
                out[j] += weights[j] * xk
    if silu:
        one = np.float32(1.0)
        for r in range(rows):
            out = y[r]
            for j in range(n_out):
                out[j] = out[j] / (one + np.exp(-out[j]))


@_kernel
def _mlp_forward(
    params: np.ndarray, dims: np.ndarray, mean: np.ndarray, denom: np.ndarray, clip: float,
    obs: np.ndarray, work_a: np.ndarray, work_b: np.ndarray, out: np.ndarray,
) -> None:
    """out = head(silu(...silu(L0(clip((obs - mean) / denom))))) for obs [B, dims[0]] -> out [B, dims[-1]]."""
    rows, n0 = obs.shape
    for r in range(rows):
        for i in range(n0):
            work_a[r, i] = min(max((obs[r, i] - mean[i]) / denom[i], -clip), clip)
    src, dst = work_a, work_b
    start = 0
    last = dims.shape[0] - 2
    for k in range(last + 1):
        n_in, n_out = dims[k], dims[k + 1]
        if k == last:
            _affine(params, start, src, n_in, n_out, False, out)
        else:
            _affine(params, start, src, n_in, n_out, True, dst)
            src, dst = dst, src
        start += (n_in + 1) * n_out


class PackedMLP:
    """Normalizer, SiLU hidden layers and linear head of one network packed for the kernels.

    ``PackedMLP(norm, layers)(obs [B, in]) -> [B, out]`` equals ``head(MLP(norm.normalize(obs)))`` with
    ``layers`` = the MLP's Linear layers followed by the head.
    """

    def __init__(self, norm: RunningNorm, layers: Sequence[nn.Linear]) -> None:
        weights = [layer.weight.detach().to(torch.float32).cpu() for layer in layers]
        biases = [layer.bias.detach().to(torch.float32).cpu() for layer in layers]
        self.dims = np.array([weights[0].shape[1], *(w.shape[0] for w in weights)], np.int64)
        self.params = _aligned_float32(sum(w.numel() + b.numel() for w, b in zip(weights, biases)))
        start = 0
        for w, b in zip(weights, biases):
            n_out, n_in = w.shape
            self.params[start : start + n_in * n_out] = w.T.numpy().reshape(-1)
            self.params[start + n_in * n_out : start + (n_in + 1) * n_out] = b.numpy()
            start += (n_in + 1) * n_out
        self.params.flags.writeable = False
        if int(norm.n) == 0:  # RunningNorm.normalize is the identity; (x - 0) / 1 clipped at inf is exactly that
            self.mean = np.zeros(norm.dim, np.float32)
            self.denom = np.ones(norm.dim, np.float32)
            self.clip = np.float32(np.inf)
        else:
            self.mean = norm.mean.detach().cpu().numpy().copy()
            self.denom = (norm.std + norm.eps).detach().cpu().numpy()  # the sum RunningNorm.normalize divides by
            self.clip = np.float32(norm.clip)
        self.in_dim, self.out_dim = int(self.dims[0]), int(self.dims[-1])

    @property
    def nbytes(self) -> int:
        """Bytes of weights and biases one call reads."""
        return self.params.nbytes

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs [B, in] float32 C-contiguous -> [B, out] float32."""
        rows = obs.shape[0]
        width = int(self.dims.max())
        work_a = np.empty((rows, width), np.float32)
        work_b = np.empty((rows, width), np.float32)
        out = np.empty((rows, self.out_dim), np.float32)
        _mlp_forward(self.params, self.dims, self.mean, self.denom, self.clip, obs, work_a, work_b, out)
        return out


class FastMeanAction:
    """``Actor.mean_action`` on numpy batches of at most ``MAX_FAST_BATCH`` rows, from a snapshot of the actor.

    Gaussian and Lattice: the mean network. MoE: the gate picks the expert with the largest logit (= the largest
    softmax probability, as ``MoEActor.mean_action``) and only that expert runs.
    """

    def __init__(self, actor: Actor) -> None:
        if isinstance(actor, (GaussianActor, LatticeActor)):
            self.gate = None
            self.experts = [PackedMLP(actor.norm, [*actor.net.affine_layers, actor.action_mean])]
        elif isinstance(actor, MoEActor):
            gate_mlp, gate_head = actor.gate
            self.gate = PackedMLP(actor.norm, [*gate_mlp.affine_layers, gate_head])
            self.experts = [PackedMLP(norm, [*mlp.affine_layers, head]) for norm, mlp, head in actor.experts.experts]
        else:
            raise ValueError(f"no fast path for actor type {type(actor).__name__}")
        self.obs_dim, self.action_dim = actor.obs_dim, actor.action_dim

    def _rows(self, obs: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(obs, np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.obs_dim or not 0 < rows.shape[0] <= MAX_FAST_BATCH:
            raise ValueError(
                f"obs must have shape [B, {self.obs_dim}] with 1 <= B <= {MAX_FAST_BATCH}, got {np.shape(obs)}"
            )
        return rows

    def expert_choice(self, obs: np.ndarray) -> np.ndarray:
        """MoE: index of the most probable expert of each row of obs [B, obs_dim] -> [B] (int64)."""
        if self.gate is None:
            raise ValueError("expert_choice needs a mixture-of-experts actor")
        return self.gate(self._rows(obs)).argmax(axis=1)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs [B, obs_dim] (1 <= B <= MAX_FAST_BATCH) -> actions [B, action_dim] float32."""
        obs = self._rows(obs)
        if self.gate is None:
            return self.experts[0](obs)
        choice = self.expert_choice(obs)
        if (choice == choice[0]).all():
            return self.experts[choice[0]](obs)
        actions = np.empty((obs.shape[0], self.action_dim), np.float32)
        for expert in np.unique(choice):
            rows = choice == expert
            actions[rows] = self.experts[expert](obs[rows])
        return actions

"""Fast deterministic actions for small batches: the acting path of ``load_policy(...).mean_action``.

At batch 1 every weight of a network is read once per call for a single multiply-add, so a call costs
about (bytes of weights) / (memory bandwidth). The paper Lattice policy holds 7.6 M float32 weights
(30.5 MB), more than this machine's share of the L3 cache, so each call streams them from DRAM. Through
``nn.Linear`` (MKL sgemv) that runs at about half the rate of a plain read of the same memory (1.9 ms
idle); the kernels here run close to the plain read (docs/performance.md, "Policy inference"):

* each network is packed once: its weight matrices row-major ([out, in], rows padded to whole cache lines)
  in one array in 2 MiB huge pages where the OS allows (fewer TLB misses while streaming), biases and
  normalizer statistics apart; a layer is one dot product per output over one sequential stream of weights,
  then bias and SiLU;
* no torch dispatch, autograd, module calls or distribution objects on the path;
* MoE: the gate, then only the chosen expert of each row.

Faithful in float32: the normalizer is the same arithmetic as ``RunningNorm.normalize`` (bit for bit); the
matrix products add the same terms as BLAS in another order (differences ~1e-7 relative). Opt-in
``weights="float16"`` stores the weight matrices rounded to float16 (half the bytes, about half the time;
activations and sums stay float32; actions ~1e-4 relative from the float32 network). The packed arrays are a
snapshot: pack again after changing the module's weights. Batches above ``MAX_FAST_BATCH`` rows are left to
the torch modules (there the products are compute bound and BLAS wins).
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.extending import intrinsic
from torch import nn

from kinesis_training.normalizer import RunningNorm
from kinesis_training.policies import Actor, GaussianActor, LatticeActor, MoEActor

MAX_FAST_BATCH = 8
"""Largest batch the kernels serve: about where BLAS (compute bound from there) catches up on the paper networks."""

ROW_CHUNK = 16
"""Weight rows taken per pass over the batch's observations: 16 rows (at most 128 KiB for the paper networks) stay
in L1/L2 while each observation uses them, so a call reads every weight from memory once (16 beat 4 and 64)."""

WEIGHT_TYPES = {"float32": np.float32, "float16": np.uint16}
"""Weight storage choices -> array dtype: float16 weights are kept as their IEEE bit patterns (numba has no CPU
float16 type) and widened to float32 as they are loaded."""

FLOAT16_MAX = float(np.finfo(np.float16).max)

_HUGE_PAGE = 2 << 20
_LINE = 64  # bytes: each weight row starts on a cache line


def _aligned_zeros(size: int, dtype: type) -> np.ndarray:
    """A zeroed array of `size` items, 2 MiB aligned and advised into transparent huge pages (Linux)."""
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(size, dtype)
    itemsize = np.dtype(dtype).itemsize
    buffer = mmap.mmap(-1, size * itemsize + _HUGE_PAGE)
    buffer.madvise(mmap.MADV_HUGEPAGE)
    whole = np.frombuffer(buffer, dtype)
    start = (-whole.ctypes.data % _HUGE_PAGE) // itemsize
    return whole[start : start + size]


def _kernel(*fastmath: str):
    """Decorator: the function compiled by numba like ``kinesis_tasks.jit.kernel``, with a*b+c contracted into one
    fused multiply-add (half the instructions, one rounding less) and the extra fastmath ``flags`` given."""
    options = dict(error_model="numpy", fastmath={"contract", *fastmath})

    def compile_kernel(function):
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # numba: "cannot cache function ...: no locator available"
            return numba.njit(cache=False, **options)(function)

    return compile_kernel


@intrinsic
def _as_float32(typingctx, weight):
    """A stored weight as float32: a float32 as it is, a uint16 as the IEEE half it holds the bits of (exact;
    LLVM emits F16C ``vcvtph2ps``, 16 weights per instruction once vectorised)."""
    if weight == types.float32:
        return types.float32(weight), lambda context, builder, signature, args: args[0]
    if weight == types.uint16:
        def widen(context, builder, signature, args):
            return builder.fpext(builder.bitcast(args[0], ir.HalfType()), ir.FloatType())

        return types.float32(weight), widen
    return None


@_kernel("reassoc")
def _dot_rows(weights: np.ndarray, start: int, stride: int, n_in: int, first: int, stop: int,
              x: np.ndarray, y: np.ndarray) -> None:
    """y[j] = sum_i W[j, i] x[i] for first <= j < stop, row j of W being weights[start + j * stride:][:n_in].

    One sequential stream of weights; reassociating the sum (only here) lets LLVM keep four 16-lane partial sums.
    """
    for j in range(first, stop):
        row = weights[start + j * stride : start + j * stride + n_in]
        acc = np.float32(0.0)
        for i in range(n_in):
            acc += _as_float32(row[i]) * x[i]
        y[j] = acc


@_kernel()
def _add_bias(bias: np.ndarray, silu: bool, y: np.ndarray) -> None:
    """y[:n] = act(y[:n] + bias), n = len(bias), act = SiLU or identity."""
    one = np.float32(1.0)
    for j in range(bias.shape[0]):
        v = y[j] + bias[j]
        y[j] = v / (one + np.exp(-v)) if silu else v


@_kernel()
def _mlp_forward(
    weights: np.ndarray, strides: np.ndarray, biases: np.ndarray, dims: np.ndarray, mean: np.ndarray,
    denom: np.ndarray, clip: float, obs: np.ndarray, work_a: np.ndarray, work_b: np.ndarray, out: np.ndarray,
) -> None:
    """out = head(silu(...silu(L0(clip((obs - mean) / denom))))) for obs [B, dims[0]] -> out [B, dims[-1]]."""
    rows, n0 = obs.shape
    for r in range(rows):
        for i in range(n0):
            work_a[r, i] = min(max((obs[r, i] - mean[i]) / denom[i], -clip), clip)
    src, dst = work_a, work_b
    start = bias_start = 0
    last = dims.shape[0] - 2
    one = np.float32(1.0)
    for k in range(last + 1):
        n_in, n_out, stride = dims[k], dims[k + 1], strides[k]
        y = out if k == last else dst
        for first in range(0, n_out, ROW_CHUNK):
            stop = min(first + ROW_CHUNK, n_out)
            for r in range(rows):
                _dot_rows(weights, start, stride, n_in, first, stop, src[r], y[r])
        for r in range(rows):
            _add_bias(biases[bias_start : bias_start + n_out], k != last, y[r])
        if k != last:
            src, dst = dst, src
        start += stride * n_out
        bias_start += n_out


def check_weights(weights: str) -> str:
    """``weights`` if it names a weight storage ("float32" or "float16"), else a ValueError."""
    if weights not in WEIGHT_TYPES:
        raise ValueError(f"weights must be one of {sorted(WEIGHT_TYPES)}, got {weights!r}")
    return weights


def _float16_bits(matrix: np.ndarray, layer: int) -> np.ndarray:
    """IEEE half bit patterns of a float32 matrix (round to nearest even); ValueError if a weight is too large."""
    too_large = np.abs(matrix) > FLOAT16_MAX
    if too_large.any():
        raise ValueError(f"weights='float16': layer {layer} has weights beyond the float16 range (|w| <= "
                         f"{FLOAT16_MAX:g}), largest |w| = {np.abs(matrix).max():g}; use weights='float32'")
    return matrix.astype(np.float16).view(np.uint16)


class PackedMLP:
    """Normalizer, SiLU hidden layers and linear head of one network packed for the kernels.

    ``PackedMLP(norm, layers)(obs [B, in]) -> [B, out]`` equals ``head(MLP(norm.normalize(obs)))`` with
    ``layers`` = the MLP's Linear layers followed by the head. ``weights="float16"`` stores the weight matrices
    rounded to float16 (half the bytes per call); biases, normalizer, activations and sums stay float32. A weight
    beyond the float16 range (|w| > 65504) is a ValueError.
    """

    def __init__(self, norm: RunningNorm, layers: Sequence[nn.Linear], weights: str = "float32") -> None:
        self.weights = check_weights(weights)
        matrices = [layer.weight.detach().to(torch.float32).cpu().numpy() for layer in layers]
        self.dims = np.array([matrices[0].shape[1], *(w.shape[0] for w in matrices)], np.int64)
        dtype = WEIGHT_TYPES[weights]
        per_line = _LINE // np.dtype(dtype).itemsize
        self.strides = -(-self.dims[:-1] // per_line) * per_line  # row length padded to whole cache lines
        self.params = _aligned_zeros(int((self.strides * self.dims[1:]).sum()), dtype)
        start = 0
        for index, (matrix, stride) in enumerate(zip(matrices, self.strides)):
            n_out, n_in = matrix.shape
            rows = self.params[start : start + stride * n_out].reshape(n_out, stride)
            rows[:, :n_in] = matrix if weights == "float32" else _float16_bits(matrix, index)
            start += stride * n_out
        self.params.flags.writeable = False
        self.biases = np.concatenate([layer.bias.detach().to(torch.float32).cpu().numpy() for layer in layers])
        self.n_weights = sum(w.size for w in matrices)
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
        return self.n_weights * self.params.itemsize + self.biases.nbytes

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """obs [B, in] float32 C-contiguous -> [B, out] float32."""
        rows = obs.shape[0]
        width = int(self.dims.max())
        work_a = np.empty((rows, width), np.float32)
        work_b = np.empty((rows, width), np.float32)
        out = np.empty((rows, self.out_dim), np.float32)
        _mlp_forward(self.params, self.strides, self.biases, self.dims, self.mean, self.denom, self.clip, obs,
                     work_a, work_b, out)
        return out


class FastMeanAction:
    """``Actor.mean_action`` on numpy batches of at most ``MAX_FAST_BATCH`` rows, from a snapshot of the actor.

    Gaussian and Lattice: the mean network. MoE: the gate picks the expert with the largest logit (= the largest
    softmax probability, as ``MoEActor.mean_action``) and only that expert runs. ``weights``: "float32" (the
    network as it is) or "float16" (weight matrices rounded to float16, see ``PackedMLP``).
    """

    def __init__(self, actor: Actor, weights: str = "float32") -> None:
        if isinstance(actor, (GaussianActor, LatticeActor)):
            self.gate = None
            self.experts = [PackedMLP(actor.norm, [*actor.net.affine_layers, actor.action_mean], weights)]
        elif isinstance(actor, MoEActor):
            gate_mlp, gate_head = actor.gate
            self.gate = PackedMLP(actor.norm, [*gate_mlp.affine_layers, gate_head], weights)
            self.experts = [PackedMLP(norm, [*mlp.affine_layers, head], weights)
                            for norm, mlp, head in actor.experts.experts]
        else:
            raise ValueError(f"no fast path for actor type {type(actor).__name__}")
        self.weights = weights
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

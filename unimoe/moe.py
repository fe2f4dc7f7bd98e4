"""Uni-MoE-2 dynamic-capacity MoE block (architecture report §1.2, §1.5-§1.7).

Inference follows the released forward exactly:

- ``k_t``: smallest k whose sorted softmax mass over routed + null logits reaches ``top_p`` (Top-P), or
  ``mlp_dynamic_top_k`` when ``top_p == 0``;
- ``k_t`` rounds of argmax over the not-yet-chosen dynamic logits; each pick's multiplier is the softmax,
  at the pick, over the experts within a 2·ε relative band of it (1.0 unless near-ties); multipliers are
  renormalised over the token's picks;
- global weights: softmax over the chosen dynamic + all shared logits; the dynamic mass is split by the
  multipliers; null picks keep their weight and compute nothing (the routed output shrinks);
- aux loss ``N_d · Σ_j f_j · P̄_j`` with P a softmax over the chosen dynamic experts only.

Training (``self.training``) adds what the released Uni-MoE-2 block does there:

- ``fp32_gate``: router logits from fp32 copies of the input and gate weight (inference keeps the model
  dtype, as released);
- ``input_jitter_noise``: the gate input is multiplied by ``U(1-ε, 1+ε)``. Released code does this in place,
  so the experts see the jittered input too unless the gate works on an fp32 copy (fp32_gate with a
  bf16/fp16 model); we reproduce that;
- unless ``ignore_differentiable_router``, the GRIN/SparseMixer selection (§1.5): each round samples the
  pick from the band softmax (Gumbel-max), its forward multiplier is ``c·ω`` with ``c`` the band softmax at
  the pick and ``ω = 1`` if the pick is the band argmax or with probability 0.25, else 1/3; the backward
  pass gives the logits ``c·g·(onehot(pick) − softmax_band)``, i.e. the gradient of ``c`` alone: ``ω`` is
  straight-through and the gathered multiplier gets no other gradient. With the flag set, the selection is
  the inference one and gradients flow through the band softmax by autograd (DCMoE's behaviour);
- ``token_drop`` (§1.7): per dynamic column (null included) at most
  ``capacity = min(S, max(ceil(S / N_d · capacity_factor), min_capacity))`` tokens, S counting pads;
  ``drop_policy="probs"`` keeps the highest raw logits, ``"position"`` the earliest tokens and caps the
  shared columns too (a released bug, kept because it is what ``position`` means there). The multipliers
  are re-masked and renormalised; the aux loss uses the selection before dropping. Dropless by default,
  and never at inference.

Routing math (Top-P softmax and count, band, global softmax) runs in the logits' dtype, as released: the
model's dtype at inference (bf16 for the released checkpoints), fp32 in training with ``fp32_gate``. In bf16 the
Top-P count then differs from an fp32 count on about 1.5% of tokens; ``router_fp32`` computes it in fp32 instead.
The sampled training selection always works in at least fp32.

Random draws, in this order, from torch's global generator (so a seed fixes them): jitter ``[S, d]``,
Gumbel uniforms ``[K, S, N_d]``, ω coins ``[K, S, 1]``. Eval mode draws nothing.

Computation: the (token, routed pick) pairs are sorted by expert and every expert runs once on its contiguous
rows (dropless, null picks skipped), so its weights are read once per call; decode-sized GEMMs without
autograd take a streaming kernel on the CPU, else oneDNN's or MKL's (:func:`linear`). At prefill on several
CPU threads without autograd the experts run side by side, one thread each (:mod:`unimoe.expert_threads`).
The shared experts run on every token. ``static_shapes=True`` (the decode step of :mod:`unimoe.decode`) computes
the same sum with shapes fixed by the input alone: no host sync, so it compiles whole and CUDA graphs capture it.

Parameters: ``gate`` (``[E, d]``, columns routed | null | shared), stacked experts ``routed_experts.*``
``[N_r, ...]`` and ``shared_experts.*`` ``[N_s, ...]``; :mod:`unimoe.checkpoint` maps them to the released
per-expert keys.

Contract the decoder, the probes and the checkpoint code rely on: ``forward(hidden [B, T, d],
attention_mask [B, T] | None, token_weights [B, T] | None) -> (out [B, T, d], RoutingInfo)`` with
``expert_ids``/``expert_weights`` ``[B, T, K]``, ``num_active``/``null_chosen`` ``[B, T]`` and ``aux_loss``; no
computed (non-persistent) buffers, because checkpoints are loaded into a model built on the meta device.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.config import UniMoEConfig
from unimoe.expert_threads import expert_threads


@dataclass
class RoutingInfo:
    """Routing of one layer for a ``[B, T]`` chunk. ``expert_ids`` are dynamic columns (routed ids
    ``< n_routed``, then null ids), -1 for unused slots and padded tokens. The derived statistics are
    computed on access only, so generation that does not look at them does not pay for them."""

    expert_ids: torch.Tensor  # [B, T, K] long
    expert_weights: torch.Tensor  # [B, T, K] global weight of each pick (0 for unused slots)
    n_routed: int
    router_logits: torch.Tensor  # [S, N_d] dynamic (routed + null) logits
    aux_weights: torch.Tensor  # [S] token weights of the aux loss (0 for pads)
    aux_expert_ids: torch.Tensor | None = None  # [B, T, K] selection before token dropping, when it differs

    @property
    def num_active(self) -> torch.Tensor:
        """Real routed experts computed per token (null picks excluded)."""
        return ((self.expert_ids >= 0) & (self.expert_ids < self.n_routed)).sum(-1)

    @property
    def null_chosen(self) -> torch.Tensor:
        return (self.expert_ids >= self.n_routed).any(-1)

    @property
    def aux_loss(self) -> torch.Tensor:
        """``N_d · Σ_j f_j · P̄_j`` with P a softmax over each token's chosen dynamic experts (§1.6), taken
        before token dropping."""
        ids = self.expert_ids if self.aux_expert_ids is None else self.aux_expert_ids
        ids = ids.reshape(-1, ids.shape[-1])
        n_dynamic = self.router_logits.shape[-1]
        chosen = torch.zeros_like(self.router_logits, dtype=torch.long).scatter_add(1, ids.clamp(min=0), (ids >= 0).long()) > 0
        logits = self.router_logits.float().masked_fill(~chosen, torch.finfo(torch.float32).min)
        w = self.aux_weights.float()[:, None]
        total = w.sum().clamp(min=1e-9)
        f = (w * chosen).sum(0) / total
        p_mean = (w * torch.softmax(logits, dim=-1)).sum(0) / total
        return n_dynamic * (f * p_mean).sum()


_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
SMALL_ROWS = 16  # at most this many rows: decode-sized GEMMs, bound by streaming the weight once

# Decode-sized ``x @ w.T`` on the CPU: stream W once, 4 of its rows at a time, each against every row of x (groups
# of 4 rows: at most 16 accumulators), with a software prefetch to L2 8 W-rows ahead. The stock kernels read the
# weight at 14-18 GB/s for 1 row and far slower for 2-16 rows (oneDNN copies/transposes B blocks, MKL's small-M
# sgemm is slower still); this reads it at about the speed of ``sum()`` for 1-3 rows and within 1.3x of it for 8
# (bench/moe_layer.py decode rows). With T > 1 threads each thread streams its own contiguous slice of W's rows in
# an OpenMP region of torch's own runtime (the library links libgomp.so.1, the copy torch already loaded), so the
# workers torch keeps spinning after its ops take the slices at once instead of competing with a second pool.
# Compiled once by the system C compiler.
_ROWS_GEMV_SRC = r"""
#include <immintrin.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#define DEF(R, M) static void b##R##_##M(const float* x, const float* w, float* y, int64_t K, int64_t ldy) { \
    __m512 a[R][M]; \
    for (int r = 0; r < R; r++) for (int i = 0; i < M; i++) a[r][i] = _mm512_setzero_ps(); \
    for (int64_t k = 0; k < K; k += 16) { \
        __m512 v[R]; \
        for (int r = 0; r < R; r++) { \
            _mm_prefetch((const char*)(w + r * K + k + 8 * K), _MM_HINT_T1); \
            v[r] = _mm512_loadu_ps(w + r * K + k); } \
        for (int i = 0; i < M; i++) { __m512 xv = _mm512_loadu_ps(x + i * K + k); \
            for (int r = 0; r < R; r++) a[r][i] = _mm512_fmadd_ps(v[r], xv, a[r][i]); } } \
    for (int r = 0; r < R; r++) for (int i = 0; i < M; i++) y[i * ldy + r] = _mm512_reduce_add_ps(a[r][i]); }
DEF(1, 1) DEF(1, 2) DEF(1, 3) DEF(1, 4) DEF(4, 1) DEF(4, 2) DEF(4, 3) DEF(4, 4)
typedef void (*blk)(const float*, const float*, float*, int64_t, int64_t);
static const blk four[5] = {0, b4_1, b4_2, b4_3, b4_4}, one[5] = {0, b1_1, b1_2, b1_3, b1_4};
/* y[:, :N] (row stride ldy) = x [m, K] @ W [N, K]^T */
static void slice(const float* x, const float* W, float* y, int64_t m, int64_t N, int64_t K, int64_t ldy) {
    int64_t n = 0;
    for (; n + 4 <= N; n += 4)
        for (int64_t i = 0; i < m; i += 4) four[m - i < 4 ? m - i : 4](x + i * K, W + n * K, y + i * ldy + n, K, ldy);
    for (; n < N; n++)
        for (int64_t i = 0; i < m; i += 4) one[m - i < 4 ? m - i : 4](x + i * K, W + n * K, y + i * ldy + n, K, ldy);
}
/* y [m, N] = x [m, K] @ W [N, K]^T, all contiguous fp32, K % 16 == 0; W's rows split over `threads` */
void rows_gemv(const float* x, const float* W, float* y, int64_t m, int64_t N, int64_t K, int threads) {
#ifdef _OPENMP
    if (threads > 1) {
        #pragma omp parallel num_threads(threads)
        {
            int64_t t = omp_get_thread_num(), T = omp_get_num_threads(), blocks = N / 4;
            int64_t n0 = 4 * (blocks * t / T), n1 = t == T - 1 ? N : 4 * (blocks * (t + 1) / T);
            slice(x, W + n0 * K, y + n0, m, n1 - n0, K, N);
        }
        return;
    }
#endif
    slice(x, W, y, m, N, K, N);
}
"""
_rows_gemv_fn = False  # not tried yet; then the ctypes function, or None when unavailable
_rows_gemv_parallel = False  # whether that build splits W over threads in torch's own OpenMP runtime
DECODE_KERNEL = True  # set ``unimoe.moe.DECODE_KERNEL = False`` to decode with the stock kernels only
PARALLEL_MIN_WEIGHT = 2**18  # elements of W below which one thread streams it (a parallel region costs a few µs)


def _build_rows_gemv(cc: str, flags: list[str]):
    """Compile the kernel with ``flags`` into a cache file named by the source's hash (written to a temporary
    name and renamed, so concurrent builds are safe) and load it."""
    import ctypes
    import hashlib
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    tag = hashlib.sha256((_ROWS_GEMV_SRC + " ".join(flags)).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "unimoe"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        cache = Path(tempfile.gettempdir())
    lib = cache / f"rows_gemv-{tag}.so"
    if not lib.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            src = Path(tmp) / "rows_gemv.c"
            src.write_text(_ROWS_GEMV_SRC)
            subprocess.run([cc, *flags, "-o", str(Path(tmp) / "k.so"), str(src)], check=True, capture_output=True,
                           timeout=120)
            os.replace(Path(tmp) / "k.so", lib)
    fn = ctypes.CDLL(str(lib)).rows_gemv
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 3 + [ctypes.c_int]
    return fn


def _openmp_runtimes() -> set[str] | None:
    """Paths of the OpenMP runtimes mapped into this process (None where /proc cannot tell)."""
    try:
        with open("/proc/self/maps") as maps:
            return {line.split()[-1] for line in maps
                    if line.rstrip().rsplit("/", 1)[-1].startswith(("libgomp", "libiomp", "libomp"))}
    except OSError:
        return None


def _rows_gemv():
    """The compiled kernel, or None: not an AVX-512 CPU, no C compiler, ``DECODE_KERNEL`` off, or a failed
    build (then the stock kernels serve, with the same results to fp32 rounding). Built with OpenMP when the
    compiler has it; multi-threaded only when loading it mapped no OpenMP runtime of its own: its libgomp.so.1
    then resolved to the copy torch had loaded, so its threads are torch's (two runtimes would each keep a pool
    spinning on the same cores). Other packages' private runtimes (scikit-learn, OpenCV) do not matter."""
    global _rows_gemv_fn, _rows_gemv_parallel
    if not DECODE_KERNEL:
        return None
    if _rows_gemv_fn is not False:
        return _rows_gemv_fn
    _rows_gemv_fn = None
    import os
    import shutil
    import sys

    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not sys.platform.startswith("linux") or cc is None or torch.backends.cpu.get_cpu_capability() != "AVX512":
        return None
    flags = ["-O3", "-funroll-loops", "-mavx512f", "-mfma", "-shared", "-fPIC"]
    errors = []
    runtimes = _openmp_runtimes()
    for extra in (["-fopenmp"], []):
        try:
            _rows_gemv_fn = _build_rows_gemv(cc, flags + extra)
        except Exception as error:  # no OpenMP in this compiler, or no working compiler at all
            errors.append(error)
            continue
        _rows_gemv_parallel = (bool(extra) and "OpenMP" in torch.__config__.parallel_info()
                               and runtimes is not None and _openmp_runtimes() == runtimes)
        return _rows_gemv_fn
    import warnings

    warnings.warn(f"unimoe: decode kernel unavailable, using the stock ones ({errors[-1]!r})", RuntimeWarning,
                  stacklevel=2)
    return None


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x @ w.T``. For a few fp32 rows on the CPU, without autograd (decode): the streaming kernel above (on
    every thread torch uses, when its build can share torch's OpenMP runtime); otherwise oneDNN's kernel, or MKL
    on ``w @ x.T`` for exactly 2 rows, which stream the weight faster than MKL's small-M sgemm behind
    ``F.linear`` (bench/moe_layer.py decode rows). Everything else is ``F.linear``."""
    if (x.shape[0] <= SMALL_ROWS and x.dtype == w.dtype == torch.float32 and x.device.type == w.device.type == "cpu"
            and w.is_contiguous() and not (torch.is_grad_enabled() and (x.requires_grad or w.requires_grad))):
        x = x.contiguous()
        threads = torch.get_num_threads()
        if w.shape[1] % 16 == 0 and (kernel := _rows_gemv()) is not None and (threads == 1 or _rows_gemv_parallel):
            y = x.new_empty(x.shape[0], w.shape[0])
            kernel(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.shape[0], w.shape[0], w.shape[1],
                   threads if w.numel() >= PARALLEL_MIN_WEIGHT else 1)
            return y
        if _ONEDNN_LINEAR is not None:
            if x.shape[0] == 2:  # x stays contiguous and is transposed by the flag: MKL's fast layout here
                return torch.mm(w, x.T).T
            return _ONEDNN_LINEAR(x, w, None, "none", [], "")
    return F.linear(x, w)


PARALLEL_MIN_ROWS = 64  # fewer (token, expert) rows than this: one expert after another, each GEMM threaded


def _cpu_inference(x: torch.Tensor) -> bool:
    """Whether expert GEMMs on ``x`` may go to :mod:`unimoe.expert_threads`: CPU, no autograd, no autocast."""
    return x.device.type == "cpu" and not torch.is_grad_enabled() and not torch.is_autocast_enabled("cpu")


_grouped_mm = getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def _grouped_mm_serves(x: torch.Tensor) -> bool:
    """Whether torch's grouped GEMM takes ``x``, compiled too: bf16 on the CPU or on CUDA (where torch's kernel
    needs Hopper or later). No device query: a compiled graph could not hold one."""
    return _grouped_mm is not None and x.dtype == torch.bfloat16 and x.device.type in ("cpu", "cuda")


class SwiGLUExperts(nn.Module):
    """``n`` SwiGLU FFNs stored stacked: ``down(silu(gate(x)) * up(x))`` without biases."""

    def __init__(self, n: int, dim: int, hidden: int):
        super().__init__()
        self.n, self.hidden = n, hidden
        self.gate_proj = nn.Parameter(torch.empty(n, hidden, dim))
        self.up_proj = nn.Parameter(torch.empty(n, hidden, dim))
        self.down_proj = nn.Parameter(torch.empty(n, dim, hidden))
        for p in (self.gate_proj, self.up_proj, self.down_proj):
            nn.init.normal_(p, std=0.02)

    def expert(self, e: int, x: torch.Tensor, mm=linear) -> torch.Tensor:
        """Expert ``e`` on the rows ``x [m, d]``: one read of each weight matrix for all rows. ``mm`` computes
        ``x @ w.T`` (``F.linear`` where the CPU decode kernel, a foreign call, must stay out of a compiled graph)."""
        return mm(F.silu(mm(x, self.gate_proj[e])) * mm(x, self.up_proj[e]), self.down_proj[e])

    def all_weighted(self, x: torch.Tensor, weights: torch.Tensor, mm=linear) -> torch.Tensor:
        """``Σ_e weights[:, e] · expert_e(x)`` for every token. A loop over the (one or two) experts of
        plain GEMMs: batched matmul is 2-3x slower than GEMV at decode sizes on the CPU."""
        out = self.expert(0, x, mm) * weights[:, :1]
        for e in range(1, weights.shape[1]):
            out = out + self.expert(e, x, mm) * weights[:, e : e + 1]
        return out

    def grouped(self, rows: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Expert ``e`` on rows ``offsets[e-1]:offsets[e]`` (int32 ends, ascending) of ``rows``, all experts in one
        grouped GEMM per projection; an expert with no rows is not read. Rows past ``offsets[-1]`` are undefined."""
        gate = _grouped_mm(rows, self.gate_proj.transpose(1, 2), offs=offsets)
        up = _grouped_mm(rows, self.up_proj.transpose(1, 2), offs=offsets)
        return _grouped_mm(F.silu(gate) * up, self.down_proj.transpose(1, 2), offs=offsets)


def _at_least_fp32(t: torch.Tensor) -> torch.Tensor:
    """fp32, or float64 when the block runs in float64 (gradcheck)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


class _SparseMixerGrad(torch.autograd.Function):
    """GRIN's ``mp``: forward ``c·ω``; backward ``∂/∂logits = c·g·(onehot(pick) − band softmax)``, nothing else."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, gates: torch.Tensor, pick: torch.Tensor, omega: torch.Tensor) -> torch.Tensor:
        c = gates.gather(1, pick)
        ctx.save_for_backward(gates, pick, c)
        return c * omega

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        gates, pick, c = ctx.saved_tensors
        g = grad * c
        return (-gates * g).scatter_add(1, pick, g), None, None, None


class DynamicMoE(nn.Module):
    def __init__(self, config: UniMoEConfig):
        super().__init__()
        self.n_routed = config.mlp_dynamic_expert_num
        self.n_dynamic = self.n_routed + config.mlp_dynamic_null_expert_num
        self.n_shared = config.mlp_fixed_expert_num
        self.top_p = config.mlp_dynamic_top_p
        self.top_k = int(config.mlp_dynamic_top_k)
        self.band = 2 * config.router_jitter_noise
        self.max_k = min(self.n_dynamic, self.top_k if self.top_p == 0 else self.n_dynamic)
        # training only (module docstring)
        self.input_jitter = config.input_jitter_noise
        self.sample_router = not config.ignore_differentiable_router
        self.fp32_gate = config.fp32_gate
        self.router_fp32 = config.router_fp32
        self.token_drop = config.token_drop
        self.drop_policy = config.drop_policy
        self.capacity_factor = config.capacity_factor
        self.min_capacity = config.min_capacity
        if self.drop_policy not in ("probs", "position"):
            raise ValueError(f"unknown drop_policy {self.drop_policy!r} (released: 'probs', 'position')")
        d = config.hidden_size
        self.gate = nn.Linear(d, self.n_dynamic + self.n_shared, bias=False)
        self.routed_experts = SwiGLUExperts(self.n_routed, d, config.dynamic_intermediate_size)
        self.shared_experts = SwiGLUExperts(self.n_shared, d, config.shared_intermediate_size) if self.n_shared else None

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, token_weights: torch.Tensor | None = None,
        static_shapes: bool = False,
    ) -> tuple[torch.Tensor, RoutingInfo]:
        b, t, d = hidden.shape
        x = hidden.reshape(-1, d)
        if self.training:
            x, logits = self._train_logits(x)
        else:
            logits = self.gate(x)
        dyn = logits[:, : self.n_dynamic]
        if self.training and self.sample_router:
            z, ids, live, mult = self._select_sampled(dyn)
        else:
            z, ids, live, mult = self._select(dyn)  # [S, K]: picked logits, ids, slot used, multipliers
        if attention_mask is not None:  # pads get no dynamic expert, only the shared ones
            live = live & attention_mask.reshape(-1, 1).bool()
            ids = ids.masked_fill(~live, -1)
        mult = mult * live
        mult = mult / (mult.sum(-1, keepdim=True) + 1e-6)

        shared_logits = self._routing_dtype(logits[:, self.n_dynamic :])
        aux_ids = shared_keep = None
        if self.training and self.token_drop:
            aux_ids = ids
            kept, shared_keep = self._drop(dyn, ids, live)
            live = live & kept
            ids = ids.masked_fill(~live, -1)
            mult = mult * live  # re-mask and renormalise (§1.7)
            mult = mult / (mult.sum(-1, keepdim=True) + 1e-6)

        # global weights: softmax over the chosen dynamic + all shared logits (§1.2 step 9)
        # finfo.min, not -inf (as released): a pad row with no shared experts has nothing left, and an
        # all -inf softmax would be NaN and poison the backward pass; its weights are zeroed by ``mult``
        unchosen = torch.finfo(z.dtype).min
        if shared_keep is not None:
            shared_logits = shared_logits.masked_fill(~shared_keep, unchosen)
        pi = torch.softmax(torch.cat([z.masked_fill(~live, unchosen), shared_logits], 1), -1)
        weights = (mult * pi[:, : self.max_k].sum(-1, keepdim=True)).to(x.dtype)
        shared_weights = pi[:, self.max_k :] if shared_keep is None else pi[:, self.max_k :] * shared_keep

        experts = self._experts_static if static_shapes else self._experts
        out = experts(x, ids, weights, shared_weights)
        aux_weights = token_weights if token_weights is not None else attention_mask
        aux_weights = torch.ones(x.shape[0], device=x.device) if aux_weights is None else aux_weights.reshape(-1)
        info = RoutingInfo(ids.view(b, t, -1), weights.view(b, t, -1), self.n_routed, dyn, aux_weights,
                           None if aux_ids is None else aux_ids.view(b, t, -1))
        return out.view(b, t, d), info

    # ---- routing
    def _routing_dtype(self, logits: torch.Tensor) -> torch.Tensor:
        """Routing math in the logits' dtype, as released; at least fp32 with ``router_fp32``."""
        return _at_least_fp32(logits) if self.router_fp32 else logits

    def _train_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(expert input, router logits) in training: fp32 gate and multiplicative input jitter (§1.2 step 1)."""
        gate_in = _at_least_fp32(x) if self.fp32_gate else x
        if self.input_jitter > 0:
            gate_in = gate_in * torch.empty_like(gate_in).uniform_(1.0 - self.input_jitter, 1.0 + self.input_jitter)
            if gate_in.dtype == x.dtype:  # released ``*=`` on the same tensor: the experts see the jitter too
                x = gate_in
        weight = _at_least_fp32(self.gate.weight) if self.fp32_gate else self.gate.weight
        return x, F.linear(gate_in, weight)

    def _top_p_count(self, z_sorted: torch.Tensor) -> torch.Tensor:
        """``k_t`` [S, 1]: smallest k whose sorted probability mass reaches top_p, or the fixed top_k."""
        if self.top_p == 0:
            return torch.full_like(z_sorted[:, :1], self.top_k, dtype=torch.long)
        mass = torch.softmax(z_sorted.detach(), dim=-1).cumsum(-1)
        return 1 + (mass < self.top_p).sum(-1, keepdim=True).clamp(max=self.n_dynamic - 1)

    def _select(self, dyn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-P slot count and the ``k_t`` rounds of argmax picks, from one sort of the dynamic logits.

        Round r picks the r-th largest logit, so the experts not yet chosen at round r are sorted positions
        >= r. The pick's multiplier is the softmax, at the pick, over those within the relative band.
        """
        z, order = self._routing_dtype(dyn).sort(dim=-1, descending=True)
        k = self._top_p_count(z)
        pick = z[:, : self.max_k, None]  # [S, K, 1]
        rel = (pick - z[:, None, :]) / torch.maximum(z.abs()[:, None, :], pick.abs()).clamp(min=1e-30)
        slot = torch.arange(self.n_dynamic, device=z.device)
        not_before = slot[: self.max_k, None] <= slot  # sorted position j is still unchosen at round r
        in_band = (rel <= self.band) & not_before
        band_mass = (torch.exp(z[:, None, :] - pick) * in_band).sum(-1)  # >= 1: the pick itself
        live = slot[: self.max_k] < k
        ids = order[:, : self.max_k].masked_fill(~live, -1)
        return z[:, : self.max_k], ids, live, 1.0 / band_mass

    def _select_sampled(self, dyn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training selection of Uni-MoE-2 (``sparsemixer`` with ``mp``, §1.2 step 4 and §1.5): each round
        samples the pick from the softmax over the band of the not-yet-chosen maximum."""
        z = _at_least_fp32(dyn)  # Gumbel noise drawn in bf16 would be coarse
        s, n = z.shape
        k = self._top_p_count(z.detach().sort(dim=-1, descending=True).values)
        gumbel = -torch.log(-torch.log(torch.rand(self.max_k, s, n, device=z.device, dtype=z.dtype)))
        coin = torch.rand(self.max_k, s, 1, device=z.device)
        free = torch.ones_like(z, dtype=torch.bool)
        zd = z.detach()
        picks, mults = [], []
        for r in range(self.max_k):
            top, best = zd.masked_fill(~free, float("-inf")).max(-1, keepdim=True)
            rel = (top - zd) / torch.maximum(zd.abs(), top.abs()).clamp(min=1e-30)
            band = free & (rel <= self.band)
            masked = zd.masked_fill(~band, float("-inf"))
            pick = (masked + gumbel[r]).argmax(-1, keepdim=True)
            omega = 1 / 3 + 2 / 3 * ((pick == best) | (coin[r] > 0.75)).to(z.dtype)
            mults.append(_SparseMixerGrad.apply(z, torch.softmax(masked, -1), pick, omega))
            picks.append(pick)
            free = free.scatter(1, pick, False)
        ids = torch.cat(picks, 1)
        live = torch.arange(self.max_k, device=z.device) < k
        return z.gather(1, ids), ids.masked_fill(~live, -1), live, torch.cat(mults, 1)

    def capacity(self, n_tokens: int) -> int:
        """Tokens each dynamic column may keep when dropping (§1.7)."""
        return min(n_tokens, max(math.ceil(n_tokens / self.n_dynamic * self.capacity_factor), self.min_capacity))

    def _drop(self, dyn: torch.Tensor, ids: torch.Tensor, live: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(slots kept [S, K], shared columns kept [S, N_s] or None) under the capacity (§1.7)."""
        s = ids.shape[0]
        cap = self.capacity(s)
        slots = ids.clamp(min=0)  # unused slots (-1) add nothing below
        routed = torch.zeros_like(dyn, dtype=torch.long).scatter_add(1, slots, live.long()) > 0  # [S, N_d]
        shared_keep = None
        if self.drop_policy == "probs":  # the `cap` highest raw logits among each column's tokens
            top = dyn.detach().masked_fill(~routed, float("-inf")).topk(cap, dim=0).indices
            keep = torch.zeros_like(routed).scatter(0, top, True) & routed
        else:  # "position": the first `cap` tokens of every column, shared columns (all tokens) included
            keep = routed & (routed.cumsum(0) <= cap)
            shared_keep = (torch.arange(s, device=ids.device) < cap)[:, None].expand(s, self.n_shared)
        return keep.gather(1, slots), shared_keep

    # ---- expert computation
    def _experts(self, x: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor,
                 shared_weights: torch.Tensor) -> torch.Tensor:
        """``Σ_picks weight · expert(x)`` over the real routed picks (null picks compute nothing), plus the
        shared experts on every token.

        Pairs (token, pick) are sorted by expert and each expert runs once on its contiguous group of rows,
        so its weights are read once per call (the decode floor) and its GEMMs have as many rows as
        possible (prefill). One ``.tolist()`` of the E group sizes is the only host sync. At prefill on
        several CPU threads without autograd, the routed groups and row blocks of the shared experts are
        dealt to :mod:`unimoe.expert_threads` workers, one thread each, instead.
        """
        flat_ids = ids.flatten()
        pair = ((flat_ids >= 0) & (flat_ids < self.n_routed)).nonzero().squeeze(-1)
        experts, order = flat_ids[pair].sort(stable=True)
        pair = pair[order]
        tokens = pair // ids.shape[1]
        rows = x[tokens]  # one gather; each expert then reads a contiguous slice
        scale = weights.flatten()[pair, None]
        counts = torch.bincount(experts, minlength=self.n_routed).tolist()
        groups = [(e, start, n) for e, (start, n) in enumerate(zip(itertools.accumulate([0] + counts), counts)) if n]
        y = torch.empty_like(rows)
        shared = self.shared_experts
        pool = None
        if rows.shape[0] + (x.shape[0] if shared else 0) > PARALLEL_MIN_ROWS and _cpu_inference(x):
            pool = expert_threads()
            if pool is not None and len(groups) < pool.n and shared is None:
                pool = None  # fewer jobs than workers: one expert's GEMM split over the threads does better

        def routed(e: int, start: int, n: int) -> None:
            y[start : start + n] = self.routed_experts.expert(e, rows[start : start + n])

        if pool is None:
            for group in groups:
                routed(*group)
            out = torch.zeros_like(x).index_add_(0, tokens, y * scale)
            return out if shared is None else out + shared.all_weighted(x, shared_weights.to(x.dtype))

        jobs = [(n * self.routed_experts.hidden, functools.partial(routed, e, start, n)) for e, start, n in groups]
        if shared is not None:  # row blocks, so that the workers can share each expert's work evenly
            ys = x.new_empty(shared.n, *x.shape)
            block = -(-x.shape[0] // pool.n)

            def shared_rows(e: int, start: int) -> None:
                ys[e, start : start + block] = shared.expert(e, x[start : start + block])

            jobs += [(min(block, x.shape[0] - start) * shared.hidden, functools.partial(shared_rows, e, start))
                     for e in range(shared.n) for start in range(0, x.shape[0], block)]
        pool.run(jobs)
        out = torch.zeros_like(x).index_add_(0, tokens, y * scale)
        if shared is not None:
            out += torch.einsum("esd,se->sd", ys, shared_weights.to(x.dtype))
        return out

    def _experts_static(self, x: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor,
                        shared_weights: torch.Tensor) -> torch.Tensor:
        """The sum of :meth:`_experts` with every shape fixed by ``x`` and K (no host sync, no ``nonzero``).

        Each of the S·K slots is a row; rows are sorted by expert, null picks and unused slots last, and one
        grouped GEMM per projection runs each expert on its rows only (an expert no token chose is not read).
        The rows past the routed ones carry no weight and are zeroed. Where torch has no grouped GEMM for the
        dtype, every expert runs on every token with a zero weight where it was not chosen.
        """
        s, k = ids.shape
        flat = ids.flatten()
        routed = (flat >= 0) & (flat < self.n_routed)
        if _grouped_mm_serves(x):
            expert_of = torch.where(routed, flat, self.n_routed)
            expert_sorted, order = expert_of.sort(stable=True)
            counts = (expert_of[:, None] == torch.arange(self.n_routed, device=x.device)).sum(0)
            tokens = order // k
            y = self.routed_experts.grouped(x[tokens], counts.cumsum(0).to(torch.int32))
            scale = weights.flatten()[order, None]
            y = torch.where((expert_sorted < self.n_routed)[:, None], y * scale, 0)
            out = torch.zeros_like(x).index_add_(0, tokens, y)
        else:
            dense = torch.zeros(s, self.n_routed + 1, dtype=weights.dtype, device=x.device)
            dense = dense.scatter_add(1, torch.where(routed, flat, self.n_routed).view(s, k), weights * routed.view(s, k))
            out = self.routed_experts.all_weighted(x, dense[:, : self.n_routed], F.linear)
        if self.shared_experts is None:
            return out
        return out + self.shared_experts.all_weighted(x, shared_weights.to(x.dtype), F.linear)


def build_moe(config: UniMoEConfig) -> nn.Module:
    """The MLP block of one decoder layer."""
    if config.moe_type == "topk_lora":
        from unimoe.moe_v1 import TopKLoRAMoE

        return TopKLoRAMoE(config)
    if config.moe_type != "dynamic":
        raise ValueError(f"unknown moe_type {config.moe_type!r}")
    return DynamicMoE(config)

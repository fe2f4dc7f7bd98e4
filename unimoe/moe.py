"""Uni-MoE-2 dynamic-capacity MoE block, inference semantics (architecture report §1.2, §1.6).

Interim version written by the decoder engineer (H2) so that the decoder runs; the owner (H1) replaces it
with the full block (training path: jitter, Gumbel/sparsemixer estimator, token dropping; the v1 top-k
LoRA block). What is here follows the released forward at inference exactly:

- ``k_t``: smallest k whose sorted softmax mass over routed + null logits reaches ``top_p`` (Top-P), or
  ``mlp_dynamic_top_k`` when ``top_p == 0``;
- ``k_t`` rounds of argmax over the not-yet-chosen dynamic logits; each pick's multiplier is the softmax,
  at the pick, over the experts within a 2·ε relative band of it (1.0 unless near-ties); multipliers are
  renormalised over the token's picks;
- global weights: softmax over the chosen dynamic + all shared logits; the dynamic mass is split by the
  multipliers; null picks keep their weight and compute nothing (the routed output shrinks);
- aux loss ``N_d · Σ_j f_j · P̄_j`` with P a softmax over the chosen dynamic experts only.

Parameters: ``gate`` (``[E, d]``, columns routed | null | shared), stacked experts ``routed_experts.*``
``[N_r, ...]`` and ``shared_experts.*`` ``[N_s, ...]``; :mod:`unimoe.checkpoint` maps them to the released
per-expert keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.config import UniMoEConfig


@dataclass
class RoutingInfo:
    """Per-token routing of one layer; ids are dynamic columns (routed, then null), -1 for unused slots."""

    expert_ids: torch.Tensor  # [B, T, K] long
    expert_weights: torch.Tensor  # [B, T, K] global weight of each pick
    num_active: torch.Tensor  # [B, T] real routed experts computed
    null_chosen: torch.Tensor  # [B, T] bool
    aux_loss: torch.Tensor | None  # scalar


class SwiGLUExperts(nn.Module):
    """``n`` SwiGLU FFNs stored stacked: ``down(silu(gate(x)) * up(x))`` without biases."""

    def __init__(self, n: int, dim: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Parameter(torch.empty(n, hidden, dim))
        self.up_proj = nn.Parameter(torch.empty(n, hidden, dim))
        self.down_proj = nn.Parameter(torch.empty(n, dim, hidden))
        for p in (self.gate_proj, self.up_proj, self.down_proj):
            nn.init.normal_(p, std=0.02)

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        return F.linear(F.silu(F.linear(x, self.gate_proj[e])) * F.linear(x, self.up_proj[e]), self.down_proj[e])


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
        d = config.hidden_size
        self.gate = nn.Linear(d, self.n_dynamic + self.n_shared, bias=False)
        self.routed_experts = SwiGLUExperts(self.n_routed, d, config.dynamic_intermediate_size)
        self.shared_experts = SwiGLUExperts(self.n_shared, d, config.shared_intermediate_size) if self.n_shared else None

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, token_weights: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, RoutingInfo]:
        b, t, d = hidden.shape
        x = hidden.reshape(-1, d)
        real = torch.ones(x.shape[0], dtype=torch.bool, device=x.device) if attention_mask is None else attention_mask.reshape(-1).bool()
        logits = self.gate(x)
        dyn = logits[:, : self.n_dynamic]
        k = self._slots(dyn)
        ids, mult = self._select(dyn, k)  # [S, K]
        chosen = ids >= 0
        mult = mult / (mult.sum(-1, keepdim=True) + 1e-6)

        picked = torch.zeros_like(dyn, dtype=torch.long).scatter_add(1, ids.clamp(min=0), chosen.long()) > 0
        dyn_mask = picked & real[:, None]
        mask = torch.cat([dyn_mask, torch.ones(x.shape[0], self.n_shared, dtype=torch.bool, device=x.device)], 1)
        pi = torch.softmax(logits.masked_fill(~mask, float("-inf")), dim=-1)
        dyn_mass = pi[:, : self.n_dynamic].sum(-1, keepdim=True)
        weights = (mult * dyn_mass).masked_fill(~chosen, 0.0)  # global weight of each pick
        aux = self._aux_loss(dyn, dyn_mask, real, token_weights)

        out = self._routed(x, ids, weights)
        if self.shared_experts is not None:
            for s in range(self.n_shared):
                out = out + pi[:, self.n_dynamic + s, None] * self.shared_experts.expert(s, x)
        routed = chosen & (ids < self.n_routed)
        info = RoutingInfo(
            expert_ids=ids.view(b, t, -1),
            expert_weights=weights.view(b, t, -1),
            num_active=(routed & real[:, None]).sum(-1).view(b, t),
            null_chosen=((chosen & (ids >= self.n_routed)).any(-1) & real).view(b, t),
            aux_loss=aux,
        )
        return out.view(b, t, d), info

    def _slots(self, dyn: torch.Tensor) -> torch.Tensor:
        if self.top_p == 0:
            return torch.full(dyn.shape[:1], self.top_k, device=dyn.device)
        probs = torch.softmax(dyn, dim=-1).sort(dim=-1, descending=True).values
        return 1 + (probs.cumsum(-1) < self.top_p).sum(-1).clamp(max=self.n_dynamic - 1)

    def _select(self, dyn: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Iterative argmax picks with the band-softmax multiplier at each pick."""
        scores = dyn.float().clone()
        ids = torch.full((dyn.shape[0], self.max_k), -1, dtype=torch.long, device=dyn.device)
        mult = torch.zeros(dyn.shape[0], self.max_k, device=dyn.device)
        for r in range(self.max_k):
            live = k > r
            top, pick = scores.max(-1, keepdim=True)
            rel = (top - scores) / torch.maximum(scores.abs(), top.abs())
            in_band = (rel <= self.band).scatter(1, pick, True)  # excludes -inf (already chosen)
            band_mass = (torch.exp(scores - top) * in_band).sum(-1)
            ids[:, r] = torch.where(live, pick[:, 0], -1)
            mult[:, r] = torch.where(live, 1.0 / band_mass, 0.0)
            scores = scores.scatter(1, pick, torch.where(live[:, None], float("-inf"), top))
        return ids, mult.to(dyn.dtype)

    def _aux_loss(self, dyn, dyn_mask, real, token_weights) -> torch.Tensor:
        w = real.to(dyn.dtype) if token_weights is None else token_weights.reshape(-1).to(dyn.dtype)
        probs = torch.softmax(dyn.float().masked_fill(~dyn_mask, torch.finfo(torch.float32).min), dim=-1)
        total = w.sum().clamp(min=1e-9)
        f = (w[:, None] * dyn_mask).sum(0) / total
        p_mean = (w[:, None] * probs).sum(0) / total
        return self.n_dynamic * (f * p_mean).sum()

    def _routed(self, x: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Sort (token, pick) pairs by expert; one contiguous GEMM group per routed expert."""
        out = torch.zeros_like(x)
        flat_ids = ids.flatten()
        keep = (flat_ids >= 0) & (flat_ids < self.n_routed)
        pair = keep.nonzero().squeeze(-1)
        experts = flat_ids[pair]
        order = experts.argsort(stable=True)
        pair, experts = pair[order], experts[order]
        tokens = pair // ids.shape[1]
        counts = torch.bincount(experts, minlength=self.n_routed).tolist()
        start = 0
        for e, n in enumerate(counts):
            if n:
                idx = tokens[start : start + n]
                y = self.routed_experts.expert(e, x[idx]) * weights.flatten()[pair[start : start + n], None]
                out.index_add_(0, idx, y.to(out.dtype))
            start += n
        return out


def build_moe(config: UniMoEConfig) -> nn.Module:
    """The MLP block of one decoder layer."""
    return DynamicMoE(config)

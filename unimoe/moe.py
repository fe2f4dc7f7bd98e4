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

Contract the decoder, the probes and the checkpoint code rely on: ``forward(hidden [B, T, d],
attention_mask [B, T] | None, token_weights [B, T] | None) -> (out [B, T, d], RoutingInfo)`` with
``expert_ids``/``expert_weights`` ``[B, T, K]``, ``num_active``/``null_chosen`` ``[B, T]`` and ``aux_loss``; no
computed (non-persistent) buffers, because checkpoints are loaded into a model built on the meta device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.config import UniMoEConfig


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

    @property
    def num_active(self) -> torch.Tensor:
        """Real routed experts computed per token (null picks excluded)."""
        return ((self.expert_ids >= 0) & (self.expert_ids < self.n_routed)).sum(-1)

    @property
    def null_chosen(self) -> torch.Tensor:
        return (self.expert_ids >= self.n_routed).any(-1)

    @property
    def aux_loss(self) -> torch.Tensor:
        """``N_d · Σ_j f_j · P̄_j`` with P a softmax over each token's chosen dynamic experts (§1.6)."""
        ids = self.expert_ids.reshape(-1, self.expert_ids.shape[-1])
        n_dynamic = self.router_logits.shape[-1]
        chosen = torch.zeros_like(self.router_logits, dtype=torch.long).scatter_add(1, ids.clamp(min=0), (ids >= 0).long()) > 0
        logits = self.router_logits.float().masked_fill(~chosen, torch.finfo(torch.float32).min)
        w = self.aux_weights.float()[:, None]
        total = w.sum().clamp(min=1e-9)
        f = (w * chosen).sum(0) / total
        p_mean = (w * torch.softmax(logits, dim=-1)).sum(0) / total
        return n_dynamic * (f * p_mean).sum()


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

    def all_weighted(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``Σ_e weights[:, e] · expert_e(x)`` for every token, as three batched matmuls."""
        h = F.silu(x @ self.gate_proj.transpose(1, 2)) * (x @ self.up_proj.transpose(1, 2))  # [n, S, I]
        y = h @ self.down_proj.transpose(1, 2)  # [n, S, d]
        return (y * weights.T[:, :, None]).sum(0)


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
        logits = self.gate(x)
        dyn = logits[:, : self.n_dynamic]
        z, ids, live, mult = self._select(dyn)  # [S, K]: picked logits, ids, slot used, multipliers
        if attention_mask is not None:  # pads get no dynamic expert, only the shared ones
            live = live & attention_mask.reshape(-1, 1).bool()
            ids = ids.masked_fill(~live, -1)
        mult = mult * live
        mult = mult / (mult.sum(-1, keepdim=True) + 1e-6)

        # global weights: softmax over the chosen dynamic + all shared logits (§1.2 step 9)
        # finfo.min, not -inf (as released): a pad row with no shared experts has nothing left, and an
        # all -inf softmax would be NaN and poison the backward pass; its weights are zeroed by ``mult``
        unchosen = torch.finfo(torch.float32).min
        pi = torch.softmax(torch.cat([z.masked_fill(~live, unchosen), logits[:, self.n_dynamic :].float()], 1), -1)
        weights = (mult * pi[:, : self.max_k].sum(-1, keepdim=True)).to(x.dtype)

        out = self._routed(x, ids, weights)
        if self.shared_experts is not None:
            out = out + self.shared_experts.all_weighted(x, pi[:, self.max_k :].to(x.dtype))
        aux_weights = token_weights if token_weights is not None else attention_mask
        aux_weights = torch.ones(x.shape[0], device=x.device) if aux_weights is None else aux_weights.reshape(-1)
        info = RoutingInfo(ids.view(b, t, -1), weights.view(b, t, -1), self.n_routed, dyn, aux_weights)
        return out.view(b, t, d), info

    def _select(self, dyn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top-P slot count and the ``k_t`` rounds of argmax picks, from one sort of the dynamic logits.

        Round r picks the r-th largest logit, so the experts not yet chosen at round r are sorted positions
        >= r. The pick's multiplier is the softmax, at the pick, over those within the relative band.
        """
        z, order = dyn.float().sort(dim=-1, descending=True)
        if self.top_p == 0:
            k = torch.full_like(order[:, :1], self.top_k)
        else:  # smallest k whose sorted probability mass reaches top_p
            k = 1 + (torch.softmax(z, dim=-1).cumsum(-1) < self.top_p).sum(-1, keepdim=True).clamp(max=self.n_dynamic - 1)
        pick = z[:, : self.max_k, None]  # [S, K, 1]
        rel = (pick - z[:, None, :]) / torch.maximum(z.abs()[:, None, :], pick.abs()).clamp(min=1e-30)
        slot = torch.arange(self.n_dynamic, device=z.device)
        not_before = slot[: self.max_k, None] <= slot  # sorted position j is still unchosen at round r
        in_band = (rel <= self.band) & not_before
        band_mass = (torch.exp(z[:, None, :] - pick) * in_band).sum(-1)  # >= 1: the pick itself
        live = slot[: self.max_k] < k
        ids = order[:, : self.max_k].masked_fill(~live, -1)
        return z[:, : self.max_k], ids, live, 1.0 / band_mass

    def _routed(self, x: torch.Tensor, ids: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``Σ_picks weight · expert(x)`` over the real routed picks (null picks compute nothing).

        One token (decoding one row): loop over its picks, each a distinct expert. Otherwise sort the pairs
        by expert and run one contiguous GEMM group per expert, so each expert's weights are read once.
        """
        out = torch.zeros_like(x)
        if ids.shape[0] == 1:
            for token, row in enumerate(ids.tolist()):
                for slot, e in enumerate(row):
                    if 0 <= e < self.n_routed:
                        out[token] += self.routed_experts.expert(e, x[token]) * weights[token, slot]
            return out
        flat_ids = ids.flatten()
        pair = ((flat_ids >= 0) & (flat_ids < self.n_routed)).nonzero().squeeze(-1)
        experts, order = flat_ids[pair].sort(stable=True)
        pair = pair[order]
        tokens = pair // ids.shape[1]
        counts = torch.bincount(experts, minlength=self.n_routed).tolist()
        start = 0
        for e, n in enumerate(counts):
            if n:
                idx = tokens[start : start + n]
                y = self.routed_experts.expert(e, x[idx]) * weights.flatten()[pair[start : start + n], None]
                out.index_add_(0, idx, y)
            start += n
        return out


def build_moe(config: UniMoEConfig) -> nn.Module:
    """The MLP block of one decoder layer."""
    if config.moe_type == "topk_lora":
        from unimoe.moe_v1 import TopKLoRAMoE

        return TopKLoRAMoE(config)
    if config.moe_type != "dynamic":
        raise ValueError(f"unknown moe_type {config.moe_type!r}")
    return DynamicMoE(config)

"""Uni-MoE v1's MoE block: top-k softmax routing over LoRA experts (reference §3.2).

Each expert is a frozen SwiGLU FFN (the stage-2 modality expert) plus LoRA adapters on its gate, up and down
projections (rank r, scale alpha / r; A Kaiming-uniform, B zero, so a fresh adapter changes nothing). The
router is a linear gate over the experts computed in fp32; a token goes to its top-k experts with weights
``softmax(z)[e] / Σ_topk softmax(z)`` (the 4-expert code's softmax over the selected logits is the same).

The released 8-expert code samples the second expert with Gumbel noise (``top2_2nd_expert_sampling``),
at inference too, which makes its evaluation stochastic. We default to the deterministic top-k and offer the
released behaviour with ``top2_2nd_expert_sampling=True``. Its aux loss is
``E · Σ_e mean_t(softmax_e) · mean_t(1[e is the top-1 choice])``.

Parameters: ``gate`` ``[E, d]`` and stacked ``experts.{gate,up,down}_proj`` ``[E, out, in]`` with
``..._lora_A`` ``[E, r, in]`` / ``..._lora_B`` ``[E, out, r]``. :mod:`unimoe.checkpoint` maps them from the released
8e names (``mlp.deepspeed_moe.gate.wg``, ``mlp.deepspeed_moe.experts.deepspeed_experts.{i}.{proj}[_lora_A|_lora_B]``,
loralib ``LlamaMLPLoRA``) and 4e names (``mlp.gate``, ``mlp.experts.{i}.{proj}`` with PEFT ``lora_A/B``).

Deliberate differences from the released code: the gate runs in fp32 for both variants (the 4e ``MoeLayer`` computes
it in the activation dtype; only the 8e DeepSpeed gate is fp32), and there is no capacity: the 8e layer is
drop-less (``drop_tokens=False``), so on one device its output is the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.config import UniMoEConfig
from unimoe.moe import RoutingInfo

PROJECTIONS = ("gate_proj", "up_proj", "down_proj")


class LoRAExperts(nn.Module):
    """``n`` frozen SwiGLU experts (stacked) with trainable LoRA A/B per projection."""

    def __init__(self, n: int, dim: int, hidden: int, rank: int, alpha: float, dropout: float):
        super().__init__()
        shapes = {"gate_proj": (hidden, dim), "up_proj": (hidden, dim), "down_proj": (dim, hidden)}
        self.scale = alpha / rank
        self.dropout = nn.Dropout(dropout)
        for name, (out_f, in_f) in shapes.items():
            base = nn.Parameter(torch.empty(n, out_f, in_f), requires_grad=False)
            nn.init.normal_(base, std=0.02)
            lora_a = nn.Parameter(torch.empty(n, rank, in_f))
            for e in range(n):
                nn.init.kaiming_uniform_(lora_a[e], a=math.sqrt(5))
            setattr(self, name, base)
            setattr(self, f"{name}_lora_A", lora_a)
            setattr(self, f"{name}_lora_B", nn.Parameter(torch.zeros(n, out_f, rank)))

    def _proj(self, name: str, e: int, x: torch.Tensor) -> torch.Tensor:
        base = F.linear(x, getattr(self, name)[e])
        lora = F.linear(F.linear(self.dropout(x), getattr(self, f"{name}_lora_A")[e]), getattr(self, f"{name}_lora_B")[e])
        return base + self.scale * lora

    def expert(self, e: int, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self._proj("gate_proj", e, x)) * self._proj("up_proj", e, x)
        return self._proj("down_proj", e, h)


@dataclass
class TopKRoutingInfo(RoutingInfo):
    """v1 routing: the same per-token fields, with v1's load-balancing loss."""

    @property
    def aux_loss(self) -> torch.Tensor:
        probs = torch.softmax(self.router_logits.float(), -1)
        w = self.aux_weights.float()[:, None]
        total = w.sum().clamp(min=1e-9)
        top1 = F.one_hot(self.expert_ids.reshape(-1, self.expert_ids.shape[-1])[:, 0].clamp(min=0), probs.shape[-1])
        return probs.shape[-1] * ((w * probs).sum(0) / total * (w * top1).sum(0) / total).sum()


class TopKLoRAMoE(nn.Module):
    def __init__(self, config: UniMoEConfig):
        super().__init__()
        self.n = config.num_experts
        self.k = config.num_experts_per_tok
        self.sample_second = config.top2_2nd_expert_sampling
        self.gate = nn.Linear(config.hidden_size, self.n, bias=False)
        self.experts = LoRAExperts(self.n, config.hidden_size, config.intermediate_size, config.lora_r,
                                   config.lora_alpha, config.lora_dropout)

    def route(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids [S, k], weights [S, k]) from fp32 router logits."""
        probs = torch.softmax(logits, -1)
        if self.sample_second and self.k == 2:
            first = probs.argmax(-1, keepdim=True)
            gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-20, 1.0)))
            second = (logits + gumbel).scatter(-1, first, float("-inf")).argmax(-1, keepdim=True)
            ids = torch.cat([first, second], -1)
        else:
            ids = probs.topk(self.k, dim=-1).indices
        weights = probs.gather(-1, ids)
        return ids, weights / weights.sum(-1, keepdim=True)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, RoutingInfo]:
        b, t, d = hidden.shape
        x = hidden.reshape(-1, d)
        logits = F.linear(x.float(), self.gate.weight.float())
        ids, weights = self.route(logits)
        out = torch.zeros_like(x)
        flat_ids, flat_w = ids.flatten(), weights.flatten().to(x.dtype)
        token = torch.arange(x.shape[0], device=x.device).repeat_interleave(self.k)
        order = flat_ids.argsort(stable=True)
        counts = torch.bincount(flat_ids, minlength=self.n).tolist()
        start = 0
        for e, count in enumerate(counts):  # one contiguous group of (token, pick) pairs per expert
            if count:
                sel = order[start:start + count]
                out.index_add_(0, token[sel], self.experts.expert(e, x[token[sel]]) * flat_w[sel, None])
                start += count
        aux_w = token_weights if token_weights is not None else attention_mask
        aux_w = torch.ones(x.shape[0], device=x.device) if aux_w is None else aux_w.reshape(-1)
        if attention_mask is not None:
            ids = ids.masked_fill(~attention_mask.reshape(-1, 1).bool(), -1)
        info = TopKRoutingInfo(ids.view(b, t, -1), weights.view(b, t, -1), self.n, logits, aux_w)
        return out.view(b, t, d), info

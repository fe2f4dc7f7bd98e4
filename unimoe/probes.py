"""Routing probe: running per-layer, per-modality statistics of what the MoE router chose.

A probe is passed to the model's ``forward``/``generate`` (no global hooks). Memory stays bounded: it keeps
running counts only (a few ``[modalities, layers, experts]`` tensors), unless ``keep_tokens=True`` asks for
the raw per-token choices too.

``counts()`` returns *additive* counts in the shape ``harness.routing_report`` merges across samples:
``{modality: {"tokens", "expert_tokens" [L][E], "null_tokens" [L], "active_experts_sum" [L],
"weight_sum" [L][E]}}`` plus ``"aux_loss": {"sum" [L], "calls" [L]}``; ``summary()`` turns them into
shares and means.
"""

from __future__ import annotations

from typing import Any

import torch

# Modality ids carried by ``modality_ids`` tensors (the processor writes them per token).
MODALITIES: tuple[str, ...] = ("text", "image", "video", "audio")
TEXT = MODALITIES.index("text")


class RoutingProbe:
    """Accumulates routing decisions of every layer, split by the modality of each token.

    Args:
        num_layers: decoder layers.
        num_experts: columns of the usage histogram: routed + null experts for Uni-MoE-2, experts for v1.
            Dense layers (v1 "interval" placement) record nothing.
        keep_tokens: also keep every token's chosen ids and weights (unbounded; for debugging and tests).
    """

    def __init__(self, num_layers: int, num_experts: int, keep_tokens: bool = False):
        self.num_layers = num_layers
        self.num_experts = num_experts
        self.keep_tokens = keep_tokens
        self.reset()

    @classmethod
    def for_model(cls, config: Any, keep_tokens: bool = False) -> RoutingProbe:
        experts = config.num_experts if config.moe_type == "topk_lora" else config.num_dynamic_experts
        return cls(config.num_hidden_layers, experts, keep_tokens)

    def reset(self) -> None:
        m, l, e = len(MODALITIES), self.num_layers, self.num_experts
        self.tokens = torch.zeros(m, l, dtype=torch.long)
        self.expert_tokens = torch.zeros(m, l, e, dtype=torch.long)
        self.weight_sum = torch.zeros(m, l, e, dtype=torch.float64)
        self.null_tokens = torch.zeros(m, l, dtype=torch.long)
        self.active_sum = torch.zeros(m, l, dtype=torch.long)
        self.aux_sum = torch.zeros(l, dtype=torch.float64)
        self.aux_calls = torch.zeros(l, dtype=torch.long)
        self.token_records: list[dict[str, torch.Tensor]] = []

    @torch.no_grad()
    def record(
        self,
        layer: int,
        routing: Any,
        modality_ids: torch.Tensor | None,
        token_mask: torch.Tensor | None = None,
    ) -> None:
        """Add one layer's routing for a ``[B, T]`` chunk. Padded tokens (``token_mask == 0``) are skipped;
        without ``modality_ids`` every token counts as text."""
        ids = routing.expert_ids.reshape(-1, routing.expert_ids.shape[-1])
        device = ids.device
        if self.tokens.device != device:  # count where the model runs: no host round trip per layer
            self._move_to(device)
        weights = routing.expert_weights.reshape(ids.shape).double()
        active = routing.num_active.reshape(-1)
        null = routing.null_chosen.reshape(-1)
        n = ids.shape[0]
        modality = (torch.full((n,), TEXT, device=device) if modality_ids is None
                    else modality_ids.reshape(-1).long().to(device))
        if token_mask is not None:
            keep = token_mask.reshape(-1).bool()
            ids, weights, active, null, modality = ids[keep], weights[keep], active[keep], null[keep], modality[keep]
        if modality.numel() and (modality.min() < 0 or modality.max() >= len(MODALITIES)):
            raise ValueError(f"modality ids must lie in [0, {len(MODALITIES)}) for {MODALITIES}")

        m = len(MODALITIES)
        self.tokens[:, layer] += torch.bincount(modality, minlength=m)
        self.null_tokens[:, layer] += torch.bincount(modality, weights=null.double(), minlength=m).long()
        self.active_sum[:, layer] += torch.bincount(modality, weights=active.double(), minlength=m).long()
        chosen = ids >= 0  # unused slots carry -1
        flat = (modality[:, None] * self.num_experts + ids.clamp(min=0))[chosen]
        self.expert_tokens[:, layer] += torch.bincount(flat, minlength=m * self.num_experts).view(m, -1)
        self.weight_sum[:, layer] += torch.bincount(flat, weights=weights[chosen], minlength=m * self.num_experts).view(m, -1)
        aux = routing.aux_loss
        if aux is not None:
            self.aux_sum[layer] += aux.detach().double()
            self.aux_calls[layer] += 1
        if self.keep_tokens:
            self.token_records.append({"layer": torch.tensor(layer), "modality": modality.cpu(),
                                       "expert_ids": ids.cpu(), "expert_weights": weights.float().cpu()})

    def _move_to(self, device: torch.device) -> None:
        for name in ("tokens", "expert_tokens", "weight_sum", "null_tokens", "active_sum", "aux_sum", "aux_calls"):
            setattr(self, name, getattr(self, name).to(device))

    @torch.no_grad()
    def add_step_counts(self, counts: StepRoutingCounts, row: int | None = None) -> None:
        """Fold in what the static decode step counted (generated tokens are text): one batch ``row``, or all."""
        if self.keep_tokens:
            raise ValueError("per-token routing records need the eager decode path (no static decode step)")
        if self.tokens.device != counts.tokens.device:
            self._move_to(counts.tokens.device)
        pick = slice(None) if row is None else slice(row, row + 1)
        self.tokens[TEXT] += counts.tokens[pick].sum(0)
        self.expert_tokens[TEXT] += counts.expert_tokens[pick].sum(0)
        self.weight_sum[TEXT] += counts.weight_sum[pick].sum(0)
        self.null_tokens[TEXT] += counts.null_tokens[pick].sum(0)
        self.active_sum[TEXT] += counts.active_sum[pick].sum(0)
        if row is None:  # the batch's loss is not the sum of its rows' losses
            self.aux_sum += counts.batch_aux_sum
            self.aux_calls += counts.batch_aux_calls
        else:
            self.aux_sum += counts.aux_sum[row]
            self.aux_calls += counts.aux_calls[row]

    def counts(self) -> dict[str, Any]:
        """Additive, JSON-ready counts (merge samples by adding them, see ``harness.routing_report``)."""
        out: dict[str, Any] = {}
        for m, name in enumerate(MODALITIES):
            tokens = int(self.tokens[m].max())  # every MoE layer sees the same tokens; dense layers none
            if tokens == 0:
                continue
            out[name] = {
                "tokens": tokens,
                "expert_tokens": self.expert_tokens[m].tolist(),
                "weight_sum": self.weight_sum[m].tolist(),
                "null_tokens": self.null_tokens[m].tolist(),
                "active_experts_sum": self.active_sum[m].tolist(),
            }
        if int(self.aux_calls.sum()):
            out["aux_loss"] = {"sum": self.aux_sum.tolist(), "calls": self.aux_calls.tolist()}
        return out

    def summary(self) -> dict[str, Any]:
        """Per modality and layer: expert usage shares, mean active experts, null rate; aux-loss mean."""
        report: dict[str, Any] = {}
        for m, name in enumerate(MODALITIES):
            tokens = self.tokens[m].double()
            if int(tokens.max()) == 0:
                continue
            chosen = self.expert_tokens[m].double()
            report[name] = {
                "tokens": int(tokens.max()),
                "expert_share": (chosen / chosen.sum(-1, keepdim=True).clamp(min=1)).tolist(),
                "mean_active_experts": (self.active_sum[m] / tokens.clamp(min=1)).tolist(),  # dense layers: 0
                "null_rate": (self.null_tokens[m] / tokens.clamp(min=1)).tolist(),
            }
        calls = self.aux_calls.double()
        if int(calls.sum()):
            report["aux_loss_mean"] = float(self.aux_sum.sum() / calls.sum())
        return report


class StepRoutingCounts:
    """Per-row routing counts that the static decode step (:mod:`unimoe.decode`) adds on the device.

    A probe's ``record`` reads routing on the host; a step captured as one graph cannot call it, so the step adds
    each layer's choices into these fixed-shape tensors (rows that finished add nothing) and
    :meth:`RoutingProbe.add_step_counts` folds them in when generation ends. The sums are the ones ``record``
    makes for the same one-token chunks, the load-balancing loss included: for the batch, and for each row
    weighted alone (as per-row probes weight it).
    """

    def __init__(self, rows: int, num_layers: int, num_experts: int, device: torch.device | str):
        shape = (rows, num_layers)
        self.tokens = torch.zeros(shape, dtype=torch.long, device=device)
        self.expert_tokens = torch.zeros(*shape, num_experts, dtype=torch.long, device=device)
        self.weight_sum = torch.zeros(*shape, num_experts, dtype=torch.float64, device=device)
        self.null_tokens = torch.zeros(shape, dtype=torch.long, device=device)
        self.active_sum = torch.zeros(shape, dtype=torch.long, device=device)
        self.aux_sum = torch.zeros(shape, dtype=torch.float64, device=device)
        self.aux_calls = torch.zeros(shape, dtype=torch.long, device=device)
        self.batch_aux_sum = torch.zeros(num_layers, dtype=torch.float64, device=device)
        self.batch_aux_calls = torch.zeros(num_layers, dtype=torch.long, device=device)

    def buffers(self) -> list[torch.Tensor]:
        return [self.tokens, self.expert_tokens, self.weight_sum, self.null_tokens, self.active_sum, self.aux_sum,
                self.aux_calls, self.batch_aux_sum, self.batch_aux_calls]

    def zero_(self) -> None:
        for tensor in self.buffers():
            tensor.zero_()

    def add(self, layer: int, expert_ids: torch.Tensor, expert_weights: torch.Tensor, router_logits: torch.Tensor,
            n_routed: int, alive: torch.Tensor) -> None:
        """One MoE layer's routing of one token per row: ``expert_ids``/``expert_weights [B, K]`` (-1 for unused
        slots), ``router_logits [B, N_d]`` (routed + null columns), ``alive [B]``."""
        live = alive.reshape(-1, 1)
        chosen = (expert_ids >= 0) & live
        slots = expert_ids.clamp(min=0)
        self.tokens[:, layer] += alive.long()
        self.null_tokens[:, layer] += ((expert_ids >= n_routed) & live).any(-1).long()
        self.active_sum[:, layer] += (chosen & (expert_ids < n_routed)).sum(-1)
        self.expert_tokens[:, layer].scatter_add_(1, slots, chosen.long())
        self.weight_sum[:, layer].scatter_add_(1, slots, expert_weights.double() * chosen)
        # the load-balancing loss N_d * sum_j f_j * P_j (f: share of tokens that chose j, P: mean softmax over each
        # token's chosen experts), for each row alone and for the batch's live rows together
        picked = torch.zeros_like(router_logits, dtype=torch.long).scatter_add(1, slots, chosen.long()) > 0
        logits = router_logits.float().masked_fill(~picked, torch.finfo(torch.float32).min)
        share, n_dynamic = picked.float(), router_logits.shape[-1]
        probs = torch.softmax(logits, dim=-1)
        self.aux_sum[:, layer] += (n_dynamic * (share * probs).sum(-1)).double() * alive
        self.aux_calls[:, layer] += alive.long()
        w = alive.float()[:, None]
        total = w.sum().clamp(min=1e-9)
        batch = n_dynamic * ((w * share).sum(0) / total * (w * probs).sum(0) / total).sum()
        self.batch_aux_sum[layer] += batch.double()
        self.batch_aux_calls[layer] += alive.any().long()

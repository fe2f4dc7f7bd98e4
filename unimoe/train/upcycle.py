"""Dense-to-MoE initialisation (reference §1.9, DCMoE ``initial_model`` with ``moe_copy="all"``).

Every routed expert copies a slice of the dense FFN's intermediate neurons (rows of ``gate_proj`` and
``up_proj``, columns of ``down_proj``), consecutive slices with a running offset that wraps modulo the
dense width: with width factor 4 and 4 experts they partition the FFN; with factor 1 they are exact copies.
Shared experts always take the slice at offset 0 (so they start identical, as released). The router is
re-initialised N(0, initializer_range); everything outside the MLPs is copied as is.
"""

from __future__ import annotations

import torch

from unimoe.config import UniMoEConfig


def dense_config(config: UniMoEConfig) -> UniMoEConfig:
    """The dense twin of a MoE config: one always-chosen expert as wide as the dense FFN."""
    return config.replace(mlp_dynamic_expert_num=1, mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0,
                          mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=1, dynamic_intermediate_size=config.intermediate_size)


def _slices(width: int, size: int, count: int, running: bool) -> list[torch.Tensor]:
    out, offset = [], 0
    for _ in range(count):
        out.append(torch.arange(offset, offset + size) % width)
        if running:
            offset = (offset + size) % width
    return out


@torch.no_grad()
def upcycle(dense: torch.nn.Module, moe: torch.nn.Module) -> torch.nn.Module:
    """Fill ``moe`` (a MoE model) from ``dense`` (its :func:`dense_config` twin) in place and return it."""
    cfg = moe.config
    dense_state = dense.state_dict()
    own = moe.state_dict()
    copy = {k: v for k, v in dense_state.items() if ".mlp." not in k and k in own and own[k].shape == v.shape}
    moe.load_state_dict(copy, strict=False)
    for layer_dense, layer_moe in zip(dense.model.layers, moe.model.layers):
        src = layer_dense.mlp.routed_experts
        g, u, d = src.gate_proj[0], src.up_proj[0], src.down_proj[0]  # [I, h], [I, h], [h, I]
        width = g.shape[0]
        dst = layer_moe.mlp
        for experts, size, running in ((dst.routed_experts, cfg.dynamic_intermediate_size, True),
                                       (getattr(dst, "shared_experts", None), cfg.shared_intermediate_size, False)):
            if experts is None:
                continue
            for e, idx in enumerate(_slices(width, size, experts.gate_proj.shape[0], running)):
                experts.gate_proj[e].copy_(g[idx])
                experts.up_proj[e].copy_(u[idx])
                experts.down_proj[e].copy_(d[:, idx])
        dst.gate.weight.normal_(0.0, cfg.initializer_range)
    return moe

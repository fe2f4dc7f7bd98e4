"""Uni-MoE v1 block: top-k LoRA experts against a naive reference; deterministic unless Gumbel is asked."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unimoe.config import UniMoEConfig
from unimoe.model import UniMoEForCausalLM
from unimoe.moe import build_moe


def test_v1_block_equals_naive_reference_and_fresh_lora_is_the_base():
    config = UniMoEConfig.preset("tiny_v1")
    torch.manual_seed(0)
    moe = build_moe(config).eval()
    with torch.no_grad():
        for name in ("gate_proj_lora_B", "up_proj_lora_B", "down_proj_lora_B"):
            getattr(moe.experts, name).normal_(0, 0.1)
    x = torch.randn(23, config.hidden_size)
    with torch.no_grad():
        out, info = moe(x[None])
        ref = torch.zeros_like(x)
        for t in range(x.shape[0]):
            p = torch.softmax(moe.gate.weight @ x[t], -1)
            w, ids = p.topk(2)
            for wi, e in zip(w / w.sum(), ids.tolist()):
                ref[t] += wi * moe.experts.expert(e, x[t])
    torch.testing.assert_close(out[0], ref, rtol=1e-5, atol=1e-5)
    assert (info.num_active == 2).all() and info.aux_loss > 0
    fresh = build_moe(config).eval()  # LoRA B = 0: exactly the frozen base experts
    base = fresh.experts
    h = F.silu(F.linear(x[0], base.gate_proj[1])) * F.linear(x[0], base.up_proj[1])
    torch.testing.assert_close(base.expert(1, x[0]), F.linear(h, base.down_proj[1]))
    assert not base.gate_proj.requires_grad and base.gate_proj_lora_A.requires_grad


def test_v1_deterministic_by_default_and_gumbel_on_request():
    config = UniMoEConfig.preset("tiny_v1")
    x = torch.randn(1, 64, config.hidden_size)
    torch.manual_seed(0)
    moe = build_moe(config).eval()
    with torch.no_grad():
        assert torch.equal(moe(x)[1].expert_ids, moe(x)[1].expert_ids)
        moe.sample_second = True
        first = moe(x)[1].expert_ids
        second = moe(x)[1].expert_ids
    assert torch.equal(first[..., 0], second[..., 0]) and not torch.equal(first[..., 1], second[..., 1])


def test_v1_model_runs_end_to_end():
    torch.manual_seed(0)
    model = UniMoEForCausalLM(UniMoEConfig.preset("tiny_v1")).eval()
    with torch.no_grad():
        logits = model(torch.randint(0, 512, (2, 7))).logits
    assert logits.shape == (2, 7, 512) and torch.isfinite(logits).all()


def test_v1_weights_equal_the_4e_softmax_over_the_selected_logits():
    """4e ``MoeLayer``: ``softmax(topk(logits).values)``; ours renormalises the full softmax (the same numbers)."""
    config = UniMoEConfig.preset("tiny_v1")
    torch.manual_seed(0)
    moe = build_moe(config).eval()
    x = torch.randn(1, 31, config.hidden_size)
    with torch.no_grad():
        _, info = moe(x)
        logits = x[0].float() @ moe.gate.weight.float().T
    top = logits.topk(2, dim=-1)
    torch.testing.assert_close(info.expert_ids[0], top.indices)
    torch.testing.assert_close(info.expert_weights[0].float(), torch.softmax(top.values, -1))

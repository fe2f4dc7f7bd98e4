"""Routing runs in the model's dtype, as the released inference does (a bf16 gate and a bf16 Top-P softmax);
``router_fp32`` keeps it in fp32. Checked against the released rule written out here from its description."""

import pytest
import torch
import torch.nn.functional as F

from unimoe.config import UniMoEConfig
from unimoe.moe import DynamicMoE

TOKENS = 4096


def released_top_p_count(dynamic_logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """The released Top-P count, in the logits' own dtype: ``q = softmax(z_d)`` sorted descending,
    ``c_k = q_(1) + ... + q_(k)`` and ``k_t = 1 + #{k : c_k < p}``."""
    q = torch.softmax(dynamic_logits, dim=-1)
    c = torch.cumsum(q.sort(dim=-1, descending=True).values, dim=-1)
    return 1 + (c < top_p).sum(-1)


@pytest.fixture(scope="module")
def routed():
    """(bf16 gate input, bf16 gate weight, config) of a released-routing block with random weights."""
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny").replace(hidden_size=256, dynamic_intermediate_size=64,
                                                  shared_intermediate_size=32)
    moe = DynamicMoE(config).to(torch.bfloat16).eval()
    with torch.no_grad():
        moe.gate.weight.normal_(0, 0.05)
    x = torch.randn(1, TOKENS, config.hidden_size, dtype=torch.bfloat16)
    return moe, x, config


def counts(moe: DynamicMoE, x: torch.Tensor) -> torch.Tensor:
    """Dynamic slots (routed and null) the block used per token."""
    with torch.inference_mode():
        _, info = moe(x)
    return (info.expert_ids >= 0).sum(-1).flatten()


def test_bf16_expert_counts_follow_the_released_rule(routed):
    moe, x, config = routed
    logits = F.linear(x[0], moe.gate.weight)[:, : moe.n_dynamic]  # bf16, as released
    assert logits.dtype == torch.bfloat16
    expected = released_top_p_count(logits, config.mlp_dynamic_top_p)
    assert torch.equal(counts(moe, x), expected)
    # the rule is sensitive to the dtype here: an fp32 count differs on some tokens (about 1.5% at full width)
    assert (released_top_p_count(logits.float(), config.mlp_dynamic_top_p) != expected).any()


def test_router_fp32_keeps_the_fp32_count(routed):
    moe, x, config = routed
    fp32 = DynamicMoE(config.replace(router_fp32=True)).to(torch.bfloat16).eval()
    fp32.load_state_dict(moe.state_dict())
    logits = F.linear(x[0], moe.gate.weight)[:, : moe.n_dynamic]
    assert torch.equal(counts(fp32, x), released_top_p_count(logits.float(), config.mlp_dynamic_top_p))

"""The dynamic-capacity block against a naive per-token reference of the released math, and against
transformers' Qwen2-MoE sparse block where the two routings coincide."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unimoe.config import UniMoEConfig
from unimoe import moe as moe_module
from unimoe.moe import build_moe


def tiny(**changes) -> UniMoEConfig:
    return UniMoEConfig.preset("tiny").replace(**changes)


def block(config: UniMoEConfig, seed: int = 0):
    torch.manual_seed(seed)
    moe = build_moe(config).eval()
    with torch.no_grad():
        for p in moe.parameters():
            p.normal_(0, 0.3)
    return moe


def naive(moe, config: UniMoEConfig, x: torch.Tensor) -> torch.Tensor:
    """Reference §1.2 at inference, one token at a time (no near-ties: multipliers are 1)."""
    n_r, n_d = config.mlp_dynamic_expert_num, config.num_dynamic_experts
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        z = moe.gate.weight @ x[t]
        zd = z[:n_d]
        if config.mlp_dynamic_top_p == 0:
            k = config.mlp_dynamic_top_k
        else:
            cum = torch.softmax(zd, -1).sort(descending=True).values.cumsum(0)
            k = 1 + int((cum < config.mlp_dynamic_top_p).sum())
        chosen = zd.topk(k).indices.tolist()
        cols = chosen + list(range(n_d, z.shape[0]))
        pi = torch.softmax(z[cols], -1)
        dyn_mass = pi[:k].sum()
        for j in chosen:
            if j < n_r:  # null experts compute nothing and their share is not given back
                w = moe.routed_experts
                h = F.silu(w.gate_proj[j] @ x[t]) * (w.up_proj[j] @ x[t])
                out[t] += dyn_mass / k * (w.down_proj[j] @ h)
        for s in range(z.shape[0] - n_d):
            w = moe.shared_experts
            h = F.silu(w.gate_proj[s] @ x[t]) * (w.up_proj[s] @ x[t])
            out[t] += pi[k + s] * (w.down_proj[s] @ h)
    return out


@pytest.mark.parametrize("changes", [{}, {"mlp_dynamic_top_p": 0.0, "mlp_dynamic_top_k": 2},
                                     {"mlp_dynamic_null_expert_num": 0}, {"mlp_fixed_expert_num": 0}])
def test_grouped_dispatch_equals_naive_reference(changes):
    config = tiny(**changes)
    moe = block(config)
    x = torch.randn(37, config.hidden_size)
    with torch.no_grad():
        out, info = moe(x[None])
        ref = naive(moe, config, x)
    torch.testing.assert_close(out[0], ref, rtol=1e-5, atol=1e-5)


@pytest.fixture(params=["rows_gemv", "rows_gemv_2_threads", "stock"])
def decode_kernel(request, monkeypatch):
    """Every decode path: the compiled streaming kernel on one thread and with W's rows split over two threads
    (every width, so the split meets the tails; skipped where it cannot be built or cannot share torch's
    OpenMP runtime), and the stock kernels (oneDNN, MKL for 2 rows)."""
    threads = torch.get_num_threads()
    if request.param.startswith("rows_gemv"):
        if moe_module._rows_gemv() is None:
            pytest.skip("streaming kernel unavailable here (no AVX-512 or no C compiler)")
        if request.param == "rows_gemv_2_threads":
            if not moe_module._rows_gemv_parallel:
                pytest.skip("the kernel's build cannot share torch's OpenMP runtime here")
            monkeypatch.setattr(moe_module, "PARALLEL_MIN_WEIGHT", 0)
        torch.set_num_threads(2 if request.param == "rows_gemv_2_threads" else 1)
    else:
        monkeypatch.setattr(moe_module, "DECODE_KERNEL", False)
    yield request.param
    torch.set_num_threads(threads)


@pytest.mark.parametrize("tokens", [1, 2, 3, 8, 16, 17])
@pytest.mark.parametrize("grad", [False, True])
def test_decode_sized_inputs_equal_naive_reference(tokens, grad, decode_kernel):
    """Few rows take a decode kernel (without autograd); with autograd they take F.linear."""
    config = tiny()
    moe = block(config)
    x = torch.randn(tokens, config.hidden_size)
    with torch.set_grad_enabled(grad), torch.inference_mode(not grad):
        out, _ = moe(x[None])
    with torch.no_grad():
        ref = naive(moe, config, x)
    torch.testing.assert_close(out[0].detach(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 7, 8, 9, 16])
@pytest.mark.parametrize("out_features,in_features", [(1, 16), (7, 48), (64, 1024), (67, 2816), (30, 24)])
def test_decode_linear_equals_matmul(rows, out_features, in_features, decode_kernel):
    """``linear`` on decode-sized rows against a float64 product: every row/column blocking and tail of the
    kernel (4-row blocks of W, groups of 4 rows of x), and the fallback when the width is not a multiple of 16."""
    x = torch.randn(rows, in_features)
    w = torch.randn(4, out_features, in_features)[2]  # a contiguous slice of a stacked parameter, as experts use
    with torch.inference_mode():
        y = moe_module.linear(x, w)
        y_view = moe_module.linear(x.T.contiguous().T, w)  # a non-contiguous input is made contiguous first
    ref = (x.double() @ w.double().T).float()
    atol = 1e-5 * ref.abs().max().item()  # fp32 sums of up to 2816 products: errors scale with the outputs
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=atol)
    torch.testing.assert_close(y_view, ref, rtol=1e-5, atol=atol)


def test_top_p_count_bounds():
    config = tiny()
    moe = block(config)
    with torch.no_grad():
        _, info = moe(torch.randn(1, 200, config.hidden_size))
        moe.gate.weight.zero_()  # uniform logits: N_d = 5, p = 0.7 -> k = 4 (0.8 >= 0.7 at the 4th)
        _, uniform = moe(torch.randn(1, 3, config.hidden_size))
    chosen = (info.expert_ids >= 0).sum(-1)
    assert chosen.min() >= 1 and chosen.max() <= math.ceil(0.7 * config.num_dynamic_experts)
    assert ((uniform.expert_ids >= 0).sum(-1) == 4).all()


def test_top1_without_null_or_shared_equals_qwen2_moe_block():
    """With one expert per token the released weighting (equal shares) and Qwen2-MoE's (normalised top-k
    softmax) coincide, so the blocks must agree exactly. (For k >= 2 they differ by design: Uni-MoE-2 splits
    the dynamic mass equally between the chosen experts, reference §1.2 step 5.)"""
    from transformers import Qwen2MoeConfig
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

    config = tiny(mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0, mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=1)
    ours = block(config)
    peer_cfg = Qwen2MoeConfig(hidden_size=config.hidden_size, num_experts=config.mlp_dynamic_expert_num,
                              num_experts_per_tok=1, moe_intermediate_size=config.dynamic_intermediate_size,
                              shared_expert_intermediate_size=8, norm_topk_prob=True)
    peer = Qwen2MoeSparseMoeBlock(peer_cfg).eval()
    with torch.no_grad():
        peer.gate.weight.copy_(ours.gate.weight)
        w = ours.routed_experts
        peer.experts.gate_up_proj.copy_(torch.cat([w.gate_proj, w.up_proj], dim=1))
        peer.experts.down_proj.copy_(w.down_proj)
        for p in peer.shared_expert.parameters():
            p.zero_()  # Qwen2-MoE always adds its shared expert; ours has none here
        x = torch.randn(2, 11, config.hidden_size)
        torch.testing.assert_close(ours(x)[0], peer(x), rtol=1e-5, atol=1e-5)


def test_padded_tokens_without_shared_experts_keep_gradients_finite():
    config = tiny(mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0, mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=1)
    moe = block(config).train()
    x = torch.randn(2, 5, config.hidden_size, requires_grad=True)
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    out, _ = moe(x, mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in moe.parameters() if p.grad is not None)

"""The dynamic-capacity block's training path (jitter, fp32 gate, GRIN/SparseMixer selection, token dropping)
against a naive per-token reference written from the architecture report (§1.2, §1.5, §1.7)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from unimoe.config import UniMoEConfig
from unimoe.moe import build_moe


def tiny(**changes) -> UniMoEConfig:
    return UniMoEConfig.preset("tiny").replace(**changes)


def block(config: UniMoEConfig, seed: int = 0, dtype=torch.float32):
    torch.manual_seed(seed)
    moe = build_moe(config).to(dtype).train()
    with torch.no_grad():
        for p in moe.parameters():
            p.normal_(0, 0.3)
    return moe


def swiglu(experts, e: int, x: torch.Tensor) -> torch.Tensor:
    return experts.down_proj[e] @ (F.silu(experts.gate_proj[e] @ x) * (experts.up_proj[e] @ x))


def naive_train(moe, config: UniMoEConfig, x: torch.Tensor, seed: int, mask: torch.Tensor | None = None):
    """Released training forward, one token at a time. Draws the block's random numbers from ``seed`` in
    the documented order (jitter [S, d], Gumbel uniforms [K, S, N_d], ω coins [K, S, 1]).
    Returns (out [S, d], kept picks per token)."""
    s, d = x.shape
    n_r, n_d = config.mlp_dynamic_expert_num, config.num_dynamic_experts
    eps_in, band = config.input_jitter_noise, 2 * config.router_jitter_noise
    max_k = config.mlp_dynamic_top_k if config.mlp_dynamic_top_p == 0 else n_d
    torch.manual_seed(seed)
    noise = torch.empty(s, d, dtype=x.dtype).uniform_(1 - eps_in, 1 + eps_in) if eps_in > 0 else torch.ones(s, d, dtype=x.dtype)
    sampled = not config.ignore_differentiable_router
    if sampled:
        uniform = torch.rand(max_k, s, n_d, dtype=x.dtype)
        coin = torch.rand(max_k, s, 1)
    gate_w = moe.gate.weight
    picks, mults, logits = [], [], []
    for t in range(s):
        z = gate_w @ (x[t] * noise[t])
        logits.append(z)
        zd = z[:n_d]
        if config.mlp_dynamic_top_p == 0:
            k = config.mlp_dynamic_top_k
        else:
            cum = torch.softmax(zd.detach(), -1).sort(descending=True).values.cumsum(0)
            k = min(n_d, 1 + int((cum < config.mlp_dynamic_top_p).sum()))
        chosen, mult = [], []
        if mask is None or mask[t]:
            for r in range(k):
                rest = [j for j in range(n_d) if j not in chosen]
                m = max(rest, key=lambda j: float(zd[j].detach()))
                in_band = [j for j in rest if (zd[m] - zd[j]).detach() / max(abs(zd[j]), abs(zd[m])).detach() <= band]
                if sampled:
                    gumbel = -torch.log(-torch.log(uniform[r, t]))
                    sel = max(in_band, key=lambda j: float(zd[j].detach() + gumbel[j]))
                else:
                    sel = m
                c = torch.exp(zd[sel]) / torch.exp(zd[in_band]).sum()
                if sampled:  # forward c·ω, gradient of c only (§1.5)
                    omega = 1.0 if (sel == m or coin[r, t] > 0.75) else 1 / 3
                    c = c + (c * omega - c).detach()
                chosen.append(sel)
                mult.append(c)
        picks.append(chosen)
        mults.append([c / (sum(mult) + 1e-6) for c in mult])

    shared_cols = list(range(n_d, gate_w.shape[0]))
    shared_ok = [[True] * len(shared_cols) for _ in range(s)]
    if config.token_drop:
        cap = min(s, max(math.ceil(s / n_d * config.capacity_factor), config.min_capacity))
        for j in range(n_d):
            routed = [t for t in range(s) if j in picks[t]]
            if config.drop_policy == "probs":
                kept = sorted(routed, key=lambda t: -float(logits[t][j].detach()))[:cap]
            else:
                kept = routed[:cap]
            for t in routed:
                if t not in kept:
                    i = picks[t].index(j)
                    del picks[t][i], mults[t][i]
        if config.drop_policy == "position":
            shared_ok = [[t < cap] * len(shared_cols) for t in range(s)]
        mults = [[c / (sum(m) + 1e-6) for c in m] for m in mults]

    out = []
    for t in range(s):
        xe = x[t] * noise[t]  # fp32 model: the released in-place jitter reaches the experts
        cols = picks[t] + [c for c, ok in zip(shared_cols, shared_ok[t]) if ok]
        pi = torch.softmax(logits[t][cols], -1)
        dyn_mass = pi[: len(picks[t])].sum()
        y = torch.zeros(d, dtype=x.dtype)
        for j, r in zip(picks[t], mults[t]):
            if j < n_r:
                y = y + r * dyn_mass * swiglu(moe.routed_experts, j, xe)
        for i, c in enumerate(c for c, ok in zip(shared_cols, shared_ok[t]) if ok):
            y = y + pi[len(picks[t]) + i] * swiglu(moe.shared_experts, c - n_d, xe)
        out.append(y)
    return torch.stack(out), picks


def run_both(config: UniMoEConfig, s: int = 29, seed: int = 7, mask=None, dtype=torch.float32):
    """Forward + backward of the block and the naive reference with the same random draws; returns both
    outputs and the gradients of (x, every parameter)."""
    moe = block(config, dtype=dtype)
    x = torch.randn(s, config.hidden_size, dtype=dtype)
    results = []
    for fn in ("block", "naive"):
        moe.zero_grad()
        xi = x.clone().requires_grad_()
        if fn == "block":
            torch.manual_seed(seed)
            out, info = moe(xi[None], None if mask is None else mask[None])
            out, picks = out[0], info.expert_ids[0]
        else:
            out, picks = naive_train(moe, config, xi, seed, mask)
        torch.manual_seed(123)
        out.backward(torch.randn_like(out))
        grads = [xi.grad] + [p.grad.clone() for p in moe.parameters()]
        results.append((out.detach(), picks, grads))
    return results


SAMPLED = dict(router_jitter_noise=0.3)  # a wide band (60 %): near-ties everywhere, so sampling matters


@pytest.mark.parametrize("changes", [
    {},  # released defaults: jitter, fp32 gate, sampled selection, dropless
    SAMPLED,
    {**SAMPLED, "mlp_dynamic_top_p": 0.0, "mlp_dynamic_top_k": 3},
    {**SAMPLED, "ignore_differentiable_router": True},
    {**SAMPLED, "input_jitter_noise": 0.0, "mlp_fixed_expert_num": 0},
    {**SAMPLED, "token_drop": True, "capacity_factor": 1.0, "min_capacity": 2},
    {**SAMPLED, "token_drop": True, "drop_policy": "position", "capacity_factor": 1.0, "min_capacity": 2},
])
def test_training_forward_and_gradients_equal_naive_reference(changes):
    config = tiny(**changes)
    mask = torch.ones(29, dtype=torch.long)
    mask[:3] = 0
    (out, _, _), (ref, _, _) = run_both(config, mask=mask)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # gradients in float64, where summation order does not blur them (the routing runs in float64 there)
    (out, _, grads), (ref, _, ref_grads) = run_both(config, mask=mask, dtype=torch.float64)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10)


def test_sampled_selection_really_samples_and_its_estimator_differs_from_autograd():
    """With a wide band the Gumbel draw picks non-argmax experts, and the gradient is not the autograd
    gradient of the c·ω forward (ω is straight-through)."""
    config = tiny(**SAMPLED, input_jitter_noise=0.0)
    moe = block(config)
    x = torch.randn(1, 64, config.hidden_size)
    torch.manual_seed(0)
    _, sampled = moe(x)
    _, argmax = moe.eval()(x)
    assert (sampled.expert_ids != argmax.expert_ids).any()
    (_, _, grads), _ = run_both(config, dtype=torch.float64)
    (_, _, det_grads), _ = run_both(config.replace(ignore_differentiable_router=True), dtype=torch.float64)
    assert not torch.allclose(grads[1], det_grads[1])  # the gate weight's gradient


def test_deterministic_training_path_passes_gradcheck_with_dropping():
    config = tiny(router_jitter_noise=0.1, ignore_differentiable_router=True, token_drop=True, capacity_factor=1.0,
                  min_capacity=1, hidden_size=8, dynamic_intermediate_size=4, shared_intermediate_size=4)
    moe = block(config, dtype=torch.float64)
    x = torch.randn(1, 10, 8, dtype=torch.float64, requires_grad=True)
    gate = moe.gate.weight.detach().clone().requires_grad_()

    def fn(x, gate):
        torch.manual_seed(0)
        return torch.func.functional_call(moe, {"gate.weight": gate}, (x,))[0]

    assert torch.autograd.gradcheck(fn, (x, gate))


def test_jitter_is_seeded_and_off_in_eval():
    config = tiny(input_jitter_noise=0.05)
    moe = block(config)
    x = torch.randn(1, 16, config.hidden_size)
    runs = []
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        runs.append(moe(x)[1].router_logits)
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])
    torch.manual_seed(0)
    noise = torch.empty(16, config.hidden_size).uniform_(0.95, 1.05)
    torch.testing.assert_close(runs[0], (x[0] * noise) @ moe.gate.weight[: config.num_dynamic_experts].T)

    moe.eval()
    state = torch.get_rng_state()
    out, info = moe(x)
    assert torch.equal(torch.get_rng_state(), state)  # eval draws nothing
    quiet = block(config.replace(input_jitter_noise=0.0, token_drop=True, min_capacity=1, capacity_factor=0.1)).eval()
    torch.testing.assert_close(quiet(x)[0], out)  # neither jitter nor dropping at inference
    torch.testing.assert_close(info.router_logits, moe.gate(x[0])[:, : config.num_dynamic_experts])


def test_fp32_gate_and_where_the_jitter_lands():
    """fp32 gate: fp32 logits. Released in-place jitter: the experts see it unless the gate works on an
    fp32 copy of a bf16 input (§1.2 step 1)."""
    seen = {}
    for dtype, fp32_gate in ((torch.bfloat16, True), (torch.bfloat16, False), (torch.float32, True)):
        config = tiny(fp32_gate=fp32_gate, ignore_differentiable_router=True)
        moe = block(config, dtype=dtype)
        experts = moe._experts
        moe._experts = lambda x, *args: seen.__setitem__((dtype, fp32_gate), x) or experts(x, *args)
        x = torch.randn(1, 8, config.hidden_size, dtype=dtype)
        torch.manual_seed(0)
        _, info = moe(x)
        torch.manual_seed(0)
        if fp32_gate:
            noise = torch.empty(8, config.hidden_size).uniform_(0.99, 1.01)
            jittered = x[0].float() * noise
            expected = F.linear(jittered, moe.gate.weight.float())
        else:
            noise = torch.empty(8, config.hidden_size, dtype=dtype).uniform_(0.99, 1.01)
            jittered = x[0] * noise
            expected = F.linear(jittered, moe.gate.weight)
        assert info.router_logits.dtype == expected.dtype
        torch.testing.assert_close(info.router_logits, expected[:, : config.num_dynamic_experts], rtol=0, atol=0)
        assert torch.equal(seen[dtype, fp32_gate], x[0] if (dtype, fp32_gate) == (torch.bfloat16, True) else jittered.to(dtype))


@pytest.mark.parametrize("s, factor, min_capacity, expected", [(100, 1.0, 4, 20), (100, 0.1, 8, 8), (4, 1.0, 8, 4),
                                                                (101, 1.5, 4, 31)])
def test_token_dropping_keeps_capacity_highest_logits_per_column(s, factor, min_capacity, expected):
    config = tiny(token_drop=True, capacity_factor=factor, min_capacity=min_capacity, input_jitter_noise=0.0,
                  ignore_differentiable_router=True)
    moe = block(config)
    assert moe.capacity(s) == expected == min(s, max(math.ceil(s / config.num_dynamic_experts * factor), min_capacity))
    x = torch.randn(1, s, config.hidden_size)
    _, info = moe(x)
    before, after = info.aux_expert_ids[0], info.expert_ids[0]
    logits = info.router_logits
    for j in range(config.num_dynamic_experts):
        routed = (before == j).any(-1)
        kept = (after == j).any(-1)
        assert int(kept.sum()) == min(expected, int(routed.sum()))
        if kept.any() and (routed & ~kept).any():
            assert logits[kept, j].min() > logits[routed & ~kept, j].max()
    assert (before >= 0).sum() > (after >= 0).sum() or expected >= s
    # the aux loss is taken before dropping: the same as without dropping
    dropless = block(config.replace(token_drop=False))
    torch.testing.assert_close(info.aux_loss, dropless(x)[1].aux_loss)


def test_token_dropped_everywhere_falls_back_to_shared_experts_with_weight_one():
    config = tiny(token_drop=True, capacity_factor=0.1, min_capacity=1, input_jitter_noise=0.0,
                  ignore_differentiable_router=True)
    moe = block(config)
    x = torch.randn(1, 40, config.hidden_size)
    out, info = moe(x)
    lost = (info.expert_ids[0] < 0).all(-1)
    assert lost.any()
    with torch.no_grad():
        pi = torch.softmax(moe.gate(x[0])[:, config.num_dynamic_experts:], -1)
        shared_only = moe.shared_experts.all_weighted(x[0], pi)
    torch.testing.assert_close(out[0][lost], shared_only[lost], rtol=1e-5, atol=1e-6)

"""The static-shape decode step (unimoe.decode): same logits and tokens as the eager path, rows that finish at
different times, compiled whole (no graph break) without recompiling per batch composition or prompt length."""

import pytest
import torch

from unimoe.config import UniMoEConfig
from unimoe.decode import DecodeStep
from unimoe.model import UniMoEForCausalLM, generate
from unimoe.moe import DynamicMoE
from unimoe.probes import RoutingProbe

PROMPT_LENGTHS = (7, 3, 5)


def tiny_model(layers: int = 2, dtype: torch.dtype = torch.float32) -> UniMoEForCausalLM:
    """Released routing (Top-P 0.7 over 4 routed + 1 null, 2 shared experts), GQA, M-RoPE; a sharper head."""
    torch.manual_seed(0)
    model = UniMoEForCausalLM(UniMoEConfig.preset("tiny").replace(num_hidden_layers=layers)).to(dtype).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(20)
    return model


@pytest.fixture(scope="module")
def model() -> UniMoEForCausalLM:
    return tiny_model()


def left_padded(vocab: int, lengths=PROMPT_LENGTHS, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    for row, n in enumerate(lengths):
        ids[row, -n:] = torch.randint(3, vocab, (n,), generator=g)
        mask[row, -n:] = True
    return ids, mask


# every row alive, then row 1 finished, then rows 1 and 2, then a row revived (only the mask says who is padding)
ALIVE = [[True, True, True], [True, False, True], [True, False, False], [False, True, False]]


def step_logits(model: UniMoEForCausalLM, step: DecodeStep | None, ids: torch.Tensor, mask: torch.Tensor
                ) -> list[torch.Tensor]:
    """Prefill, then one decode step per ``ALIVE`` pattern, feeding the eager path's greedy tokens to both paths:
    the next-token logits of every step."""
    b, t = ids.shape
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    next_position = positions.masked_fill(~mask, -1).amax(-1) + 1
    with torch.inference_mode():
        cache = model.new_cache(b, t + len(ALIVE)) if step is None else step.prepare(mask, len(ALIVE), torch.float32)
        logits = model(ids, attention_mask=mask, position_ids=positions, cache=cache, last_token_only=True).logits[:, -1]
        out = [logits]
        slot = torch.tensor([t])
        for i, pattern in enumerate(ALIVE):
            token = torch.tensor([17 + 5 * i, 40 + i, 99])  # fixed tokens: both paths see the same inputs
            alive = torch.tensor(pattern)
            position = next_position + i
            if step is None:
                mask = torch.cat([mask, alive[:, None]], 1)
                logits = model(token[:, None], attention_mask=mask, position_ids=position[:, None], cache=cache,
                               cache_start=t + i, last_token_only=True).logits[:, -1]
            else:
                logits = step(token, position, slot, alive)
                slot = slot + 1
            out.append(logits.clone())
    return out


def test_static_step_gives_the_eager_logits(model):
    ids, mask = left_padded(model.config.vocab_size)
    eager = step_logits(model, None, ids, mask)
    static = step_logits(model, DecodeStep(model, bucket=16), ids, mask)
    for i, (a, b) in enumerate(zip(eager, static)):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5, msg=lambda m, i=i: f"step {i}: {m}")


def test_generate_with_the_step_gives_the_same_tokens_and_endings(model):
    ids, mask = left_padded(model.config.vocab_size)
    free = generate(model, ids, attention_mask=mask, max_new_tokens=12)
    # an eos that row 0 produces at step 2 and others later or never: rows finish at different times
    eos = free.tokens[0][2]
    eager = generate(model, ids, attention_mask=mask, max_new_tokens=12, eos_token_id=eos)
    static = generate(model, ids, attention_mask=mask, max_new_tokens=12, eos_token_id=eos,
                      step=DecodeStep(model, bucket=16))
    assert static.tokens == eager.tokens
    assert static.finish_reasons == eager.finish_reasons
    assert eager.finish_reasons[0] == "eos" and len(eager.tokens[0]) == 2


def assert_same_counts(static: dict, eager: dict) -> None:
    assert static.keys() == eager.keys()
    for modality, counts in eager.items():
        for key, value in counts.items():
            if key in ("weight_sum", "sum"):
                torch.testing.assert_close(torch.tensor(static[modality][key]), torch.tensor(value), rtol=1e-6, atol=1e-6)
            else:
                assert static[modality][key] == value, (modality, key)


def test_the_step_counts_routing_as_the_eager_probe_does(model):
    """Routing statistics of generation with the static step (added on the device, rows finishing at different
    times, padding steps after the end) equal the eager probe's, for the batch and for each row alone."""
    ids, mask = left_padded(model.config.vocab_size)
    eos = generate(model, ids, attention_mask=mask, max_new_tokens=12).tokens[0][2]
    kwargs = {"attention_mask": mask, "max_new_tokens": 12, "eos_token_id": eos}
    probes = {}
    for name, step in (("eager", None), ("static", DecodeStep(model, bucket=16))):
        probes[name] = RoutingProbe.for_model(model.config)
        generate(model, ids, probe=probes[name], step=step, **kwargs)
    assert_same_counts(probes["static"].counts(), probes["eager"].counts())
    assert probes["eager"].counts()["text"]["tokens"] > int(mask.sum())  # generated tokens were counted

    step = DecodeStep(model, bucket=16)
    eager = generate(model, ids, probe=RoutingProbe.for_model(model.config), **kwargs)
    static = generate(model, ids, probe=RoutingProbe.for_model(model.config), step=step, **kwargs)
    assert static.tokens == eager.tokens
    for row in range(ids.shape[0]):  # one row alone: its prefill plus its own steps
        row_probe = RoutingProbe.for_model(model.config)
        row_probe.add_step_counts(step.routing, row)
        assert int(step.routing.tokens[row].max()) == len(eager.tokens[row]) - (eager.finish_reasons[row] != "eos")
        assert int(row_probe.tokens.sum()) == int(step.routing.tokens[row].sum())


def test_a_batch_that_finished_between_checks_keeps_only_its_tokens(model):
    """The static path looks for an all-finished batch every few steps only; the steps run meanwhile are padding."""
    ids, _ = left_padded(model.config.vocab_size, lengths=(5,))
    eos = generate(model, ids, max_new_tokens=4).tokens[0][1]
    eager = generate(model, ids, max_new_tokens=20, eos_token_id=[eos])
    static = generate(model, ids, max_new_tokens=20, eos_token_id=[eos], step=DecodeStep(model, bucket=16))
    assert static.tokens == eager.tokens
    assert static.finish_reasons == eager.finish_reasons == ["eos"]
    assert len(eager.tokens[0]) <= 1  # ended at step 1 of 20: the static path ran a few padding steps after it


def test_generate_with_the_step_honours_stop_strings(model):
    ids, mask = left_padded(model.config.vocab_size)
    stop = str(generate(model, ids, attention_mask=mask, max_new_tokens=8).tokens[1][3])
    kwargs = {"attention_mask": mask, "max_new_tokens": 8, "stop_strings": (stop,),
              "decode": lambda tokens: " ".join(map(str, tokens))}
    eager = generate(model, ids, **kwargs)
    static = generate(model, ids, step=DecodeStep(model, bucket=16), **kwargs)
    assert (static.tokens, static.texts, static.finish_reasons) == (eager.tokens, eager.texts, eager.finish_reasons)
    assert "stop" in eager.finish_reasons


def test_static_experts_equal_the_grouped_path():
    """The static-shape expert sum (dense in fp32, grouped GEMM in bf16) against the eager sort-and-group path,
    padded tokens included."""
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny").replace(hidden_size=128, dynamic_intermediate_size=96)
    for dtype, tol in ((torch.float32, 1e-6), (torch.bfloat16, 2e-2)):
        moe = DynamicMoE(config).to(dtype).eval()
        x = torch.randn(3, 9, config.hidden_size, dtype=dtype)
        pad = torch.ones(3, 9, dtype=torch.bool)
        pad[0, :4] = False
        with torch.inference_mode():
            ref, ref_info = moe(x, pad)
            out, info = moe(x, pad, static_shapes=True)
        assert torch.equal(info.expert_ids, ref_info.expert_ids)
        torch.testing.assert_close(out, ref, rtol=tol, atol=tol, msg=lambda m, dtype=dtype: f"{dtype}: {m}")


def test_the_step_refuses_what_it_does_not_support(model):
    v1 = UniMoEForCausalLM(UniMoEConfig.preset("tiny").replace(moe_type="topk_lora"))
    with pytest.raises(ValueError, match="moe_type 'dynamic'"):
        DecodeStep(v1)
    ids, mask = left_padded(model.config.vocab_size)
    with pytest.raises(ValueError, match="scope"):
        DecodeStep(model, scope="model")
    with pytest.raises(ValueError, match="use_cache"):
        generate(model, ids, attention_mask=mask, use_cache=False, step=DecodeStep(model))


@pytest.fixture
def fresh_dynamo():
    """No graphs compiled by earlier tests: the step's functions are shared, so their graphs would count here as
    recompiles."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.slow
def test_bf16_layer_graph_is_whole_shared_by_the_layers_and_matches_eager(fresh_dynamo):
    """The bf16 step (grouped-GEMM experts, the GPU path) with one compiled graph per decoder layer: traced with
    fullgraph=True (no graph break), reused by every layer (no recompile), and giving the eager step's tokens
    (aot_eager runs the same kernels)."""
    model = tiny_model(dtype=torch.bfloat16)
    ids, mask = left_padded(model.config.vocab_size)
    eager = generate(model, ids, attention_mask=mask, max_new_tokens=6, step=DecodeStep(model, bucket=16))
    step = DecodeStep(model, compile=True, backend="aot_eager", scope="layer", bucket=16)
    with torch._dynamo.config.patch(error_on_recompile=True):
        traced = generate(model, ids, attention_mask=mask, max_new_tokens=6, step=step)
    assert traced.tokens == eager.tokens


@pytest.mark.slow
def test_compiled_step_has_no_graph_break_and_matches_eager(fresh_dynamo):
    """fullgraph=True fails on any graph break (a ``.item()``, ``nonzero`` or data-dependent shape would be one).
    Then: other alive patterns and another prompt length in the same bucket reuse the graph (no recompile)."""
    model = tiny_model(layers=1)
    ids, mask = left_padded(model.config.vocab_size)
    eager = step_logits(model, None, ids, mask)
    step = DecodeStep(model, compile=True, bucket=16)
    compiled = step_logits(model, step, ids, mask)
    for i, (a, b) in enumerate(zip(eager, compiled)):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5, msg=lambda m, i=i: f"step {i}: {m}")
    shorter_ids, shorter_mask = left_padded(model.config.vocab_size, lengths=(4, 6, 2), seed=2)
    with torch._dynamo.config.patch(error_on_recompile=True):
        again = generate(model, shorter_ids, attention_mask=shorter_mask, max_new_tokens=5, step=step)
    assert again.tokens == generate(model, shorter_ids, attention_mask=shorter_mask, max_new_tokens=5).tokens
    counted = {name: RoutingProbe.for_model(model.config) for name in ("eager", "compiled")}
    generate(model, ids, attention_mask=mask, max_new_tokens=5, probe=counted["eager"])
    generate(model, ids, attention_mask=mask, max_new_tokens=5, probe=counted["compiled"], step=step)  # fullgraph
    assert_same_counts(counted["compiled"].counts(), counted["eager"].counts())

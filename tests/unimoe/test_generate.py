"""Generation: KV cache == recomputation, left-padded batches == single rows, sampling, stop strings, eos."""

import pytest
import torch

from unimoe.config import UniMoEConfig
from unimoe.model import UniMoEForCausalLM, generate, sample_next_token


@pytest.fixture(scope="module")
def model() -> UniMoEForCausalLM:
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny")
    m = UniMoEForCausalLM(config).eval()
    # a sharper random model: greedy paths are then stable against float noise between code paths
    with torch.no_grad():
        m.lm_head.weight.mul_(20)
    return m


def prompts(vocab: int, lengths=(7, 3, 5), seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, vocab, (n,), generator=g) for n in lengths]


def left_pad(rows: list[torch.Tensor], pad: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    return ids, mask


def test_cache_equals_recomputation(model):
    ids, mask = left_pad(prompts(model.config.vocab_size))
    cached = generate(model, ids, attention_mask=mask, max_new_tokens=12)
    recomputed = generate(model, ids, attention_mask=mask, max_new_tokens=12, use_cache=False)
    assert cached.tokens == recomputed.tokens
    assert all(len(t) == 12 for t in cached.tokens)


def test_cached_logits_equal_full_forward(model):
    (row,) = prompts(model.config.vocab_size, lengths=(9,))
    ids = row[None]
    full = model(ids).logits
    cache = model.new_cache(1, 9)
    first = model(ids[:, :5], cache=cache).logits
    rest = model(ids[:, 5:], cache=cache, cache_start=5, attention_mask=torch.ones(1, 9)).logits
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, rtol=1e-4, atol=1e-4)


def test_left_padded_batch_equals_single_rows(model):
    rows = prompts(model.config.vocab_size)
    ids, mask = left_pad(rows)
    batched = generate(model, ids, attention_mask=mask, max_new_tokens=10)
    for i, row in enumerate(rows):
        single = generate(model, row[None], max_new_tokens=10)
        assert batched.tokens[i] == single.tokens[0], f"row {i}"


def test_3d_prompt_positions_continue_from_the_largest_id(model):
    (row,) = prompts(model.config.vocab_size, lengths=(6,))
    # a prompt whose ids jump (as after an image): new tokens must continue at max + 1 = 12
    positions = torch.tensor([0, 1, 1, 1, 11, 11]).expand(3, 1, 6).clone()
    positions[1, 0, 2:4] = torch.tensor([1, 2])
    out = generate(model, row[None], position_ids=positions, max_new_tokens=4, use_cache=True)
    ref = generate(model, row[None], position_ids=positions, max_new_tokens=4, use_cache=False)
    assert out.tokens == ref.tokens
    # manual continuation: feed the first generated token at position 12
    cache = model.new_cache(1, 8)
    model(row[None], position_ids=positions, cache=cache)
    step = model(torch.tensor([[out.tokens[0][0]]]), position_ids=torch.full((3, 1, 1), 12), cache=cache,
                 cache_start=6, attention_mask=torch.ones(1, 7))
    assert int(step.logits[0, -1].argmax()) == out.tokens[0][1]


def test_eos_stops_a_row_and_is_removed(model):
    (row,) = prompts(model.config.vocab_size, lengths=(5,))
    free = generate(model, row[None], max_new_tokens=8).tokens[0]
    eos = free[3]
    stopped = generate(model, row[None], max_new_tokens=8, eos_token_id=eos)
    cut = free.index(eos)
    assert stopped.tokens[0] == free[:cut]
    assert stopped.finish_reasons == ["eos"]


def test_stop_strings_cut_the_decoded_text(model):
    (row,) = prompts(model.config.vocab_size, lengths=(5,))
    decode = lambda ids: " ".join(f"t{i}" for i in ids)
    free = generate(model, row[None], max_new_tokens=8, decode=decode)
    stop = f"t{free.tokens[0][2]}"
    out = generate(model, row[None], max_new_tokens=8, decode=decode, stop_strings=(stop,))
    first = free.texts[0].index(stop)
    assert out.texts == [free.texts[0][:first]]
    assert out.finish_reasons == ["stop"]
    assert len(out.tokens[0]) <= 3
    with pytest.raises(ValueError, match="decode"):
        generate(model, row[None], max_new_tokens=2, stop_strings=("x",))


def test_sampling_is_reproducible_with_a_generator(model):
    (row,) = prompts(model.config.vocab_size, lengths=(5,))
    run = lambda seed: generate(model, row[None], max_new_tokens=8, temperature=1.0, top_p=0.9,
                                generator=torch.Generator().manual_seed(seed)).tokens
    assert run(3) == run(3)
    assert run(3) != run(4) or run(3) != run(5)


def test_tiny_top_p_is_greedy():
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    picks = sample_next_token(logits, temperature=0.7, top_p=1e-6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(picks, logits.argmax(-1))


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next_token(logits, 1.0, 0.75, g)) for _ in range(200)}
    assert draws == {0, 1}


def test_a_finished_row_does_not_disturb_the_others(model):
    rows = prompts(model.config.vocab_size, lengths=(6, 4))
    ids, mask = left_pad(rows)
    free = generate(model, ids, attention_mask=mask, max_new_tokens=10).tokens
    eos = next(tok for tok in free[0][1:5] if tok not in free[1])
    out = generate(model, ids, attention_mask=mask, max_new_tokens=10, eos_token_id=eos)
    assert out.finish_reasons == ["eos", "length"]
    assert out.tokens[0] == free[0][: free[0].index(eos)]
    assert out.tokens[1] == free[1]


def test_v1_decoder_cache_equals_recomputation():
    """LLaMA-style v1 decoder: no q/k/v bias, 1-D RoPE, top-k LoRA experts on even layers only."""
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny_v1").replace(num_hidden_layers=3, moe_layer_interval=2)
    v1 = UniMoEForCausalLM(config).eval()
    with torch.no_grad():
        v1.lm_head.weight.mul_(20)
    ids, mask = left_pad(prompts(config.vocab_size, lengths=(5, 3)))
    cached = generate(v1, ids, attention_mask=mask, max_new_tokens=8)
    assert cached.tokens == generate(v1, ids, attention_mask=mask, max_new_tokens=8, use_cache=False).tokens

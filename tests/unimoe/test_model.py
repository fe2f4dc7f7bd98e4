"""Decoder pieces against their definitions and against transformers' Qwen2 implementations."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from unimoe.config import UniMoEConfig
from unimoe.model import Attention, RMSNorm, UniMoEForCausalLM, attention_mask_4d
from unimoe.rope import RotaryEmbedding


@pytest.fixture(scope="module")
def config() -> UniMoEConfig:
    return UniMoEConfig.preset("tiny")


@pytest.fixture(scope="module")
def model(config) -> UniMoEForCausalLM:
    torch.manual_seed(0)
    return UniMoEForCausalLM(config).eval()


def test_rmsnorm_matches_transformers_qwen2():
    from transformers.models.qwen2.modeling_qwen2 import Qwen2RMSNorm

    torch.manual_seed(0)
    ours, theirs = RMSNorm(16, 1e-6), Qwen2RMSNorm(16, 1e-6)
    with torch.no_grad():
        ours.weight.normal_()
        theirs.weight.copy_(ours.weight)
    x = torch.randn(3, 5, 16, dtype=torch.bfloat16)
    assert torch.equal(ours.to(torch.bfloat16)(x), theirs.to(torch.bfloat16)(x))


def naive_attention(attn: Attention, x, cos, sin, key_mask):
    """Textbook GQA: repeat KV heads, rotate, causal + padding mask, softmax(QK^T / sqrt(d)) V."""
    b, t, _ = x.shape
    h, kv, d = attn.n_heads, attn.n_kv_heads, attn.head_dim
    q = attn.q_proj(x).view(b, t, h, d).transpose(1, 2)
    k = attn.k_proj(x).view(b, t, kv, d).transpose(1, 2).repeat_interleave(h // kv, dim=1)
    v = attn.v_proj(x).view(b, t, kv, d).transpose(1, 2).repeat_interleave(h // kv, dim=1)

    def rot(y):
        y1, y2 = y[..., : d // 2], y[..., d // 2:]
        return y * cos + torch.cat([-y2, y1], -1) * sin

    q, k = rot(q), rot(k)
    scores = q @ k.transpose(-1, -2) / d**0.5
    allowed = torch.ones(t, t, dtype=torch.bool).tril() & key_mask[:, None, None, :]
    scores = scores.masked_fill(~allowed, float("-inf"))
    y = torch.softmax(scores, -1) @ v
    return attn.o_proj(y.transpose(1, 2).reshape(b, t, h * d))


def test_attention_matches_a_naive_reference(config, model):
    torch.manual_seed(0)
    attn = model.model.layers[0].self_attn
    assert attn.q_proj.bias is not None and attn.o_proj.bias is None  # Qwen2: q/k/v biases only
    x = torch.randn(2, 7, config.hidden_size)
    key_mask = torch.ones(2, 7, dtype=torch.bool)
    key_mask[1, :2] = False
    positions = (key_mask.long().cumsum(-1) - 1).clamp(min=0)
    cos, sin = model.model.rotary(positions, x.dtype)
    with torch.no_grad():
        ours = attn(x, (cos, sin), attention_mask_4d(key_mask, 0, 7))
        ref = naive_attention(attn, x, cos, sin, key_mask)
    torch.testing.assert_close(ours[0], ref[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[1, 2:], ref[1, 2:], rtol=1e-5, atol=1e-6)  # padded queries are don't-care
    assert torch.isfinite(ours).all()


def test_embeddings_and_ids_paths_agree(model, config):
    ids = torch.randint(0, config.vocab_size, (2, 6), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a = model(ids).logits
        b = model(inputs_embeds=model.model.embed_tokens(ids)).logits
    assert torch.equal(a, b)


def test_text_3d_positions_equal_1d_positions(model, config):
    ids = torch.randint(0, config.vocab_size, (1, 6), generator=torch.Generator().manual_seed(0))
    pos = torch.arange(6)[None]
    with torch.no_grad():
        a = model(ids, position_ids=pos).logits
        b = model(ids, position_ids=pos.expand(3, 1, 6)).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_loss_is_shifted_cross_entropy_and_aux_is_the_layer_mean(model, config):
    ids = torch.randint(0, config.vocab_size, (2, 8), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :3] = -100
    routing = []
    hooks = [layer.mlp.register_forward_hook(lambda m, a, out: routing.append(out[1])) for layer in model.model.layers]
    with torch.no_grad():
        out = model(ids, labels=labels)
    for h in hooks:
        h.remove()
    expected = F.cross_entropy(out.logits[:, :-1].reshape(-1, config.vocab_size), labels[:, 1:].reshape(-1),
                               ignore_index=-100)
    torch.testing.assert_close(out.loss, expected)
    aux = [r.aux_loss for r in routing if r.aux_loss is not None]
    if aux:
        torch.testing.assert_close(out.aux_loss, torch.stack(aux).mean())


def test_padded_rows_do_not_change_real_logits(model, config):
    ids = torch.randint(0, config.vocab_size, (1, 5), generator=torch.Generator().manual_seed(0))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), ids], 1)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        a = model(ids).logits
        b = model(padded, attention_mask=mask).logits[:, 3:]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_tied_embeddings_share_storage(config):
    tied = UniMoEForCausalLM(dataclasses.replace(config, tie_word_embeddings=True))
    assert tied.lm_head.weight is tied.model.embed_tokens.weight


def test_mrope_section_must_cover_head_dim():
    with pytest.raises(ValueError, match="mrope_section"):
        RotaryEmbedding(16, 1e4, [2, 2, 2])


def test_interval_placement_uses_dense_mlps_between_moe_layers(tmp_path):
    from unimoe.checkpoint import from_pretrained, save_pretrained
    from unimoe.model import MLP
    from unimoe.probes import RoutingProbe

    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny").replace(num_hidden_layers=3, moe_layer_interval=2)
    model = UniMoEForCausalLM(config).eval()
    assert [isinstance(layer.mlp, MLP) for layer in model.model.layers] == [False, True, False]
    ids = torch.randint(0, config.vocab_size, (1, 6))
    probe = RoutingProbe.for_model(config)
    with torch.no_grad():
        logits = model(ids, probe=probe).logits
    assert probe.tokens[0].tolist() == [6, 0, 6]  # dense layers record nothing
    save_pretrained(model, tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(from_pretrained(tmp_path)(ids).logits, logits, rtol=0, atol=0)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")  # HF's empty shared expert
def test_whole_decoder_matches_transformers_qwen2_moe_with_top1_routing():
    """With top-1 routing and no null/shared experts our block is exactly Qwen2-MoE's (weight 1 on the one
    expert; ours carries the released 1/(1 + 1e-6) renormalisation), so the whole decoder - attention with
    GQA and biases, RoPE, norms, residuals, LM head - must give transformers' logits and greedy tokens."""
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    from unimoe.checkpoint import to_released
    from unimoe.model import generate

    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny").replace(mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=1,
                                                 mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0)
    ours = UniMoEForCausalLM(config).eval()
    theirs = Qwen2MoeForCausalLM(Qwen2MoeConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, num_key_value_heads=config.num_key_value_heads,
        num_experts=config.mlp_dynamic_expert_num, num_experts_per_tok=1, norm_topk_prob=True,
        moe_intermediate_size=config.dynamic_intermediate_size, shared_expert_intermediate_size=0,
        rms_norm_eps=config.rms_norm_eps, rope_theta=config.rope_theta, tie_word_embeddings=False,
    )).eval()
    released = to_released(ours.state_dict(), config)
    state = {k: v for k, v in released.items() if ".mlp." not in k}
    expert = "model.layers.{L}.mlp.dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{e}.{p}.weight"
    for layer in range(config.num_hidden_layers):
        w = {p: [released[expert.format(L=layer, e=e, p=p)] for e in range(config.mlp_dynamic_expert_num)]
             for p in ("gate_proj", "up_proj", "down_proj")}
        prefix = f"model.layers.{layer}.mlp."
        state[prefix + "gate.weight"] = released[prefix + "gate.weight"]
        state[prefix + "experts.gate_up_proj"] = torch.stack([torch.cat([g, u]) for g, u in zip(w["gate_proj"], w["up_proj"])])
        state[prefix + "experts.down_proj"] = torch.stack(w["down_proj"])
    result = theirs.load_state_dict(state, strict=False)
    assert not result.unexpected_keys
    assert all("shared_expert" in k for k in result.missing_keys), result.missing_keys

    ids = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, rtol=1e-4, atol=1e-5)
        reference = theirs.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False,
                                    min_new_tokens=6, pad_token_id=0, eos_token_id=None)
    assert generate(ours, ids, max_new_tokens=6).tokens == reference[:, 9:].tolist()

"""Uni-MoE v1 checkpoints in the released layout: DeepSpeed-MoE names (8e), Mixtral/PEFT names (4e), LLaVA
connector names, DeepSpeed per-expert files, released LLaVA ``config.json``, strict key reports.

The key lists below are the released names, read off the released v1 module tree (architecture report §3, §5.3;
``Uni_MoE_8e/.../moe/{modeling_llama_dp,llama_mlp}.py``, ``llava_arch.py``, ``audio_aligner/builder.py``; 4e
``Uni_MoE_speech/model/moe/moe.py``) and DeepSpeed's expert-file naming, not produced by our own code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from unimoe.checkpoint import (
    V1_8E_EXPERT_FILES,
    BEATsNotImplemented,
    CheckpointError,
    from_pretrained,
    from_v1_release,
    from_released,
    load_state_dict_into,
    released_v1_config,
    save_pretrained,
    to_released,
)
from unimoe.config import UniMoEConfig
from unimoe.encoders import AudioSpec
from unimoe.model import UniMoEForCausalLM
from unimoe.omni import UniMoEOmni

PROJ = ("gate_proj", "up_proj", "down_proj")

# ---- released key names of one v1 decoder layer (L) and the LLaVA top level


def released_8e_moe_layer(layer: int, experts: int) -> set[str]:
    """An 8e MoE layer: DeepSpeed ``MoE(expert=LlamaMLPLoRA)`` with loralib LoRA names; gate ``TopKGate.wg``."""
    p = f"model.layers.{layer}"
    keys = {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight",
            *(f"{p}.self_attn.{x}_proj.weight" for x in "qkvo"),
            f"{p}.mlp.deepspeed_moe.gate.wg.weight"}
    for i in range(experts):
        for proj in PROJ:
            for part in ("", "_lora_A", "_lora_B"):
                keys.add(f"{p}.mlp.deepspeed_moe.experts.deepspeed_experts.{i}.{proj}{part}.weight")
    return keys


def released_4e_moe_layer(layer: int, experts: int) -> set[str]:
    """A 4e MoE layer: ``MoeLayer(experts=[LlamaMLP], gate=Linear)``; LoRA from PEFT (adapter name stripped)."""
    p = f"model.layers.{layer}"
    keys = {f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight",
            *(f"{p}.self_attn.{x}_proj.weight" for x in "qkvo"), f"{p}.mlp.gate.weight"}
    for i in range(experts):
        for proj in PROJ:
            keys |= {f"{p}.mlp.experts.{i}.{proj}.weight", f"{p}.mlp.experts.{i}.{proj}.lora_A.weight",
                     f"{p}.mlp.experts.{i}.{proj}.lora_B.weight"}
    return keys


RELEASED_TOP_LEVEL = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight",
    "model.mm_projector.0.weight", "model.mm_projector.0.bias", "model.mm_projector.2.weight",
    "model.mm_projector.2.bias",  # mlp2x_gelu
    "model.query_tokens", "model.mm_audio_aligner.projector.weight", "model.mm_audio_aligner.projector.bias",
}
RELEASED_TOWER_PREFIXES = ("model.vision_tower.vision_tower.vision_model.", "model.audio_tower.audio_tower.",
                           "model.mm_audio_aligner.decoder.audio_decoder.")


# ---- a tiny v1 omni model (CLIP + Whisper towers, every other layer MoE)


def tiny_v1_omni(num_experts: int = 8, layers: int = 4, interval: int = 2) -> UniMoEConfig:
    return UniMoEConfig.preset("tiny_v1").replace(
        num_experts=num_experts, num_hidden_layers=layers, moe_layer_interval=interval,
        vision_config=dict(kind="clip", image_size=28, patch_size=14, hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=2, spatial_pool=2),
        audio_config=dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                          decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=80,
                          max_source_positions=50, max_target_positions=16, vocab_size=8, pad_token_id=0,
                          bos_token_id=1, eos_token_id=2, decoder_start_token_id=1, query_tokens=5,
                          chunk_samples=16_000),
    )


def build(config: UniMoEConfig, cls=UniMoEOmni) -> UniMoEForCausalLM:
    torch.manual_seed(0)
    model = cls(config).eval()
    with torch.no_grad():  # fresh LoRA B is zero: make the adapters matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return model


def write_deepspeed_run(model: UniMoEForCausalLM, root: Path, tag: str = "global_step7") -> None:
    """What a PEFT-wrapped 8e DeepSpeed run leaves: ``latest``, ``{tag}/mp_rank_00_model_states.pt`` (non-expert
    weights under ``module``) and one ``layer_{moe layer}_expert_{global id}_mp_rank_00_model_states.pt`` per
    expert, every key under the PEFT prefix; plain tensors only."""
    released = {f"base_model.model.{k}": v.clone() for k, v in to_released(model.state_dict(), model.config,
                                                                            "deepspeed").items()}
    step = root / tag
    step.mkdir(parents=True)
    experts = {k: v for k, v in released.items() if ".deepspeed_experts." in k}
    dense = {k: v for k, v in released.items() if k not in experts}
    meta = {"global_steps": 7, "ds_version": "0.14.0", "optimizer": None, "sparse_tensor_module_names": set(),
            "param_shapes": [{k: v.shape for k, v in dense.items()}], "lr_scheduler": {"last_epoch": 7}}
    torch.save({"module": dense, **meta}, step / "mp_rank_00_model_states.pt")
    moe_layers = [i for i in range(model.config.num_hidden_layers) if model.config.is_moe_layer(i)]
    for moe_idx, layer in enumerate(moe_layers):  # DeepSpeed numbers MoE layers, not decoder layers
        for e in range(model.config.num_experts):
            part = {k: v for k, v in experts.items()
                    if f".layers.{layer}.mlp." in k and f".deepspeed_experts.{e}." in k}
            assert part
            torch.save(part, step / f"layer_{moe_idx}_expert_{e}_mp_rank_00_model_states.pt")
    (root / "latest").write_text(tag)
    model.config.save(root / "config.json")


def media_inputs(config: UniMoEConfig) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    pixels = torch.randn(2, 3, 28, 28, generator=g)
    audio = torch.randn(1, 80, AudioSpec.from_config(config.audio_config).mel_frames, generator=g)
    return pixels, audio


# ---- tests


def test_released_8e_key_names_map_to_our_model_without_missing_or_unexpected():
    config = tiny_v1_omni(num_experts=8)
    model = build(config)
    released = to_released(model.state_dict(), config)  # 8 experts: DeepSpeed style by default
    assert released_8e_moe_layer(0, 8) == {k for k in released if k.startswith("model.layers.0.")}
    dense_layer = {k for k in released if k.startswith("model.layers.1.")}
    assert {k for k in dense_layer if ".mlp." in k} == {f"model.layers.1.mlp.{p}.weight" for p in PROJ}
    top = {k for k in released if not k.startswith("model.layers.")}
    assert RELEASED_TOP_LEVEL <= top
    assert all(k.startswith(RELEASED_TOWER_PREFIXES) for k in top - RELEASED_TOP_LEVEL)

    # the other direction, from the fixture names alone (shapes from a per-expert split of ours)
    fixture = released_8e_moe_layer(0, 8) | released_8e_moe_layer(2, 8) | top | dense_layer | {
        k for k in released if k.startswith("model.layers.3.")}
    state = from_released({k: released[k] for k in fixture}, config)
    report = load_state_dict_into(build(config), state)
    assert report.ok, report.describe()


def test_released_4e_key_names_map_without_missing_or_unexpected():
    config = tiny_v1_omni(num_experts=4, layers=2, interval=1)
    model = build(config)
    released = to_released(model.state_dict(), config)  # 4 experts: PEFT/Mixtral style by default
    for layer in (0, 1):
        assert released_4e_moe_layer(layer, 4) == {k for k in released if k.startswith(f"model.layers.{layer}.")}
    def peft_name(key: str) -> str:  # as in a PEFT model's full state dict
        return f"base_model.model.{key}".replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.")

    peft_named = {peft_name(k): v for k, v in released.items()}
    report = load_state_dict_into(build(config), from_released(peft_named, config))
    assert report.ok, report.describe()


def test_deepspeed_run_folder_loads_with_identical_logits_and_media_features(tmp_path):
    config = tiny_v1_omni(num_experts=8)
    model = build(config)
    write_deepspeed_run(model, tmp_path)
    assert (tmp_path / "global_step7" / "layer_1_expert_7_mp_rank_00_model_states.pt").is_file()
    loaded = from_pretrained(tmp_path, model_class=UniMoEOmni)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    ids = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    pixels, audio = media_inputs(config)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
        ours, theirs = model.media_features(pixels, audio), loaded.media_features(pixels, audio)
    for token in ours:
        torch.testing.assert_close(theirs[token], ours[token], rtol=0, atol=0)


def test_released_llava_config_is_translated_and_4e_placement_read_from_keys(tmp_path):
    model = build(UniMoEConfig.preset("tiny_v1").replace(num_hidden_layers=4, moe_layer_interval=2),
                  cls=UniMoEForCausalLM)
    save_pretrained(model, tmp_path)
    c = model.config
    released_config = {  # a transformers-4.31 LlavaConfig: no rope_theta, attention_bias or MoE placement
        "architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava", "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size, "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_hidden_layers, "num_attention_heads": c.num_attention_heads,
        "rms_norm_eps": c.rms_norm_eps, "max_position_embeddings": c.max_position_embeddings,
        "rope_scaling": None, "tie_word_embeddings": False, "torch_dtype": "float32", "hidden_act": "silu",
        "num_experts": 4, "num_experts_per_tok": 2, "lora_r": c.lora_r, "lora_alpha": c.lora_alpha, "moe": True,
        "mm_vision_tower": "/path/to/clip-vit-large-patch14-336", "mm_projector_type": "mlp2x_gelu",
        "query_tokens_size": 50,
    }
    (tmp_path / "config.json").write_text(json.dumps(released_config))
    loaded = from_pretrained(tmp_path)
    lc = loaded.config
    assert (lc.moe_type, lc.moe_layer_interval, lc.rope_theta, lc.attention_bias, lc.rope_scaling) == (
        "topk_lora", 2, 10_000.0, False, {})
    assert lc.num_key_value_heads == lc.num_attention_heads and lc.extra["mm_projector_type"] == "mlp2x_gelu"
    ids = torch.randint(0, c.vocab_size, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)

    config8, stated = released_v1_config({**released_config, "num_experts": 8, "moe_type": "sparse",
                                           "moe_stride": 2})
    assert stated and config8.moe_layer_interval == 2 and config8.extra["released_moe_type"] == "sparse"
    assert released_v1_config({"model_type": "qwen2"}) is None


def test_an_unexpected_v1_key_is_reported(tmp_path):
    config = tiny_v1_omni(num_experts=8)
    model = build(config)
    write_deepspeed_run(model, tmp_path)
    dense_path = tmp_path / "global_step7" / "mp_rank_00_model_states.pt"
    dense = torch.load(dense_path, weights_only=True)
    dense["module"]["base_model.model.model.layers.0.mlp.fm_adapter.weight"] = torch.zeros(2)  # use_fm_block
    torch.save(dense, dense_path)
    with pytest.raises(CheckpointError, match=r"1 unexpected: model\.layers\.0\.mlp\.fm_adapter\.weight"):
        from_pretrained(tmp_path, model_class=UniMoEOmni)


def test_a_missing_v1_expert_file_is_reported(tmp_path):
    model = build(tiny_v1_omni(num_experts=8))
    write_deepspeed_run(model, tmp_path)
    (tmp_path / "global_step7" / "layer_1_expert_3_mp_rank_00_model_states.pt").unlink()
    with pytest.raises(CheckpointError, match=r"model\.layers\.2\.mlp\.experts\.\w+: experts \[3\] missing"):
        from_pretrained(tmp_path, model_class=UniMoEOmni)


def test_peft_lora_of_non_expert_linears_is_merged_and_unused_keys_dropped():
    config = UniMoEConfig.preset("tiny_v1").replace(moe_layer_interval=2)  # layer 1 is a dense LlamaMLPLoRA
    model = build(config, cls=UniMoEForCausalLM)
    released = to_released(model.state_dict(), config)
    g = torch.Generator().manual_seed(2)
    q = "model.layers.0.self_attn.q_proj"
    a, b = torch.randn(config.lora_r, 64, generator=g), torch.randn(64, config.lora_r, generator=g)
    released = {f"base_model.model.{k}": v for k, v in released.items()}
    released[f"base_model.model.{q}.lora_A.default.weight"] = a
    released[f"base_model.model.{q}.lora_B.default.weight"] = b
    released["base_model.model.model.layers.1.self_attn.rotary_emb.inv_freq"] = torch.ones(8)  # transformers < 4.31
    released["base_model.model.model.audio_tower.encoder.conv1.weight"] = torch.ones(1)  # WhisperModel's own copy
    up = "model.layers.1.mlp.up_proj"  # 8e dense layers: loralib names, outside PEFT
    up_a, up_b = torch.randn(config.lora_r, 64, generator=g), torch.randn(128, config.lora_r, generator=g)
    released[f"base_model.model.{up}_lora_A.weight"] = up_a
    released[f"base_model.model.{up}_lora_B.weight"] = up_b
    state = from_released(released, config)
    scale = config.lora_alpha / config.lora_r
    torch.testing.assert_close(state[f"{q}.weight"], model.state_dict()[f"{q}.weight"] + scale * b @ a)
    torch.testing.assert_close(state[f"{up}.weight"], model.state_dict()[f"{up}.weight"] + scale * up_b @ up_a)
    assert load_state_dict_into(build(config, cls=UniMoEForCausalLM), state).ok


def test_beats_audio_variant_says_it_is_not_implemented():
    config = UniMoEConfig.preset("tiny_v1")
    with pytest.raises(BEATsNotImplemented, match="BEATs"):
        from_released({"model.mm_audio_aligner.qformer.bert.encoder.layer.0.attention.self.query.weight":
                       torch.zeros(1)}, config)
    with pytest.raises(NotImplementedError, match="BEATs"):
        released_v1_config({"model_type": "llava", "mm_audio_tower": "/ckpt/BEATs_iter3_plus_AS2M.pt"})
    with pytest.raises(NotImplementedError, match="BEATs"):
        AudioSpec.from_config({"kind": "beats"})


def test_the_three_folder_8e_release_assembles_like_the_released_loader(tmp_path):
    """Base (the 4e model) + stage-2 expert FFN files + the LoRA fine-tune's side files and PEFT adapter."""
    config = tiny_v1_omni(num_experts=8, layers=2, interval=1)
    model = build(config)
    with torch.no_grad():  # experts 6 and 7 start from the same files as 2 and 5
        for proj in PROJ:
            for layer in model.model.layers:
                w = getattr(layer.mlp.experts, proj)
                w[6], w[7] = w[2], w[5]
    released = to_released(model.state_dict(), config, "deepspeed")
    base, experts, finetune = (tmp_path / n for n in ("base", "experts", "e2"))
    for d in (base, experts, finetune):
        d.mkdir()
    g = torch.Generator().manual_seed(3)
    q = "model.layers.0.self_attn.q_proj"
    lora_a, lora_b = torch.randn(config.lora_r, 64, generator=g), torch.randn(64, config.lora_r, generator=g)
    scale = config.lora_alpha / config.lora_r
    side = ("model.mm_projector.", "model.mm_audio_aligner.", "model.query_tokens")
    base_state = {k: v for k, v in released.items() if ".mlp.deepspeed_moe." not in k and not k.startswith(side)}
    base_state[f"{q}.weight"] = released[f"{q}.weight"] - scale * lora_b @ lora_a  # before the PEFT merge
    base_state["model.layers.0.mlp.gate.weight"] = torch.zeros(4, 64)  # the 4e base's own MoE, unused by 8e
    base_state["model.layers.0.mlp.experts.3.up_proj.weight"] = torch.zeros(128, 64)
    base_state["model.mm_projector.0.weight"] = torch.zeros_like(released["model.mm_projector.0.weight"])  # stale
    base_state["model.audio_tower.encoder.conv1.weight"] = torch.zeros(1)  # WhisperModel's own unused copy
    torch.save(base_state, base / "pytorch_model.bin")
    ds = "mlp.deepspeed_moe.experts.deepspeed_experts"
    for e, name in enumerate(V1_8E_EXPERT_FILES):
        ffn = {f"model.layers.{L}.mlp.{p}.weight": released[f"model.layers.{L}.{ds}.{e}.{p}.weight"]
               for L in range(2) for p in PROJ}
        torch.save(ffn, experts / f"{name}.bin")
        lora = {f"model.layers.{L}.{ds}.0.{p}{ab}.weight": released[f"model.layers.{L}.{ds}.{e}.{p}{ab}.weight"]
                for L in range(2) for p in PROJ for ab in ("_lora_A", "_lora_B")}  # each rank's local index 0
        torch.save(lora, finetune / f"{e}_mlp_experts.bin")
    torch.save({k: v for k, v in released.items() if "deepspeed_moe.gate" in k}, finetune / "mlp_gates.bin")
    torch.save({f"base_model.model.{k}": v for k, v in released.items() if k.startswith("model.mm_projector.")},
               finetune / "non_lora_trainables.bin")
    torch.save({k: v for k, v in released.items() if k.startswith(side[1:])}, finetune / "mm_audio_aligner.bin")
    torch.save({f"base_model.model.{q}.lora_A.weight": lora_a, f"base_model.model.{q}.lora_B.weight": lora_b},
               finetune / "adapter_model.bin")
    (finetune / "adapter_config.json").write_text(json.dumps({"r": config.lora_r, "lora_alpha": config.lora_alpha}))
    config.save(finetune / "config.json")

    loaded = from_v1_release(base, experts, finetune, model_class=UniMoEOmni)
    ids = torch.randint(0, config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    pixels, audio = media_inputs(config)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=1e-5, atol=1e-5)  # merge rounds
        ours, theirs = model.media_features(pixels, audio), loaded.media_features(pixels, audio)
    for token in ours:
        torch.testing.assert_close(theirs[token], ours[token], rtol=0, atol=0)
    save_pretrained(loaded, tmp_path / "one_folder")  # what configs/model/unimoe_8e.yaml asks for
    with torch.no_grad():
        again = from_pretrained(tmp_path / "one_folder", model_class=UniMoEOmni)(ids).logits
        torch.testing.assert_close(again, loaded(ids).logits, rtol=0, atol=0)

    (finetune / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 16}))
    with pytest.raises(CheckpointError, match="lora_alpha"):
        from_v1_release(base, experts, finetune, model_class=UniMoEOmni)

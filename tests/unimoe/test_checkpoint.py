"""Checkpoints: released key layout (§5) round-trips, strict key reports, DeepSpeed per-expert files."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from unimoe.checkpoint import (
    CheckpointError,
    from_pretrained,
    from_released,
    read_state_dict,
    save_pretrained,
    to_released,
)
from unimoe.config import UniMoEConfig
from unimoe.model import UniMoEForCausalLM

ROUTED = "model.layers.{L}.mlp.dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{e}.{p}.weight"
SHARED = "model.layers.{L}.mlp.fixed_real_moe.{s}.{p}.weight"


@pytest.fixture(scope="module")
def model() -> UniMoEForCausalLM:
    torch.manual_seed(0)
    return UniMoEForCausalLM(UniMoEConfig.preset("tiny")).eval()


@pytest.fixture(scope="module")
def ids(model) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(0))


def test_released_layout_round_trips_with_identical_logits(model, ids, tmp_path):
    save_pretrained(model, tmp_path, layout="released", max_shard_bytes=200_000)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1, "the tiny model should be split over several shards"
    c = model.config
    keys = set(index["weight_map"])
    for layer in range(c.num_hidden_layers):
        assert f"model.layers.{layer}.mlp.gate.weight" in keys
        for p in ("gate_proj", "up_proj", "down_proj"):
            assert {ROUTED.format(L=layer, e=e, p=p) for e in range(c.mlp_dynamic_expert_num)} <= keys
            assert {SHARED.format(L=layer, s=s, p=p) for s in range(c.mlp_fixed_expert_num)} <= keys
    assert not any("routed_experts" in k or "shared_experts" in k for k in keys)

    loaded = from_pretrained(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_expert_key_mapping_is_invertible(model):
    state = model.state_dict()
    back = from_released(to_released(state, model.config), model.config)
    assert back.keys() == state.keys()
    for k in state:
        assert torch.equal(back[k], state[k]), k


def test_strict_report_names_missing_and_unexpected_keys(model, tmp_path):
    save_pretrained(model, tmp_path)
    shard = next(tmp_path.glob("model-*.safetensors"))
    index_path = tmp_path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    tensors = load_file(shard)
    dropped = "model.norm.weight"
    if dropped in tensors:
        del tensors[dropped]
    tensors["vision_tower.extra.weight"] = torch.zeros(2)
    save_file(tensors, shard)
    index["weight_map"].pop(dropped)
    index["weight_map"]["vision_tower.extra.weight"] = shard.name
    index_path.write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"1 missing: model\.norm\.weight.*1 unexpected: vision_tower"):
        from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="no weights for"):
        from_pretrained(tmp_path, strict=False)  # a missing tensor can never be left uninitialised


def test_a_missing_expert_is_reported(model, tmp_path):
    state = to_released(model.state_dict(), model.config)
    state.pop(ROUTED.format(L=0, e=1, p="up_proj"))
    with pytest.raises(CheckpointError, match=r"experts \[1\] missing"):
        from_released(state, model.config)


def test_deepspeed_expert_files_load(model, ids, tmp_path):
    """mp_rank_00 holds the dense weights, one file per (MoE layer, global expert id) holds each expert."""
    released = to_released(model.state_dict(), model.config)
    experts = {k: v for k, v in released.items() if "deepspeed_experts" in k}
    dense = {k: v for k, v in released.items() if k not in experts}
    torch.save({"module": dense}, tmp_path / "mp_rank_00_model_states.pt")
    for layer in range(model.config.num_hidden_layers):
        for e in range(model.config.mlp_dynamic_expert_num):
            part = {k: v for k, v in experts.items() if k.startswith(f"model.layers.{layer}.") and f".deepspeed_experts.{e}." in k}
            torch.save(part, tmp_path / f"layer_{layer}_expert_{e}_mp_rank_00_model_states.pt")
    model.config.save(tmp_path / "config.json")
    assert read_state_dict(tmp_path).keys() == released.keys()
    loaded = from_pretrained(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)


class NotATensor:
    """Stands for arbitrary pickled code in an untrusted ``.bin``."""


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"x": NotATensor()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights_only"):
        read_state_dict(tmp_path)


def test_empty_directory_says_what_it_looked_for(tmp_path):
    with pytest.raises(CheckpointError, match="no weights found"):
        read_state_dict(tmp_path)


def test_tied_embeddings_are_stored_once_and_retied(tmp_path):
    torch.manual_seed(0)
    model = UniMoEForCausalLM(UniMoEConfig.preset("tiny").replace(tie_word_embeddings=True)).eval()
    save_pretrained(model, tmp_path)
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert "lm_head.weight" not in index["weight_map"]
    loaded = from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert loaded.lm_head.weight.dtype == torch.bfloat16


def test_v1_lora_experts_round_trip_in_the_released_layout(tmp_path):
    torch.manual_seed(0)
    config = UniMoEConfig.preset("tiny_v1")
    model = UniMoEForCausalLM(config).eval()
    with torch.no_grad():  # make the LoRA adapters matter (B starts at zero)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    save_pretrained(model, tmp_path)
    keys = set(json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"])
    assert "model.layers.0.mlp.experts.3.up_proj.weight" in keys
    assert "model.layers.0.mlp.experts.3.up_proj.lora_A.weight" in keys
    ids = torch.randint(0, config.vocab_size, (1, 7))
    with torch.no_grad():
        torch.testing.assert_close(from_pretrained(tmp_path)(ids).logits, model(ids).logits, rtol=0, atol=0)


def test_siglip_tower_keys_keep_the_released_names():
    """Uni-MoE-2 stored its SigLIP tower with transformers 4 (``vision_tower.vision_tower.vision_model.*``);
    transformers 5 flattens the model, so the names must not follow the installed version."""
    from unimoe.omni import UniMoEOmni

    keys = [k for k in UniMoEOmni(UniMoEConfig.preset("tiny_omni")).state_dict() if k.startswith("vision_tower.")]
    assert keys and all(k.startswith("vision_tower.vision_tower.vision_model.") for k in keys)
    assert "vision_tower.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight" in keys

"""The config reads released config.json files as they are and keeps what it does not model."""

from __future__ import annotations

import json

from unimoe.config import UniMoEConfig


def test_released_fields_load_and_unknown_keys_survive_a_round_trip(tmp_path):
    released = {"model_type": "grin_qwen2_vl", "hidden_size": 3584, "mlp_dynamic_expert_num": 4,
                "mlp_dynamic_null_expert_num": 1, "mlp_fixed_expert_num": 2, "mlp_dynamic_top_p": 0.7,
                "mlp_dynamic_top_k": 0.0, "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
                "whisper_query_tokens_size": 200, "vision_spatial_pool_stride": 24}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(released))
    cfg = UniMoEConfig.from_json(path)
    assert cfg.num_dynamic_experts == 5 and cfg.num_gate_columns == 7 and cfg.mlp_dynamic_top_k == 0
    assert cfg.extra == {"model_type": "grin_qwen2_vl", "whisper_query_tokens_size": 200,
                         "vision_spatial_pool_stride": 24}
    cfg.save(tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["model_type"] == "grin_qwen2_vl" and again["mlp_fixed_expert_num"] == 2


def test_presets_follow_the_released_sizes():
    omni = UniMoEConfig.preset("unimoe2_omni")
    assert (omni.hidden_size, omni.num_hidden_layers, omni.num_attention_heads, omni.num_key_value_heads) == (3584, 28, 28, 4)
    assert (omni.dynamic_intermediate_size, omni.shared_intermediate_size) == (18944, 2368)
    dcmoe = UniMoEConfig.preset("dcmoe_preview")
    assert (dcmoe.dynamic_intermediate_size, dcmoe.shared_intermediate_size, dcmoe.token_drop) == (2240, 1120, True)
    assert UniMoEConfig.preset("unimoe_8e").num_experts == 8 and UniMoEConfig.preset("unimoe_4e").moe_type == "topk_lora"

"""One config for the whole Uni-MoE family, with the released field names and named presets.

Field names are those of the released ``config.json`` files (Qwen2 fields plus the DC-MoE fields of
Uni-MoE-2 / DCMoE / UniMoE-Audio, and the v1 top-k fields), so a released config loads as it is. Keys we
do not model are kept in ``extra`` and written back on save, never dropped.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MoEType = Literal["dynamic", "topk_lora"]


@dataclass
class UniMoEConfig:
    # ---- Qwen2 / Qwen2.5 decoder
    vocab_size: int = 151_936
    hidden_size: int = 3584
    intermediate_size: int = 18_944  # the dense FFN width (upcycling source; MoE widths below)
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    hidden_act: str = "silu"
    max_position_embeddings: int = 32_768
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    rope_scaling: dict[str, Any] = field(default_factory=lambda: {"type": "mrope", "mrope_section": [16, 24, 24]})
    attention_bias: bool = True  # Qwen2 has q/k/v biases (no o bias)
    attention_dropout: float = 0.0
    tie_word_embeddings: bool = False
    initializer_range: float = 0.02
    bos_token_id: int | None = 151_643
    eos_token_id: int | list[int] | None = 151_645
    pad_token_id: int | None = 151_643
    torch_dtype: str = "bfloat16"

    # ---- which MoE block every layer uses
    moe_type: MoEType = "dynamic"

    # ---- Dynamic-capacity MoE (Uni-MoE-2 / DCMoE / UniMoE-Audio; reference §1)
    mlp_dynamic_expert_num: int = 4  # N_r routed experts with weights
    mlp_dynamic_null_expert_num: int = 1  # N_n null experts (gate columns only)
    mlp_fixed_expert_num: int = 2  # N_s shared experts, every token
    mlp_dynamic_top_p: float = 0.7  # Top-P over the routed+null softmax; 0 switches to Top-K
    mlp_dynamic_top_k: int = 2
    dynamic_intermediate_size: int = 18_944
    shared_intermediate_size: int = 2368
    router_jitter_noise: float = 0.01  # the relative band of the iterative selection (2x this)
    input_jitter_noise: float = 0.01  # multiplicative noise on the gate input, training only
    ignore_differentiable_router: bool = False  # True: deterministic selection in training too
    fp32_gate: bool = True
    router_fp32: bool = False  # route in fp32 (released inference routes in the model dtype)
    token_drop: bool = False
    drop_policy: str = "probs"
    capacity_factor: float = 1.0
    min_capacity: int = 8
    l_aux_weight: float = 0.025
    min_l_aux_weight: float = 0.025
    l_aux_weight_decay_steps: int = 0
    aux_balance_weight: float = 10.0  # token weight of labelled tokens in the aux loss
    ep_size: int = 1

    # ---- Uni-MoE v1 top-k LoRA experts (reference §3.2)
    num_experts: int = 4
    num_experts_per_tok: int = 2
    moe_layer_interval: int = 1  # 1: every layer is MoE; 2: even layers only (v1 "interval")
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    top2_2nd_expert_sampling: bool = False  # released 8e: Gumbel-sampled 2nd expert, at inference too
    aux_balance_loss_coef: float = 0.01

    # ---- encoders and connectors (filled by the encoder configs; see unimoe.encoders)
    vision_config: dict[str, Any] = field(default_factory=dict)
    audio_config: dict[str, Any] = field(default_factory=dict)

    # ---- everything else a released config.json holds
    extra: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_dynamic_experts(self) -> int:
        """N_d = routed + null: the columns Top-P chooses among."""
        return self.mlp_dynamic_expert_num + self.mlp_dynamic_null_expert_num

    @property
    def num_gate_columns(self) -> int:
        return self.num_dynamic_experts + self.mlp_fixed_expert_num

    def is_moe_layer(self, index: int) -> bool:
        return index % self.moe_layer_interval == 0

    # ---- (de)serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "UniMoEConfig":
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "extra"}
        extra.update(data.get("extra", {}))
        if "mlp_dynamic_top_k" in kwargs:  # the Audio config stores 0.0
            kwargs["mlp_dynamic_top_k"] = int(kwargs["mlp_dynamic_top_k"])
        return cls(**kwargs, extra=extra)

    @classmethod
    def from_json(cls, path: str | Path) -> "UniMoEConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        return {**extra, **d}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def replace(self, **changes: Any) -> "UniMoEConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def preset(cls, name: str) -> "UniMoEConfig":
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
        return cls(**PRESETS[name])


_V1_7B: dict[str, Any] = dict(  # LLaMA-7B geometry shared by the v1 releases (reference §3.1, §4)
    moe_type="topk_lora", vocab_size=32_000, hidden_size=4096, intermediate_size=11_008, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=32, rope_theta=10_000.0, rope_scaling={}, attention_bias=False,
    max_position_embeddings=4096, rms_norm_eps=1e-5, num_experts_per_tok=2, bos_token_id=1, eos_token_id=2,
    pad_token_id=0, torch_dtype="float16", mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0,
)

PRESETS: dict[str, dict[str, Any]] = {
    # Uni-MoE-2.0-Omni: Qwen2.5-7B backbone, 4 routed (full width) + 1 null + 2 shared (1/8 width), Top-P 0.7
    # (vocab 152,064 as Qwen2.5-7B / Qwen2-VL-7B; the dataclass default 151,936 is the smaller Qwen2 models')
    "unimoe2_omni": {"vocab_size": 152_064},
    # DCMoE preview on Qwen2-VL-2B: routed I/4, shared I/8, token dropping with capacity 3 / min 8
    "dcmoe_preview": dict(
        hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
        dynamic_intermediate_size=2240, shared_intermediate_size=1120, token_drop=True, capacity_factor=3.0,
        ignore_differentiable_router=True, tie_word_embeddings=True, rope_scaling={"type": "mrope",
                                                                                    "mrope_section": [16, 24, 24]},
    ),
    # Uni-MoE v1 (LLaMA/Vicuna-7B, LoRA experts over frozen FFNs, top-2 softmax routing)
    "unimoe_4e": {**_V1_7B, "num_experts": 4},
    "unimoe_8e": {**_V1_7B, "num_experts": 8},
    # tiny sizes for tests (fast on a CPU); same structure as unimoe2_omni
    "tiny": dict(
        vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, dynamic_intermediate_size=32, shared_intermediate_size=16,
        max_position_embeddings=2048, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
        bos_token_id=1, eos_token_id=2, pad_token_id=0, torch_dtype="float32",
    ),
    # tiny omni model for tests and the embedded default: the real Qwen2.5 vocabulary, tiny towers
    "tiny_omni": dict(
        vocab_size=151_936, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, dynamic_intermediate_size=64, shared_intermediate_size=32, tie_word_embeddings=True,
        max_position_embeddings=4096, rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
        torch_dtype="float32",
        vision_config=dict(kind="siglip", image_size=32, patch_size=8, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, spatial_pool=2,
                           grid_pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]]),
        audio_config=dict(d_model=64, encoder_layers=2, decoder_layers=1, encoder_attention_heads=4,
                          decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, num_mel_bins=80,
                          max_source_positions=100, max_target_positions=64, vocab_size=8, pad_token_id=0, bos_token_id=1,
                          eos_token_id=2, decoder_start_token_id=1, query_tokens=20,
                          max_chunks=4, chunk_samples=32_000,  # 2 s chunks (clips <= 2 s); 3D ids still read 30 s
                          init_std=0.2),  # at 0.02 the sinusoidal positions drown a from-scratch encoder's input
    ),
    "tiny_v1": dict(
        moe_type="topk_lora", vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, rope_theta=10_000.0, rope_scaling={}, attention_bias=False,
        num_experts=4, num_experts_per_tok=2, lora_r=4, mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=0,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, torch_dtype="float32",
    ),
}

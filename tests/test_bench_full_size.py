"""bench/full_size.py: the CPU smoke run writes a complete, finite report, and the full-size parameter count
(meta device) equals the count computed by hand from the config fields."""

import importlib.util
import json
import math
from pathlib import Path

import pytest

from unimoe.config import UniMoEConfig

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "full_size.py"


@pytest.fixture(scope="module")
def full_size():
    spec = importlib.util.spec_from_file_location("bench_full_size", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_params(c: UniMoEConfig) -> dict[str, int]:
    """Parameter counts from the config fields alone (Qwen2 attention with q/k/v biases, SwiGLU experts)."""
    d, hd = c.hidden_size, c.head_dim
    q, kv = c.num_attention_heads * hd, c.num_key_value_heads * hd
    bias = c.attention_bias
    attention = (d * q + q * bias) + 2 * (d * kv + kv * bias) + q * d
    router = d * (c.mlp_dynamic_expert_num + c.mlp_dynamic_null_expert_num + c.mlp_fixed_expert_num)
    routed_one = 3 * d * c.dynamic_intermediate_size
    shared_one = 3 * d * c.shared_intermediate_size
    experts = c.mlp_dynamic_expert_num * routed_one + c.mlp_fixed_expert_num * shared_one
    per_layer = attention + 2 * d + router + experts
    embedding = c.vocab_size * d
    lm_head = 0 if c.tie_word_embeddings else c.vocab_size * d
    return {"total": embedding + lm_head + d + c.num_hidden_layers * per_layer,
            "routed_per_expert": c.num_hidden_layers * routed_one,
            "shared_one": c.num_hidden_layers * shared_one,
            "attention": c.num_hidden_layers * attention}


def test_full_size_count_matches_config_arithmetic(full_size):
    config = UniMoEConfig.preset("unimoe2_omni")
    parts = full_size.param_breakdown(full_size.build_meta(config))
    want = expected_params(config)
    assert parts["total"] == want["total"]
    assert parts["attention"] == want["attention"]
    assert parts["other"] == 0 and parts["dense_mlp"] == 0
    active = full_size.active_params(parts, config)
    assert active["routed_per_expert"] == want["routed_per_expert"]
    assert parts["shared_experts"] == config.mlp_fixed_expert_num * want["shared_one"]
    # the paper's sizes (Table 1, via the architecture report §1.10): 26B MoE-LLM, 5.7B per routed expert,
    # 712M per shared expert; the vocabulary (151,936 here, 152,064 inferred there) moves the total < 0.01 %
    assert math.isclose(parts["total"], 26.15e9, rel_tol=1e-3)
    assert math.isclose(want["routed_per_expert"], 5.70e9, rel_tol=2e-3)
    assert math.isclose(want["shared_one"], 712e6, rel_tol=2e-3)
    # Top-P 0.7 over 4 routed + 1 null opens at most ceil(3.5) = 4 slots
    assert active["max_routed_per_token"] == 4
    assert active["per_k"][0] == parts["total"] - parts["embedding"] - parts["routed_experts"]
    assert active["per_k"][3] - active["per_k"][0] == 3 * want["routed_per_expert"]


def test_count_only_ignores_layers_override(full_size, tmp_path):
    out = tmp_path / "count.json"
    assert full_size.main(["--count-only", "--layers", "2", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["full_config_params"]["layers"] == 28
    want = expected_params(UniMoEConfig.preset("unimoe2_omni"))["total"]
    assert report["full_config_params"]["total"] == want
    assert "prefill" not in report and report["ok"]


def _finite_numbers(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _finite_numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _finite_numbers(v)
    elif isinstance(value, float):
        yield value


def test_cpu_smoke_run_report(full_size, tmp_path):
    out = tmp_path / "sub" / "full_size.json"
    argv = ["--preset", "tiny", "--device", "cpu", "--dtype", "float32", "--prefill", "64", "--prompt", "16",
            "--new-tokens", "8", "--repeats", "2", "--out", str(out)]
    assert full_size.main(argv) == 0
    report = json.loads(out.read_text())
    assert report["ok"] and report["errors"] == []
    config = UniMoEConfig.preset("tiny")
    assert report["params"]["total"] == expected_params(config)["total"]
    assert report["params"]["bytes"] == 4 * report["params"]["total"]
    prefill, gen = report["prefill"], report["generate"]
    assert prefill["tokens"] == 64 and len(prefill["seconds"]) == 2
    assert prefill["logits_finite"] is True and prefill["tokens_per_s"] > 0
    assert gen["new_tokens"] == gen["new_tokens_requested"] == 8 and gen["finish_reason"] == "length"
    assert gen["prompt_tokens"] == 16 and gen["tokens_in_vocab"]
    assert gen["new_tokens_per_s"] > 0 and gen["decode_tokens_per_s"] > 0
    a = report["active_params"]
    assert 0 <= a["measured_mean_routed"] <= a["max_routed_per_token"]
    assert a["per_k"]["0"] <= a["measured"] <= a["per_k"][str(a["max_routed_per_token"])]
    assert all(math.isfinite(x) for x in _finite_numbers(report))
    assert "paper" not in report  # the paper's sizes are for the full preset only


def test_layers_override_and_bf16_build(full_size):
    """``--layers`` shrinks the built model (not the full-size count); bf16 weights take 2 bytes each."""
    args = full_size.parse_args(["--preset", "tiny", "--device", "cpu", "--dtype", "bf16", "--layers", "1",
                                 "--prefill", "8", "--prompt", "4", "--new-tokens", "2", "--repeats", "1"])
    report = full_size.run(args)
    assert report["ok"], report["errors"]
    assert report["config"]["num_hidden_layers"] == 1 and report["full_config_params"]["layers"] == 2
    one_layer = UniMoEConfig.preset("tiny").replace(num_hidden_layers=1)
    assert report["params"]["total"] == expected_params(one_layer)["total"]
    assert report["params"]["bytes"] == 2 * report["params"]["total"]
    assert report["generate"]["new_tokens"] == 2


def test_build_context_dtype(full_size):
    """Modules built in the context take its dtype, explicit fp32 tables stay fp32, the default comes back."""
    import torch

    before = torch.get_default_dtype()
    with full_size.default_device_dtype(torch.device("cpu"), torch.bfloat16):
        model = full_size.UniMoEForCausalLM(UniMoEConfig.preset("tiny"))
    assert torch.get_default_dtype() == before
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.model.rotary.inv_freq.dtype == torch.float32


def test_unusable_device_is_reported(full_size, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    out = tmp_path / "r.json"
    assert full_size.main(["--preset", "tiny", "--device", "cuda", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert not report["ok"] and report["errors"][0]["phase"] == "build"
    assert report["full_config_params"]["total"] > 0  # the counts are still there

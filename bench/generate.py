"""End-to-end greedy generation speed: our Uni-MoE decoder against transformers' Qwen2-MoE causal LM.

Both models have the same size and the same active experts (top-2 of N routed experts + one shared expert
per layer) and share every weight they have in common: embeddings, attention, norms, router rows, routed
and shared experts, LM head. They still differ in how the shared expert is weighted (Uni-MoE: a softmax
share; Qwen2-MoE: a sigmoid gate), so their greedy tokens may differ; both generate exactly
``--new-tokens`` tokens (no eos), so the work is equal.

    python bench/generate.py [--quick] [--batch 1] [--prompt 128] [--new-tokens 64] [--repeats 3]

Prints tokens/s (new tokens over the wall time of the whole ``generate`` call, prefill included) and the
ratio ours / transformers, measured in the same process, alternating the two models.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unimoe.config import UniMoEConfig

from unimoe.checkpoint import to_released
from unimoe.model import UniMoEForCausalLM, generate

PROJ = ("gate_proj", "up_proj", "down_proj")


def small_config(quick: bool) -> UniMoEConfig:
    """A small Qwen2.5-shaped MoE decoder in top-k mode: no null expert, one shared expert."""
    hidden, layers = (256, 4) if quick else (512, 8)
    return dataclasses.replace(
        UniMoEConfig.preset("tiny"),
        vocab_size=8192,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=2,
        mlp_dynamic_expert_num=8,
        mlp_dynamic_null_expert_num=0,
        mlp_fixed_expert_num=1,
        mlp_dynamic_top_p=0.0,
        mlp_dynamic_top_k=2,
        dynamic_intermediate_size=hidden,
        shared_intermediate_size=hidden,
        rope_scaling=None,
        tie_word_embeddings=False,
    )


def qwen2_moe_twin(config: UniMoEConfig, ours: UniMoEForCausalLM):
    """transformers' Qwen2MoeForCausalLM with our dimensions, loaded with our weights."""
    from transformers import Qwen2MoeConfig, Qwen2MoeForCausalLM

    hf_config = Qwen2MoeConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        num_experts=config.mlp_dynamic_expert_num,
        num_experts_per_tok=config.mlp_dynamic_top_k,
        moe_intermediate_size=config.dynamic_intermediate_size,
        shared_expert_intermediate_size=config.shared_intermediate_size,
        intermediate_size=config.dynamic_intermediate_size,
        norm_topk_prob=True,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        rms_norm_eps=config.rms_norm_eps,
        rope_theta=config.rope_theta,
        tie_word_embeddings=False,
        max_position_embeddings=4096,
    )
    twin = Qwen2MoeForCausalLM(hf_config).eval()
    released = to_released(ours.state_dict(), config)
    state = {}
    n_routed = config.mlp_dynamic_expert_num
    for key, value in released.items():
        if ".mlp." not in key:
            state[key] = value
    for layer in range(config.num_hidden_layers):
        p = f"model.layers.{layer}.mlp."
        state[p + "gate.weight"] = released[p + "gate.weight"][:n_routed]
        expert = p + "dynamic_real_moe.deepspeed_moe.experts.deepspeed_experts.{e}.{proj}.weight"
        state[p + "experts.gate_up_proj"] = torch.stack([
            torch.cat([released[expert.format(e=e, proj="gate_proj")], released[expert.format(e=e, proj="up_proj")]])
            for e in range(n_routed)
        ])
        state[p + "experts.down_proj"] = torch.stack([released[expert.format(e=e, proj="down_proj")] for e in range(n_routed)])
        for proj in PROJ:
            state[p + f"shared_expert.{proj}.weight"] = released[p + f"fixed_real_moe.0.{proj}.weight"]
        state[p + "shared_expert_gate.weight"] = torch.zeros(1, config.hidden_size)
    result = twin.load_state_dict(state, strict=False)
    unexpected = list(result.unexpected_keys)
    missing = [k for k in result.missing_keys if "rotary" not in k]
    if unexpected or missing:
        raise RuntimeError(f"weight transfer to Qwen2-MoE failed: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return twin


def time_ours(model, ids, new_tokens) -> float:
    t0 = time.perf_counter()
    out = generate(model, ids, max_new_tokens=new_tokens)
    elapsed = time.perf_counter() - t0
    assert all(len(t) == new_tokens for t in out.tokens)
    return elapsed


def time_theirs(model, ids, new_tokens) -> float:
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, eos_token_id=None)
    elapsed = time.perf_counter() - t0
    assert out.shape[1] == ids.shape[1] + new_tokens
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and fewer tokens")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.quick:
        args.prompt, args.new_tokens, args.repeats = 32, 16, 2

    torch.manual_seed(0)
    config = small_config(args.quick)
    ours = UniMoEForCausalLM(config).eval()
    theirs = qwen2_moe_twin(config, ours)
    ours, theirs = ours.to(args.device), theirs.to(args.device)
    ids = torch.randint(3, config.vocab_size, (args.batch, args.prompt), device=args.device)

    time_ours(ours, ids, 2), time_theirs(theirs, ids, 2)  # warm-up
    ours_s, theirs_s = [], []
    for _ in range(args.repeats):
        ours_s.append(time_ours(ours, ids, args.new_tokens))
        theirs_s.append(time_theirs(theirs, ids, args.new_tokens))
    tokens = args.batch * args.new_tokens
    ours_tps = tokens / statistics.median(ours_s)
    theirs_tps = tokens / statistics.median(theirs_s)
    impl = getattr(theirs.config, "_experts_implementation", "default")
    print(f"model: hidden {config.hidden_size}, {config.num_hidden_layers} layers, {config.mlp_dynamic_expert_num} "
          f"experts top-{config.mlp_dynamic_top_k} + 1 shared, vocab {config.vocab_size}; device {args.device}, "
          f"threads {torch.get_num_threads()}")
    print(f"batch {args.batch}, prompt {args.prompt}, new tokens {args.new_tokens}, median of {args.repeats}")
    print(f"ours (unimoe)              {ours_tps:9.1f} tokens/s")
    print(f"transformers Qwen2-MoE ({impl}) {theirs_tps:9.1f} tokens/s")
    print(f"ratio ours / transformers  {ours_tps / theirs_tps:9.2f}x")


if __name__ == "__main__":
    main()

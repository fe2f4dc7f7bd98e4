"""End-to-end greedy generation speed: our Uni-MoE decoder against transformers' Qwen2-MoE causal LM.

Both models have the same size and the same active experts (top-2 of N routed experts + one shared expert
per layer) and share every weight they have in common: embeddings, attention, norms, router rows, routed
and shared experts, LM head. They still differ in how the shared expert is weighted (Uni-MoE: a softmax
share; Qwen2-MoE: a sigmoid gate), so their greedy tokens may differ; both generate exactly
``--new-tokens`` tokens (no eos), so the work is equal.

    python bench/generate.py [--quick] [--batch 1[,16...]] [--prompt 128] [--new-tokens 64] [--repeats 3]
                             [--device cpu] [--dtype fp32] [--full-width [--layers 28]]
                             [--decode eager|static|compiled|compiled-layer] [--out result.json]

Prints tokens/s (new tokens over the wall time of the whole ``generate`` call, prefill included) and the
ratio ours / transformers, measured in the same process, alternating the two models, for each batch size.
``--full-width`` gives both models Uni-MoE-2.0-Omni's dimensions (hidden 3584, 28 layers, 4 routed experts of
width 18,944 in top-2, one shared expert as wide as its two, vocabulary 152,064) and builds them on the device
in ``--dtype``; ``--decode`` picks our decode path (:mod:`unimoe.decode`; ``compiled`` uses CUDA graphs on
CUDA and compiles in the warm-up). On CUDA the peak memory of each timed generation is reported too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.full_size import default_device_dtype as built_on
from bench.full_size import sync
from unimoe.config import UniMoEConfig
from unimoe.decode import DECODE_MODES, DecodeStep, decode_step
from unimoe.model import UniMoEForCausalLM, generate

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def full_width_config(layers: int) -> UniMoEConfig:
    """Uni-MoE-2.0-Omni's decoder dimensions in top-2 mode: 4 routed experts, no null, one shared expert of
    twice the released shared width (the same parameters as its two shared experts)."""
    omni = UniMoEConfig.preset("unimoe2_omni")
    return omni.replace(num_hidden_layers=layers, mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=1,
                        mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=2,
                        shared_intermediate_size=2 * omni.shared_intermediate_size, tie_word_embeddings=False)


def qwen2_moe_twin(config: UniMoEConfig, ours: UniMoEForCausalLM):
    """transformers' Qwen2MoeForCausalLM with our dimensions, device and dtype, holding our weights (copied in
    place, one tensor at a time, so that two full-size models are the peak)."""
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
    weight = ours.lm_head.weight
    with built_on(weight.device, weight.dtype):
        twin = Qwen2MoeForCausalLM(hf_config).eval()
    theirs = dict(twin.named_parameters())
    written: set[str] = set()

    @torch.no_grad()
    def put(name: str, value: torch.Tensor, rows: slice | None = None) -> None:
        (theirs[name] if rows is None else theirs[name][:, rows]).copy_(value)
        written.add(name)

    n_routed, inner = config.mlp_dynamic_expert_num, config.dynamic_intermediate_size
    for name, value in ours.named_parameters():
        if ".mlp." not in name:
            put(name, value)
    for i, layer in enumerate(ours.model.layers):
        p, mlp = f"model.layers.{i}.mlp.", layer.mlp
        put(p + "gate.weight", mlp.gate.weight[:n_routed])
        put(p + "experts.gate_up_proj", mlp.routed_experts.gate_proj, slice(0, inner))
        put(p + "experts.gate_up_proj", mlp.routed_experts.up_proj, slice(inner, 2 * inner))
        put(p + "experts.down_proj", mlp.routed_experts.down_proj)
        for proj in ("gate_proj", "up_proj", "down_proj"):
            put(p + f"shared_expert.{proj}.weight", getattr(mlp.shared_experts, proj)[0])
        put(p + "shared_expert_gate.weight", torch.zeros(1, config.hidden_size))
    if missing := sorted(set(theirs) - written):
        raise RuntimeError(f"weight transfer to Qwen2-MoE failed: not written {missing[:5]}")
    return twin


def time_ours(model, ids, new_tokens, step: DecodeStep | None = None) -> float:
    sync(ids.device)
    t0 = time.perf_counter()
    out = generate(model, ids, max_new_tokens=new_tokens, step=step)
    sync(ids.device)
    elapsed = time.perf_counter() - t0
    assert all(len(t) == new_tokens for t in out.tokens)
    return elapsed


def time_theirs(model, ids, new_tokens) -> float:
    sync(ids.device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, eos_token_id=None)
    sync(ids.device)
    elapsed = time.perf_counter() - t0
    assert out.shape[1] == ids.shape[1] + new_tokens
    return elapsed


def memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def compare(ours, theirs, ids: torch.Tensor, args: argparse.Namespace, step: DecodeStep | None) -> dict:
    """Both models on the batch ``ids``: warm-up (compilation included), then alternating timed runs."""
    warm = min(8, args.new_tokens)
    time_ours(ours, ids, warm, step), time_theirs(theirs, ids, warm)
    ours_s, theirs_s, peaks = [], [], {"ours": None, "theirs": None}
    for _ in range(args.repeats):
        for name, runs, run in (("ours", ours_s, lambda: time_ours(ours, ids, args.new_tokens, step)),
                                ("theirs", theirs_s, lambda: time_theirs(theirs, ids, args.new_tokens))):
            if ids.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(ids.device)
            runs.append(run())
            peaks[name] = memory_gib(ids.device)
    tokens = ids.numel() // ids.shape[1] * args.new_tokens
    ours_tps, theirs_tps = tokens / statistics.median(ours_s), tokens / statistics.median(theirs_s)
    return {"batch": ids.shape[0], "ours_tokens_per_s": ours_tps, "transformers_tokens_per_s": theirs_tps,
            "ratio": ours_tps / theirs_tps, "ours_seconds": ours_s, "transformers_seconds": theirs_s,
            "ours_peak_allocated_gib": peaks["ours"], "transformers_peak_allocated_gib": peaks["theirs"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller model and fewer tokens")
    parser.add_argument("--batch", default="1", help="batch sizes, comma-separated (e.g. 1,16)")
    parser.add_argument("--prompt", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--full-width", action="store_true", help="Uni-MoE-2.0-Omni dimensions (top-2 routing)")
    parser.add_argument("--layers", type=int, default=28, help="decoder layers with --full-width")
    parser.add_argument("--decode", default="eager", choices=DECODE_MODES,
                        help="our decode steps: eager path, static-shape step (unimoe.decode), that step compiled whole, "
                             "or one compiled graph per layer")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.quick:
        args.prompt, args.new_tokens, args.repeats = 32, 16, 2
    batches = [int(b) for b in args.batch.split(",")]
    device, dtype = torch.device(args.device), DTYPES[args.dtype]

    torch.manual_seed(0)
    config = full_width_config(args.layers) if args.full_width else small_config(args.quick)
    with built_on(device, dtype):
        ours = UniMoEForCausalLM(config).eval().requires_grad_(False)
    theirs = qwen2_moe_twin(config, ours).requires_grad_(False)
    step = decode_step(ours, args.decode)
    impl = getattr(theirs.config, "_experts_implementation", "default")
    print(f"model: hidden {config.hidden_size}, {config.num_hidden_layers} layers, {config.mlp_dynamic_expert_num} "
          f"experts top-{config.mlp_dynamic_top_k} + 1 shared, vocab {config.vocab_size}; device {args.device}, "
          f"{args.dtype}, threads {torch.get_num_threads()}; our decode: {args.decode}", flush=True)
    results = {"config": {"hidden": config.hidden_size, "layers": config.num_hidden_layers,
                          "routed": config.mlp_dynamic_expert_num, "top_k": config.mlp_dynamic_top_k,
                          "vocab": config.vocab_size},
               "device": args.device, "dtype": args.dtype, "decode": args.decode, "prompt": args.prompt,
               "new_tokens": args.new_tokens, "repeats": args.repeats, "transformers_experts": impl, "rows": []}
    for batch in batches:
        ids = torch.randint(3, config.vocab_size, (batch, args.prompt), device=device)
        row = compare(ours, theirs, ids, args, step)
        results["rows"].append(row)
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"batch {batch}, prompt {args.prompt}, new tokens {args.new_tokens}, median of {args.repeats}")
        print(f"ours (unimoe)              {row['ours_tokens_per_s']:9.1f} tokens/s")
        print(f"transformers Qwen2-MoE ({impl}) {row['transformers_tokens_per_s']:9.1f} tokens/s")
        print(f"ratio ours / transformers  {row['ratio']:9.2f}x", flush=True)


if __name__ == "__main__":
    main()

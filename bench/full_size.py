"""Full-size acceptance check: a Uni-MoE-2.0-Omni-sized decoder with random weights runs a long prefill and a
greedy generation; prints tokens/s, peak memory and parameter counts, and writes them as JSON.

    python bench/full_size.py [--preset unimoe2_omni] [--device cuda] [--dtype bf16] [--prefill 4096]
                              [--prompt 128] [--new-tokens 128] [--repeats 3] [--layers N] [--out result.json]
                              [--decode eager|static|compiled|compiled-layer] [--device-rates]
    python bench/full_size.py --count-only      # the preset's parameter counts only (meta device, any CPU)
    python bench/full_size.py --preset tiny --device cpu --dtype float32 --prefill 64 --new-tokens 8   # smoke

What is built: the language model only (token embeddings, every decoder layer with its attention and
dynamic-capacity MoE block, final norm, LM head) as :class:`unimoe.model.UniMoEForCausalLM`. The vision and
audio towers and their connectors are not built (the ``unimoe2_omni`` preset has no tower configs; the paper
gives Whisper-Large-v3 637 M + SigLIP-So400M 398 M besides the 26 B MoE-LLM); the report says so.

The model is built directly on ``--device`` in ``--dtype`` (that device and dtype are the defaults while the
modules are constructed), so no full-size fp32 copy ever exists, and it is initialised by the model's own
init (normal, std 0.02 = ``initializer_range``; norms 1, biases 0) under ``torch.manual_seed(--seed)``.

Measurements (batch 1, text tokens, eval mode, ``torch.inference_mode``):

- prefill: one warm-up forward of ``--prefill`` tokens, then ``--repeats`` timed ones (all-position logits,
  as a scoring pass computes them); tokens/s from the median; the logits must be finite;
- generation: ``unimoe.model.generate`` (static KV cache, greedy, no eos, so exactly ``--new-tokens`` tokens)
  after a ``--prompt``-token prompt, after a short warm-up generation; new tokens/s over the whole call, and
  the decode rate with the prompt's prefill (timed separately, median of ``--repeats``) taken out;
- ``--decode``: the generation's decode steps: the eager path, the static-shape step of :mod:`unimoe.decode`,
  or that step compiled whole (``compiled``) or one graph per layer (``compiled-layer``; ``fullgraph``;
  ``mode="reduce-overhead"``, i.e. CUDA graphs, on CUDA); compiling
  happens in the warm-up generation;
- ``--device-rates`` (CUDA): a dense GEMM (8192^3, ``--dtype``) and a device-to-device copy measured in the same
  run; the prefill's FLOP rate (2 x measured active parameters per token) as a fraction of that GEMM rate, and
  the decode floor (the measured active parameters read once per step at the copy bandwidth) against the
  measured decode step;
- memory: ``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` per phase on CUDA (peak RSS on CPU);
- parameters: of the model built and, from a meta-device build, of the full preset (``--layers`` ignored),
  split into parts; active parameters per token for 0..K real routed experts, and at the mean number the
  random router actually chose in the prefill; the paper's sizes beside them.

CUDA timings use ``torch.cuda.synchronize``. The JSON is rewritten after every phase, so a run cut short still
leaves what it measured; the exit status is 1 when a phase failed or the logits were not finite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unimoe.config import UniMoEConfig  # noqa: E402
from unimoe.decode import DECODE_MODES, DecodeStep, decode_step  # noqa: E402
from unimoe.model import UniMoEForCausalLM, generate  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
          "fp32": torch.float32, "float32": torch.float32}
MIB = 2**20
INCLUDED = ("language model only: token embeddings, decoder layers (attention + MoE), final norm, LM head; "
            "no vision/audio towers or connectors")

# Sizes the Uni-MoE-2.0-Omni paper states (arXiv 2511.12609 Table 1 and §2.3; the 33B from the HF collection page).
PAPER = {
    "moe_llm_total": 26e9,  # "MoE-LLM 26B"
    "routed_expert_mlp": 5.7e9,  # one routed expert over all layers
    "shared_expert_mlp": 712e6,  # one shared expert over all layers
    "activated_expert_params": [1.5e9, 18e9],  # "2 shared + 0~3 routed" experts
    "routed_active_range": [0, 3],
    "hf_omni_total": 33e9,  # whole release: LLM + encoders + speech/image generators
    "whisper_encoder": 637e6,
    "siglip_encoder": 398e6,
    "note": "vocab 152,064 and an untied lm_head, as Qwen2.5-7B",
}


# ------------------------------------------------------------------------------------------------------
# parameters


def build_meta(config: UniMoEConfig) -> UniMoEForCausalLM:
    """The model with no storage (shapes only): counting the full size costs nothing."""
    with torch.device("meta"):
        return UniMoEForCausalLM(config)


def param_breakdown(model: UniMoEForCausalLM) -> dict[str, int]:
    """Parameter counts by part, from the module tree (tied weights counted once)."""
    parts = dict.fromkeys(("embedding", "lm_head", "attention", "norms", "router", "routed_experts",
                           "shared_experts", "dense_mlp", "other"), 0)
    seen: set[int] = set()
    for name, p in model.named_parameters():  # named_parameters() already skips a tied duplicate
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = p.numel()
        if name.startswith("model.embed_tokens"):
            key = "embedding"
        elif name.startswith("lm_head"):
            key = "lm_head"
        elif ".self_attn." in name:
            key = "attention"
        elif "layernorm" in name or name.startswith("model.norm"):
            key = "norms"
        elif ".mlp.gate." in name:
            key = "router"
        elif ".mlp.routed_experts." in name or ".mlp.experts." in name:  # v1: the LoRA experts (top-k)
            key = "routed_experts"
        elif ".mlp.shared_experts." in name:
            key = "shared_experts"
        elif ".mlp." in name:
            key = "dense_mlp"
        else:
            key = "other"
        parts[key] += n
    parts["total"] = sum(parts.values())
    return parts


def active_params(parts: dict[str, int], config: UniMoEConfig, mean_routed: float | None = None
                  ) -> dict[str, Any]:
    """Parameters that touch one token: everything but the embedding table (one row is read) and the routed
    experts not chosen. ``per_k[k]``: with k real routed experts in every layer; ``expert_only_per_k``: the
    experts alone (shared + k routed), which is what the paper's "1.5B-18B activated" counts."""
    if config.moe_type == "topk_lora":  # v1: exactly top-k experts, no shared ones
        n_routed, ks = config.num_experts, [config.num_experts_per_tok]
    else:  # Top-P opens at most ceil(p * N_d) slots (null included); top_p == 0: top_k slots
        n_routed = config.mlp_dynamic_expert_num
        p = config.mlp_dynamic_top_p
        slots = math.ceil(p * config.num_dynamic_experts) if p > 0 else config.mlp_dynamic_top_k
        ks = list(range(min(n_routed, slots) + 1))
    per_expert = parts["routed_experts"] // n_routed if n_routed else 0
    base = parts["total"] - parts["embedding"] - parts["routed_experts"]
    out: dict[str, Any] = {
        "n_routed": n_routed,
        "routed_per_expert": per_expert,
        "shared_all": parts["shared_experts"],
        "non_expert_without_embedding": base - parts["shared_experts"],
        "max_routed_per_token": max(ks),
        "per_k": {k: base + k * per_expert for k in ks},
        "expert_only_per_k": {k: parts["shared_experts"] + k * per_expert for k in ks},
    }
    if mean_routed is not None:
        out["measured_mean_routed"] = mean_routed
        out["measured"] = int(base + mean_routed * per_expert)
    return out


# ------------------------------------------------------------------------------------------------------
# device helpers


@contextlib.contextmanager
def default_device_dtype(device: torch.device, dtype: torch.dtype):
    """Modules built inside get their storage on ``device`` in ``dtype`` (explicit dtypes such as the rotary
    table's fp32 are kept)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(old)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[Any, float]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t0


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def memory(device: torch.device) -> dict[str, float | None]:
    if device.type == "cuda":
        return {"allocated_mib": torch.cuda.memory_allocated(device) / MIB,
                "peak_allocated_mib": torch.cuda.max_memory_allocated(device) / MIB,
                "peak_reserved_mib": torch.cuda.max_memory_reserved(device) / MIB}
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except Exception:  # not POSIX
        rss = None
    return {"allocated_mib": None, "peak_allocated_mib": None, "peak_reserved_mib": None,
            "process_peak_rss_mib": rss}


def environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                           "threads": torch.get_num_threads()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, device_memory_mib=props.total_memory / MIB,
                   cuda=torch.version.cuda)
    else:
        env["device_name"] = platform.processor() or platform.machine()
    try:
        root = Path(__file__).resolve().parent.parent
        env["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                    text=True, timeout=5).stdout.strip() or None
    except Exception:
        env["git"] = None
    return env


# ------------------------------------------------------------------------------------------------------
# the run


def config_for(args: argparse.Namespace) -> UniMoEConfig:
    config = UniMoEConfig.preset(args.preset)
    if args.layers:
        config = config.replace(num_hidden_layers=args.layers)
    return config


def config_summary(c: UniMoEConfig) -> dict[str, Any]:
    return {k: getattr(c, k) for k in (
        "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
        "moe_type", "mlp_dynamic_expert_num", "mlp_dynamic_null_expert_num", "mlp_fixed_expert_num",
        "mlp_dynamic_top_p", "dynamic_intermediate_size", "shared_intermediate_size", "tie_word_embeddings")}


def routing_counter(model: UniMoEForCausalLM):
    """Forward hooks summing real routed experts per token over the MoE layers (on the device: no sync)."""
    state = {"sum": None, "calls": 0}

    def hook(_module, _inputs, output):
        if isinstance(output, tuple) and len(output) == 2 and hasattr(output[1], "num_active"):
            value = output[1].num_active.float().mean()
            state["sum"] = value if state["sum"] is None else state["sum"] + value
            state["calls"] += 1

    handles = [layer.mlp.register_forward_hook(hook) for layer in model.model.layers if layer.is_moe]
    return state, handles


def _error(phase: str, error: BaseException) -> dict[str, str]:
    return {"phase": phase, "error": repr(error), "traceback": traceback.format_exc()}


@torch.inference_mode()
def measure_prefill(model: UniMoEForCausalLM, ids: torch.Tensor, repeats: int, device: torch.device
                    ) -> tuple[dict[str, Any], float | None]:
    """(prefill report, mean real routed experts per token and layer) for the prompt ``ids [1, T]``."""
    counter, handles = routing_counter(model)
    try:
        warm, warm_s = timed(lambda: model(ids), device)  # warm-up, and the routing statistics
    finally:
        for h in handles:
            h.remove()
    mean_routed = float(counter["sum"] / counter["calls"]) if counter["calls"] else None
    logits = warm.logits.float()
    stats = {"logits_finite": bool(torch.isfinite(logits).all()), "logits_std": float(logits.std()),
             "logits_absmax": float(logits.abs().max())}
    del warm, logits
    reset_peak(device)
    times = []
    for _ in range(repeats):
        out, seconds = timed(lambda: model(ids), device)
        times.append(seconds)
        stats["logits_finite"] &= bool(torch.isfinite(out.logits).all())
        del out
    median = statistics.median(times)
    report = {"tokens": ids.shape[1], "warmup_s": warm_s, "seconds": times, "median_s": median,
              "tokens_per_s": ids.shape[1] / median, **stats, "memory": memory(device)}
    return report, mean_routed


@torch.inference_mode()
def measure_device_rates(device: torch.device, dtype: torch.dtype, repeats: int = 10) -> dict[str, float]:
    """The rates the goals are measured against, in this run: a dense ``n^3`` GEMM and a device-to-device copy
    of 4 GiB (bytes read + written), medians of ``repeats``."""
    def median_s(fn) -> float:
        fn()  # warm-up
        return statistics.median(timed(fn, device)[1] for _ in range(repeats))

    def gemm_s(n: int) -> float:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        return median_s(lambda: a @ b)

    def copy_s(n_bytes: int) -> float:
        src = torch.empty(n_bytes // 2, dtype=torch.int16, device=device)
        dst = torch.empty_like(src)
        return median_s(lambda: dst.copy_(src))

    n, n_bytes = 8192, 2**32
    return {"gemm_n": n, "gemm_tflops": 2 * n**3 / gemm_s(n) / 1e12,
            "copy_bandwidth_gb_s": 2 * n_bytes / copy_s(n_bytes) / 1e9}


def goals(report: dict[str, Any], bytes_per_param: int) -> dict[str, Any]:
    """Prefill FLOP rate against the dense GEMM rate; decode step against reading the active weights once."""
    rates, active = report.get("device_rates"), report.get("active_params", {}).get("measured")
    out: dict[str, Any] = {}
    if not rates or not active:
        return out
    if "prefill" in report:
        tflops = 2 * active * report["prefill"]["tokens_per_s"] / 1e12
        out.update(prefill_tflops=tflops, prefill_fraction_of_gemm=tflops / rates["gemm_tflops"])
    step_ms = report.get("generate", {}).get("decode_step_ms")
    floor_ms = 1000 * active * bytes_per_param / (rates["copy_bandwidth_gb_s"] * 1e9)
    out["decode_floor_ms"] = floor_ms
    if step_ms:
        out.update(decode_step_ms=step_ms, decode_fraction_of_floor=floor_ms / step_ms)
    return out


@torch.inference_mode()
def measure_generation(model: UniMoEForCausalLM, prompt: torch.Tensor, new_tokens: int, repeats: int,
                       device: torch.device, step: DecodeStep | None = None) -> dict[str, Any]:
    """Greedy generation of exactly ``new_tokens`` after ``prompt [1, T]`` by the model's ``generate``."""
    warm_s = timed(lambda: generate(model, prompt, max_new_tokens=min(4, new_tokens), eos_token_id=None, step=step),
                   device)[1]  # warm-up (and compilation)

    def prompt_prefill() -> None:  # the first forward of ``generate``: the prompt into a fresh cache
        model(prompt, cache=model.new_cache(1, prompt.shape[1] + new_tokens), last_token_only=True)

    prompt_s = statistics.median(timed(prompt_prefill, device)[1] for _ in range(repeats))
    reset_peak(device)
    result, seconds = timed(lambda: generate(model, prompt, max_new_tokens=new_tokens, eos_token_id=None,
                                             step=step), device)
    tokens = result.tokens[0]
    steps = len(tokens) - 1  # decode forwards: the first new token comes from the prompt's prefill
    decode_s = seconds - prompt_s
    return {
        "warmup_s": warm_s, "prompt_tokens": prompt.shape[1], "new_tokens_requested": new_tokens,
        "new_tokens": len(tokens),
        "finish_reason": result.finish_reasons[0], "seconds": seconds,
        "new_tokens_per_s": len(tokens) / seconds,
        "prompt_prefill_s": prompt_s,  # median of ``repeats`` separate runs
        # None when the prefill's own timing noise exceeds the decode time (tiny models on a CPU)
        "decode_step_ms": 1000 * decode_s / steps if steps > 0 and decode_s > 0 else None,
        "decode_tokens_per_s": steps / decode_s if steps > 0 and decode_s > 0 else None,
        "tokens_in_vocab": all(0 <= t < model.config.vocab_size for t in tokens), "first_tokens": tokens[:8],
        "tokens": tokens,
        "memory": memory(device),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything ``main`` does except printing; returns the report (also written to ``args.out``)."""
    t_start = time.perf_counter()
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    config, full_config = config_for(args), UniMoEConfig.preset(args.preset)
    report: dict[str, Any] = {
        "preset": args.preset, "device": str(device), "dtype": str(dtype).removeprefix("torch."), "decode": args.decode,
        "seed": args.seed, "included": INCLUDED, "config": config_summary(config), "errors": [], "ok": False,
    }

    def save() -> None:
        report["total_s"] = time.perf_counter() - t_start
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=2) + "\n")

    full_parts = param_breakdown(build_meta(full_config))
    report["full_config_params"] = {"layers": full_config.num_hidden_layers, **full_parts,
                                    "bytes_bf16": full_parts["total"] * 2}
    report["full_config_active"] = active_params(full_parts, full_config)
    if args.preset == "unimoe2_omni":
        report["paper"] = PAPER
    if args.count_only:
        report["ok"] = True
        save()
        return report

    try:
        report["environment"] = environment(device)
        save()
        torch.manual_seed(args.seed)
        reset_peak(device)
        with default_device_dtype(device, dtype):
            model, report["build_s"] = timed(lambda: UniMoEForCausalLM(config), device)
    except Exception as error:  # no such device, out of memory: in the JSON too
        report["errors"].append(_error("build", error))
        save()
        return report
    model.eval().requires_grad_(False)
    parts = param_breakdown(model)
    unique = {id(p): p for p in model.parameters()}.values()
    report["params"] = {**parts, "bytes": sum(p.numel() * p.element_size() for p in unique)}
    report["memory_after_build"] = memory(device)
    save()

    ok = True
    if args.device_rates:
        try:
            report["device_rates"] = measure_device_rates(device, dtype)
        except Exception as error:
            ok = False
            report["errors"].append(_error("device_rates", error))
    step = decode_step(model, args.decode)
    ids_gen = torch.Generator().manual_seed(args.seed + 1)
    n_ids = max(args.prefill, args.prompt)  # the prompt is the prefill's beginning
    ids = torch.randint(0, config.vocab_size, (1, n_ids), generator=ids_gen).to(device)
    try:
        report["prefill"], mean_routed = measure_prefill(model, ids[:, : args.prefill], args.repeats, device)
        report["active_params"] = active_params(parts, config, mean_routed)
        ok &= report["prefill"]["logits_finite"]
    except Exception as error:  # go on: the generation may still tell something (e.g. after an OOM)
        ok = False
        report["errors"].append(_error("prefill", error))
    save()
    try:
        gen = measure_generation(model, ids[:, : args.prompt], args.new_tokens, args.repeats, device, step)
        report["generate"] = gen
        ok &= gen["new_tokens"] == args.new_tokens and gen["tokens_in_vocab"]
    except Exception as error:
        ok = False
        report["errors"].append(_error("generate", error))
    if step is not None and "generate" in report:  # the eager path in the same run: speed-up and agreement
        try:
            eager = measure_generation(model, ids[:, : args.prompt], args.new_tokens, 1, device)
            report["generate_eager"] = eager
            a, b = report["generate"]["tokens"], eager["tokens"]
            report["decode_vs_eager"] = {
                "speedup": eager["decode_step_ms"] / report["generate"]["decode_step_ms"]
                if eager["decode_step_ms"] and report["generate"]["decode_step_ms"] else None,
                "equal_leading_tokens": next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b))),
                "tokens": min(len(a), len(b))}
        except Exception as error:
            ok = False
            report["errors"].append(_error("generate_eager", error))
    for key in ("peak_allocated_mib", "peak_reserved_mib"):  # the larger of the two phases (CUDA only)
        values = [report[phase]["memory"][key] for phase in ("prefill", "generate") if phase in report]
        values = [v for v in values if v is not None]
        report[key] = max(values) if values else None
    report["goals"] = goals(report, torch.finfo(dtype).bits // 8)
    report["ok"] = ok
    save()
    return report


# ------------------------------------------------------------------------------------------------------
# printing


def _b(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e9:.3f} B" if n >= 1e8 else f"{n / 1e6:.2f} M"


def _mib(m: dict[str, Any]) -> str:
    if m.get("peak_allocated_mib") is not None:
        return (f"{m['peak_allocated_mib'] / 1024:.2f} GiB allocated, "
                f"{m['peak_reserved_mib'] / 1024:.2f} GiB reserved")
    rss = m.get("process_peak_rss_mib")
    return "-" if rss is None else f"process RSS {rss:.0f} MiB"


def format_report(r: dict[str, Any]) -> str:
    fp, fa, paper = r["full_config_params"], r["full_config_active"], r.get("paper")
    n_shared = r["config"]["mlp_fixed_expert_num"] if r["config"]["moe_type"] == "dynamic" else 0
    shared_each = fp["shared_experts"] // n_shared if n_shared else 0
    lines = [f"preset {r['preset']} at full size ({fp['layers']} layers; {r['included']})"]
    lines.append(f"  total {_b(fp['total'])} ({fp['bytes_bf16'] / 2**30:.1f} GiB in bf16)"
                 + (f"   paper: MoE-LLM {_b(paper['moe_llm_total'])}; whole release with towers and "
                    f"generators {_b(paper['hf_omni_total'])}" if paper else ""))
    lines.append(f"  embedding {_b(fp['embedding'])}  lm_head {_b(fp['lm_head'])}  attention "
                 f"{_b(fp['attention'])}  router {_b(fp['router'])}  norms {_b(fp['norms'])}"
                 + (f"  dense MLP {_b(fp['dense_mlp'])}" if fp["dense_mlp"] else ""))
    lines.append(f"  routed experts {fa['n_routed']} x {_b(fa['routed_per_expert'])}"
                 + (f" (paper {_b(paper['routed_expert_mlp'])})" if paper else "")
                 + f"   shared experts {n_shared} x {_b(shared_each)}"
                 + (f" (paper {_b(paper['shared_expert_mlp'])})" if paper else ""))
    per_k = "  ".join(f"{k}: {_b(v)}" for k, v in fa["per_k"].items())
    expert_k = "  ".join(f"{k}: {_b(v)}" for k, v in fa["expert_only_per_k"].items())
    lines.append(f"  active per token, by real routed experts per layer   {per_k}")
    lines.append(f"    of which experts (shared + routed)                {expert_k}"
                 + (f"   (paper: {_b(paper['activated_expert_params'][0])} to "
                    f"{_b(paper['activated_expert_params'][1])} for 2 shared + 0~3 routed)" if paper else ""))
    if "params" in r:
        env, p = r.get("environment", {}), r["params"]
        lines.append(f"run: {r['device']} ({env.get('device_name')}), {r['dtype']}, torch "
                     f"{env.get('torch')}, {r['config']['num_hidden_layers']} layers, {_b(p['total'])} "
                     f"params = {p['bytes'] / 2**30:.2f} GiB, built in {r.get('build_s', 0):.1f} s")
    if "prefill" in r:
        f = r["prefill"]
        lines.append(f"  prefill {f['tokens']} tokens: {f['median_s'] * 1000:.1f} ms (median of "
                     f"{len(f['seconds'])}) -> {f['tokens_per_s']:,.0f} tokens/s; logits finite "
                     f"{f['logits_finite']} (std {f['logits_std']:.3g}); peak {_mib(f['memory'])}")
        a = r.get("active_params", {})
        if a.get("measured_mean_routed") is not None:
            lines.append(f"  the random router chose {a['measured_mean_routed']:.2f} real routed experts per "
                         f"token and layer -> {_b(a['measured'])} active per token")
    if "generate" in r:
        g = r["generate"]
        decode = "-" if g["decode_tokens_per_s"] is None else \
            f"{g['decode_tokens_per_s']:.1f} tokens/s ({g['decode_step_ms']:.1f} ms/step)"
        lines.append(f"  generate {g['new_tokens']}/{g['new_tokens_requested']} tokens after a "
                     f"{g['prompt_tokens']}-token prompt: {g['seconds']:.2f} s -> "
                     f"{g['new_tokens_per_s']:.1f} new tokens/s; decode alone {decode}; "
                     f"peak {_mib(g['memory'])}")
    if r.get("device_rates"):
        d = r["device_rates"]
        lines.append(f"  same run: dense GEMM {d['gemm_tflops']:.1f} TFLOP/s, device copy {d['copy_bandwidth_gb_s']:,.0f} GB/s")
    if r.get("decode_vs_eager"):
        v = r["decode_vs_eager"]
        speedup = "-" if v["speedup"] is None else f"{v['speedup']:.2f}x"
        lines.append(f"  {r['decode']} decode against the eager path in this run: {speedup} per step; first "
                     f"{v['equal_leading_tokens']} of {v['tokens']} greedy tokens equal")
    if r.get("goals"):
        g = r["goals"]
        if "prefill_fraction_of_gemm" in g:
            lines.append(f"  prefill {g['prefill_tflops']:.1f} TFLOP/s = {g['prefill_fraction_of_gemm']:.0%} of the GEMM rate")
        if "decode_fraction_of_floor" in g:
            lines.append(f"  decode ({r['decode']}) {g['decode_step_ms']:.2f} ms/step; floor {g['decode_floor_ms']:.2f} ms "
                         f"-> {g['decode_fraction_of_floor']:.0%} of the bandwidth floor")
    lines += [f"  ERROR in {e['phase']}: {e['error']}" for e in r["errors"]]
    if "params" in r or r["errors"]:
        lines.append(f"  ok {r['ok']}, {r.get('total_s', 0):.1f} s in all")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="unimoe2_omni", help="UniMoEConfig preset: unimoe2_omni, tiny...")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bf16", choices=sorted(DTYPES))
    parser.add_argument("--prefill", type=int, default=4096, help="tokens of the timed prefill forward")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens before the generation")
    parser.add_argument("--new-tokens", type=int, default=128, help="greedy tokens to generate (no eos)")
    parser.add_argument("--repeats", type=int, default=3, help="timed prefill forwards after the warm-up")
    parser.add_argument("--layers", type=int, default=None, help="override num_hidden_layers (a quicker run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count-only", action="store_true", help="the preset's parameter counts only (meta)")
    parser.add_argument("--out", default=None, help="write the report as JSON here")
    parser.add_argument("--decode", default="eager", choices=DECODE_MODES,
                        help="decode steps: eager path, static-shape step (unimoe.decode), that step compiled whole, or one "
                             "compiled graph per layer")
    parser.add_argument("--device-rates", action="store_true",
                        help="measure a dense GEMM and a device copy in the same run; report the goals against them")
    args = parser.parse_args(argv)
    if min(args.prefill, args.prompt, args.new_tokens, args.repeats) < 1:
        parser.error("--prefill, --prompt, --new-tokens and --repeats must be >= 1")
    if args.layers is not None and args.layers < 1:
        parser.error("--layers must be >= 1")
    if args.device_rates and not args.device.startswith("cuda"):
        parser.error("--device-rates measures a CUDA device")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(format_report(report), flush=True)
    if args.out:
        print(f"wrote {args.out}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""Our MoE layer against transformers' Qwen2-MoE sparse block, equal dimensions and equal active experts.

Both blocks: hidden 1024, 8 routed experts of width 2816, top-2 routing, one shared expert of width 2816,
fp32 on the CPU. Ours runs in Top-K mode (p = 0, k = 2, no null expert); the peer runs the faster, per case,
of its two CPU experts implementations (``eager`` and ``grouped_mm``; ``batched_mm`` gathers one weight copy
per token and is 5-10x slower even at decode). Prefill of 512 and 4096 tokens, decode of 1 and 8 tokens.
Printed: tokens/s, the ratio to the peer, and the fraction of this machine's measured fp32 matmul peak
(prefill) or the time over the memory-bandwidth floor of reading the active weights once (decode).

The decode floor is the bytes of the weights the step must read (the distinct routed experts that this
input's routing picks, the shared expert and the router) over the read bandwidth of a fresh 256 MiB tensor
(the faster of ``sum()`` and ``amax()``, :func:`stream_bandwidth`). That bandwidth depends on where the
allocation lands: on the 2-core CI machine the same measurement gives 18-26 GB/s from one process to the
next. So each decode row also prints the time over what the same plain read of exactly those weight tensors
takes in the same run (a floor tied to the memory the layer really reads); the headline ratio stays the
256 MiB one.

    python bench/moe_layer.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HIDDEN, INTER, EXPERTS, TOP_K = 1024, 2816, 8, 2


def measure(fn, min_seconds: float = 0.3, rounds: int = 5) -> float:
    """Median seconds per call over ``rounds`` samples, each at least ``min_seconds / rounds`` long."""
    fn()
    fn()
    samples = []
    for _ in range(rounds):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= min_seconds / rounds:
                break
        samples.append(elapsed / n)
    return statistics.median(samples)


def matmul_peak() -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048**3 / measure(lambda: torch.mm(a, b))


def stream_bandwidth(tensors: list[torch.Tensor]) -> float:
    """Bytes over the time of the faster of two plain streaming reads of ``tensors`` (``sum()``, ``amax()``).
    ``sum()`` alone is not the fastest reader here (about 17-18 GB/s against 20-22 for ``amax()`` on one
    thread of the CI machine), and a floor set by a slow reader would flatter the layer."""
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    return nbytes / min(measure(lambda: [t.sum() for t in tensors]), measure(lambda: [t.amax() for t in tensors]))


def read_bandwidth() -> float:
    return stream_bandwidth([torch.randn(64 * 2**20)])  # 256 MiB


def build_pair():
    from transformers import Qwen2MoeConfig
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

    from unimoe.config import UniMoEConfig
    from unimoe.moe import build_moe

    config = UniMoEConfig.preset("tiny").replace(
        hidden_size=HIDDEN, mlp_dynamic_expert_num=EXPERTS, mlp_dynamic_null_expert_num=0, mlp_fixed_expert_num=1,
        mlp_dynamic_top_p=0.0, mlp_dynamic_top_k=TOP_K, dynamic_intermediate_size=INTER, shared_intermediate_size=INTER)
    torch.manual_seed(0)
    ours = build_moe(config).eval()
    peer_cfg = Qwen2MoeConfig(hidden_size=HIDDEN, num_experts=EXPERTS, num_experts_per_tok=TOP_K,
                              moe_intermediate_size=INTER, shared_expert_intermediate_size=INTER, norm_topk_prob=True)
    peer = Qwen2MoeSparseMoeBlock(peer_cfg).eval()
    with torch.no_grad():
        for p in [*ours.parameters(), *peer.parameters()]:
            p.normal_(0, 0.02)
    return ours, peer


PEER_IMPLEMENTATIONS = ("eager", "grouped_mm")


def use_implementation(peer, name: str) -> None:
    for module in peer.modules():
        if hasattr(module, "config"):
            module.config._experts_implementation = name


def flops_per_token() -> float:
    router = 2 * HIDDEN * EXPERTS
    return router + TOP_K * 6 * HIDDEN * INTER + 6 * HIDDEN * INTER  # routed pairs + one shared expert


def touched_weights(ours, x: torch.Tensor) -> list[torch.Tensor]:
    """The weight matrices a forward of ``x`` must read: the distinct routed experts its routing picks (from
    the layer's own routing, not an upper bound: 8 tokens often hit only 7 of the 8 experts), the shared
    expert and the router."""
    _, info = ours(x)
    ids = info.expert_ids.flatten()
    hit = sorted(set(ids[(ids >= 0) & (ids < EXPERTS)].tolist()))
    mats = [ours.gate.weight]
    for experts, picked in ((ours.routed_experts, hit), (ours.shared_experts, range(1))):
        mats += [getattr(experts, name)[e] for e in picked for name in ("gate_proj", "up_proj", "down_proj")]
    return mats




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter samples")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 0.3 if args.quick else 1.5
    peak, bandwidth = matmul_peak(), read_bandwidth()
    ours, peer = build_pair()
    print(f"fp32 matmul peak {peak / 1e9:.0f} GFLOP/s, read bandwidth {bandwidth / 1e9:.1f} GB/s, "
          f"threads {args.threads}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs "
          "(shared machine: figures vary with other load)")
    print(f"{'case':14} {'ours tok/s':>12} {'peer tok/s':>12} {'peer impl':>10} {'ours/peer':>10} {'efficiency':>26}")
    for kind, tokens in (("prefill", 512), ("prefill", 4096), ("decode", 1), ("decode", 8)):
        x = torch.randn(1, tokens, HIDDEN)
        with torch.inference_mode():
            t_ours = measure(lambda: ours(x), seconds)
            t_peer, impl = math.inf, ""
            for name in PEER_IMPLEMENTATIONS:
                use_implementation(peer, name)
                if (t := measure(lambda: peer(x), seconds)) < t_peer:
                    t_peer, impl = t, name
            if kind == "decode":
                mats = touched_weights(ours, x)
                own_bandwidth = stream_bandwidth(mats)
        if kind == "prefill":
            eff = f"{flops_per_token() * tokens / t_ours / peak:6.1%} of matmul peak"
            extra = ""
        else:
            nbytes = sum(m.numel() * m.element_size() for m in mats)
            eff = f"{t_ours / (nbytes / bandwidth):5.2f}x the bandwidth floor"
            extra = (f"  ({(len(mats) - 4) // 3} routed experts + shared + router = {nbytes / 1e6:.0f} MB; "
                     f"{t_ours / (nbytes / own_bandwidth):.2f}x the time a plain read of those weights takes, "
                     f"{own_bandwidth / 1e9:.1f} GB/s)")
        print(f"{kind + ' ' + str(tokens):14} {tokens / t_ours:12.0f} {tokens / t_peer:12.0f} {impl:>10} {t_peer / t_ours:10.2f} "
              f"{eff:>26}{extra}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

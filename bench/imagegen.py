"""Image generation speed: seconds per image for the tiny image head, and our Task-DiT against diffusers'
PixArt-alpha transformer of the same size (the closest public DiT with cross-attention and adaLN conditioning).

    python bench/imagegen.py [--repeats 3] [--device cpu] [--full]

1. The tiny head end to end (``unimoe_tiny`` LM span states + ``sample_steps`` DiT evaluations + decoding), per
   output kind: draw (no source image), edit and derain (a source image).
2. One sampling run of the denoiser alone (``sample_steps`` forwards, batch 1): ours and PixArt with equal
   width, depth, heads, patch size, latent size and context length, in the same process, alternating; the
   ratio ours / PixArt (below 1: ours is faster). ``--full`` uses DiT-XL/2 geometry (width 1152, 28 blocks,
   16 heads, 32x32x4 latents, 120 context tokens) with random weights: a stand-in for the released PixWizard
   DiT, meant for a GPU (``--device cuda``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unimoe.imagegen.dit import DiTSpec, TaskDiT  # noqa: E402

HEAD = Path(__file__).resolve().parent.parent / "unimoe" / "weights" / "unimoe_tiny_imagegen"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, repeats: int, device: str) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tiny_head(repeats: int) -> None:
    import numpy as np

    from unimoe.imagegen.generator import ImageGenerator, to_unit
    from unimoe.imagegen.trigger import generate_visualgen
    from unimoe.train.imagegen import conversation, load_lm
    from unimoe.train.omniworld_images import make_item

    if not (HEAD / "model.safetensors").is_file():
        print(f"tiny head: {HEAD} is not trained (python -m unimoe.train.imagegen); skipped")
        return
    lm, processor = load_lm()
    head = ImageGenerator.load(HEAD)
    print(f"tiny head ({sum(p.numel() for p in head.parameters()) / 1e6:.2f} M parameters, "
          f"{head.config.sample_steps} sampling steps, {head.config.image_size} px), CPU, seconds per image:")
    for kind in ("draw", "edit", "derain"):
        item, _, source = make_item(kind, 0, "test", 0)

        def one() -> np.ndarray:
            spans = generate_visualgen(lm, processor, conversation(item.prompt, source))
            return head.generate_image(spans, None if source is None else to_unit(source, head.config.image_size))

        print(f"  {kind:7s} {_timed(one, repeats, 'cpu'):.3f} s")


def denoisers(spec: DiTSpec, context: int, steps: int, repeats: int, device: str) -> None:
    from diffusers import PixArtTransformer2DModel

    torch.manual_seed(0)
    ours = TaskDiT(spec).to(device).eval()
    peer = PixArtTransformer2DModel(
        num_attention_heads=spec.num_heads, attention_head_dim=spec.width // spec.num_heads,
        in_channels=2 * spec.latent_channels, out_channels=spec.latent_channels, num_layers=spec.depth,
        cross_attention_dim=spec.width, sample_size=spec.latent_size, patch_size=spec.patch_size,
        caption_channels=spec.content_dim, use_additional_conditions=False, norm_num_groups=1).to(device).eval()
    c, s = spec.latent_channels, spec.latent_size
    x, src = torch.randn(1, c, s, s, device=device), torch.randn(1, c, s, s, device=device)
    task = torch.randn(1, 3, spec.task_dim, device=device)
    content = torch.randn(1, context, spec.content_dim, device=device)

    @torch.no_grad()
    def run_ours() -> None:
        for i in range(steps):
            ours(x, torch.full((1,), i / steps, device=device), task, content, None, src)

    @torch.no_grad()
    def run_peer() -> None:
        for i in range(steps):
            peer(torch.cat([x, src], 1), encoder_hidden_states=content,
                 timestep=torch.full((1,), 1000 * i / steps, device=device), added_cond_kwargs={
                     "resolution": None, "aspect_ratio": None}, return_dict=False)

    t_ours, t_peer = [], []
    for _ in range(repeats):  # alternate, so that load on a shared machine hits both alike
        t_ours.append(_timed(run_ours, 1, device))
        t_peer.append(_timed(run_peer, 1, device))
    a, b = statistics.median(t_ours), statistics.median(t_peer)
    n_ours = sum(p.numel() for p in ours.parameters()) / 1e6
    n_peer = sum(p.numel() for p in peer.parameters()) / 1e6
    print(f"denoiser, {steps} steps, width {spec.width} x {spec.depth} blocks, {spec.num_patches} patches, "
          f"{context} context tokens, {device}:")
    print(f"  ours (Task-DiT, {n_ours:.1f} M) {a:.4f} s   PixArt ({n_peer:.1f} M) {b:.4f} s   ratio {a / b:.2f}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--full", action="store_true", help="DiT-XL/2 geometry, random weights (for a GPU)")
    a = p.parse_args()
    if a.full:
        if a.device.startswith("cuda") and not torch.cuda.is_available():
            print("no CUDA device: the full-size run is skipped")
            return 0
        spec = DiTSpec(latent_channels=4, latent_size=32, patch_size=2, width=1152, depth=28, num_heads=16,
                       task_dim=768, content_dim=2048, visual_dim=1024, content_tokens=120)
        denoisers(spec, context=120, steps=16, repeats=a.repeats, device=a.device)
        return 0
    torch.set_num_threads(1)
    tiny_head(a.repeats)
    from unimoe.train.imagegen import tiny_config

    config = tiny_config()
    denoisers(config.dit, context=config.projectors.image_queries, steps=config.sample_steps, repeats=a.repeats,
              device="cpu")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

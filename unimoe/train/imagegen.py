"""Train the tiny image head on omniworld image-output items, over the frozen unimoe_tiny language model.

``python -m unimoe.train.imagegen [--out unimoe/weights/unimoe_tiny_imagegen] [--steps N]``

The autoencoder is fitted once in closed form (PCA of the training images' patches) and then frozen, as the
released recipe keeps its VAE fixed, as are the span-state statistics (see ``fit_span_statistics``); the
projectors and the DiT learn flow matching of the target latents given the LM's span states.
The LM's span states are computed once (it is frozen). Progress is saved to ``<out>/training/state.pt`` every
``--save-every`` steps and a rerun resumes from it; the final weights go to ``<out>``.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unimoe.imagegen.dit import DiTSpec
from unimoe.imagegen.generator import ImageGenConfig, ImageGenerator, to_unit
from unimoe.imagegen.projectors import ProjectorSpec
from unimoe.imagegen.trigger import SpanStates, generate_visualgen
from unimoe.train.omniworld_images import KINDS, iter_items

LM_DIR = Path(__file__).resolve().parents[1] / "weights" / "unimoe_tiny"
# batches by kind, in turn: drawing has no source image to copy from, so it gets half of them
SCHEDULE = ("draw", "edit", "draw", "derain")


def tiny_config(llm_dim: int = 64) -> ImageGenConfig:
    """The shipped tiny head: 64 px images, 4x patch autoencoder to 16x16x12 latents, a 3-block DiT of width 96."""
    return ImageGenConfig(
        image_size=64, vae_factor=4, sample_steps=16, standardize_spans=True,
        projectors=ProjectorSpec(llm_dim=llm_dim, hidden_dim=64, num_layers=1, num_heads=4, image_queries=32,
                                 image_dim=64, task_queries=3, task_dim=64, visual_dim=64),
        dit=DiTSpec(latent_channels=12, latent_size=16, patch_size=2, width=96, depth=3, num_heads=4, task_dim=64,
                    content_dim=64, visual_dim=64, content_tokens=32))


@dataclass
class Example:
    kind: str
    spans: Any  # SpanStates
    target: torch.Tensor
    source: torch.Tensor | None


def load_lm(folder: Path = LM_DIR):
    from unimoe.checkpoint import from_pretrained
    from unimoe.omni import UniMoEOmni
    from unimoe.processor import Processor
    from unimoe.tokenizer import load_tokenizer

    model = from_pretrained(folder, dtype=torch.float32, model_class=UniMoEOmni).eval()
    return model, Processor.for_config(model.config, load_tokenizer(str(folder)))


def conversation(prompt: str, source: Any | None) -> list[dict[str, Any]]:
    """The user turn the adapter builds for an item: the input image (if any), then the instruction."""
    from unimoe.processor import Image

    return [{"role": "user", "content": ([Image(source)] if source is not None else []) + [prompt]}]


def build_examples(model, processor, n_per_kind: int, seed: int, size: int) -> list[Example]:
    out = []
    for item, target, source in iter_items(KINDS, n_per_kind, "train", seed):
        spans = generate_visualgen(model, processor, conversation(item.prompt, source))
        out.append(Example(item.kind, spans, to_unit(target, size), None if source is None else to_unit(source, size)))
    return out


def _batch(examples: list[Example]) -> tuple[dict[str, torch.Tensor | None], torch.Tensor, torch.Tensor | None]:
    cat = lambda name: torch.cat([getattr(e.spans, name) for e in examples])  # noqa: E731
    has_visual = examples[0].spans.visual_features is not None
    spans = {k: cat(k) for k in ("task_states", "task_embeds", "image_states", "image_embeds")}
    spans["visual_features"] = cat("visual_features") if has_visual else None
    source = torch.stack([e.source for e in examples]) if examples[0].source is not None else None
    return spans, torch.stack([e.target for e in examples]), source


def train(out: Path, steps: int = 2000, batch_size: int = 16, n_per_kind: int = 200, seed: int = 0,
          save_every: int = 250, lr: float = 5e-4, drop_conditions: float = 0.1, guidance_scale: float = 1.0,
          log=print) -> Path:
    """Fit the autoencoder, then train projectors + DiT for ``steps`` (resuming from ``<out>/training``);
    ``drop_conditions`` is the share of rows trained without their instruction (for classifier-free guidance);
    ``guidance_scale`` is the sampling default written to the head's config."""
    torch.manual_seed(seed)
    state_path = out / "training" / "state.pt"
    lm, processor = load_lm()
    gen = ImageGenerator(dataclasses.replace(tiny_config(lm.config.hidden_size), guidance_scale=guidance_scale))
    start = time.time()
    examples = build_examples(lm, processor, n_per_kind, seed, gen.config.image_size)
    log(f"span states of {len(examples)} items in {time.time() - start:.0f} s")
    by_kind = {k: [e for e in examples if e.kind == k] for k in KINDS}
    gen.vae.fit(torch.stack([e.target for e in examples] + [e.source for e in examples if e.source is not None]))
    gen.fit_span_statistics(torch.cat([e.spans.task_states for e in examples]),
                            torch.cat([e.spans.image_states for e in examples]),
                            torch.tensor([e.spans.visual_features is not None for e in examples]))
    params = list(gen.projectors.parameters()) + list(gen.dit.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    step = 0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)  # our own file: tensors and numbers only
        gen.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        log(f"resumed at step {step}")
    rng = random.Random(f"{seed}:{step}")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    while step < steps:
        spans, target, source = _batch(rng.sample(by_kind[SCHEDULE[step % len(SCHEDULE)]], batch_size))
        loss = gen.loss(gen.conditions(SpanStates("", forced=True, **spans)), target, source, generator,
                        drop_conditions)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 50 == 0:
            log(f"step {step}/{steps} loss {loss.item():.4f} ({time.time() - start:.0f} s)")
        if step % save_every == 0 or step == steps:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = state_path.with_suffix(".tmp")
            torch.save({"model": gen.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
            tmp.replace(state_path)
    gen.eval().save(out)
    log(f"saved {out} after {step} steps ({time.time() - start:.0f} s this run)")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m unimoe.train.imagegen", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=LM_DIR.parent / "unimoe_tiny_imagegen")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--items-per-kind", type=int, default=200)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop-conditions", type=float, default=0.1,
                   help="share of rows trained with null conditions (classifier-free guidance)")
    p.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance when sampling")
    a = p.parse_args(argv)
    train(a.out, a.steps, a.batch_size, a.items_per_kind, a.seed, a.save_every, drop_conditions=a.drop_conditions,
          guidance_scale=a.guidance_scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

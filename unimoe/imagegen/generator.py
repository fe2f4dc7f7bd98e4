"""The image head as one module: projectors + VAE + Task-DiT + flow sampler, saved as ``config.json`` plus
``model.safetensors`` in a folder of its own (the language model's checkpoint is left untouched)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unimoe.imagegen.dit import DiTSpec, TaskDiT
from unimoe.imagegen.projectors import ProjectorSpec, VisualGenProjectors
from unimoe.imagegen.sampler import flow_loss, guided, sample_flow
from unimoe.imagegen.trigger import NUM_IMAGE_TOKENS, NUM_TASK_TOKENS, SpanStates
from unimoe.imagegen.vae import PatchAutoencoder

CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


@dataclass
class ImageGenConfig:
    image_size: int = 64
    vae_factor: int = 4
    sample_steps: int = 16
    guidance_scale: float = 1.0  # classifier-free guidance at sampling; 1 = none (needs training with dropout)
    answer_tokens: int = 0  # new tokens the LM generates before its spans are read; 0 appends them to the prompt
    standardize_spans: bool = False  # whiten span states by statistics of the training prompts (see
    # fit_span_statistics; kept apart for text-only prompts and prompts with an image)
    whitening_rank: int = 320  # principal directions kept per prompt type
    whitening_shrinkage: float = 1e-3  # directions with less spread than this share of the largest are damped
    projectors: ProjectorSpec = field(default_factory=ProjectorSpec)
    dit: DiTSpec = field(default_factory=DiTSpec)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "ImageGenConfig":
        d = dict(d)
        return ImageGenConfig(**{k: v for k, v in d.items() if k not in ("projectors", "dit")},
                              projectors=ProjectorSpec(**d.get("projectors", {})), dit=DiTSpec(**d.get("dit", {})))


def to_unit(image: Any, size: int) -> torch.Tensor:
    """A PIL image or ``(H, W, 3)`` uint8 array -> ``(3, size, size)`` floats in [-1, 1]."""
    from PIL import Image

    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    im = im.convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(im, dtype=np.float32) / 127.5 - 1.0).permute(2, 0, 1)


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [-1, 1] -> ``(H, W, 3)`` uint8."""
    return ((pixels.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()


class ImageGenerator(nn.Module):
    def __init__(self, config: ImageGenConfig):
        super().__init__()
        if config.image_size // config.vae_factor != config.dit.latent_size:
            raise ValueError(f"image_size {config.image_size} over a VAE factor {config.vae_factor} is not "
                             f"the DiT's latent_size {config.dit.latent_size}")
        self.config = config
        self.projectors = VisualGenProjectors(config.projectors)
        self.vae = PatchAutoencoder(config.dit.latent_channels, config.vae_factor)
        self.dit = TaskDiT(config.dit)
        if config.standardize_spans:  # row 0: prompts without an image, row 1: prompts with one
            dim, rank = (NUM_TASK_TOKENS + NUM_IMAGE_TOKENS) * config.projectors.llm_dim, config.whitening_rank
            self.register_buffer("span_mean", torch.zeros(2, dim))
            self.register_buffer("span_basis", torch.zeros(2, dim, rank))  # principal directions (zero-padded)
            self.register_buffer("span_gain", torch.zeros(2, rank))  # their whitening gain minus the rest's
            self.register_buffer("span_rest_gain", torch.ones(2))  # gain off those directions

    @torch.no_grad()
    def fit_span_statistics(self, task_states: torch.Tensor, image_states: torch.Tensor, with_image: torch.Tensor
                            ) -> None:
        """Whitening of whole spans (task then image states, flattened) over training prompts ``(N, n, d)``,
        apart for prompts without and with an image (``with_image`` ``(N,)`` bool).

        A small frozen LM writes the prompt into its span states unevenly: in unimoe_tiny two drawing prompts
        that differ in the corner differ 15 times less than two that differ in the colour, and an image in the
        prompt moves them ten times more than the words do. Gradient descent learns a direction at a pace set by
        its size, so the projectors learned colour and never where to draw. Whitening (ZCA with shrinkage: unit
        spread along every principal direction of the training prompts, those below ``whitening_shrinkage`` of
        the largest damped) gives every fact the prompt carries the same size, and the output keeps the
        ``(tokens, d)`` layout the projectors read."""
        shrinkage, rank = self.config.whitening_shrinkage, self.config.whitening_rank
        for row in (0, 1):
            pick = with_image == bool(row)
            if not bool(pick.any()):
                continue
            spans = torch.cat([task_states[pick], image_states[pick]], dim=1).flatten(1).double()
            mean = spans.mean(0)
            _, singular, vh = torch.linalg.svd(spans - mean, full_matrices=False)
            variance = singular[:rank] ** 2 / spans.shape[0]
            eps = shrinkage * float(variance[0]) if variance.numel() else 1.0
            kept = int((variance > 1e-9 * variance[0]).sum()) if variance.numel() else 0
            gain = (variance[:kept] + eps).rsqrt()
            unit = (spans.shape[1] / float((variance[:kept] / (variance[:kept] + eps)).sum().clamp_min(1e-12))) ** 0.5
            self.span_mean[row] = mean.float()
            self.span_basis[row].zero_()
            self.span_basis[row, :, :kept] = vh[:kept].T.float()
            self.span_gain[row].zero_()
            self.span_gain[row, :kept] = ((gain - eps ** -0.5) * unit).float()
            self.span_rest_gain[row] = eps ** -0.5 * unit

    def whiten(self, task_states: torch.Tensor, image_states: torch.Tensor, with_image: bool
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Span states ``(B, 3, d)``, ``(B, 32, d)`` in the whitened coordinates of their prompt type."""
        row = int(with_image)
        flat = torch.cat([task_states, image_states], dim=1).flatten(1) - self.span_mean[row]
        white = flat * self.span_rest_gain[row] + ((flat @ self.span_basis[row]) * self.span_gain[row]) @ \
            self.span_basis[row].T
        white = white.view(task_states.shape[0], -1, task_states.shape[-1])
        return white[:, :task_states.shape[1]], white[:, task_states.shape[1]:]

    def conditions(self, spans: SpanStates) -> dict[str, torch.Tensor | None]:
        task_states, image_states = spans.task_states, spans.image_states
        if self.config.standardize_spans:
            task_states, image_states = self.whiten(task_states, image_states, spans.visual_features is not None)
        task, content, visual = self.projectors(task_states, spans.task_embeds, image_states, spans.image_embeds,
                                                spans.visual_features)
        return {"task": task, "content": content, "visual": visual}

    def loss(self, cond: dict[str, torch.Tensor | None], target: torch.Tensor, source: torch.Tensor | None,
             generator: torch.Generator | None = None, drop_conditions: float = 0.0) -> torch.Tensor:
        """Flow-matching loss of target pixels ``(B, 3, H, W)`` given projected conditions (the VAE frozen);
        each row's task and content conditions are replaced by the null ones with probability
        ``drop_conditions``, which teaches the unconditional model classifier-free guidance needs."""
        with torch.no_grad():
            data = self.vae.encode(target)
            src = None if source is None else self.vae.encode(source)
        task, content = cond["task"], cond["content"]
        if drop_conditions > 0:
            drop = torch.rand(task.shape[0], generator=generator, device=task.device) < drop_conditions
            task, content = self.dit.drop_conditions(task, content, drop)
        return flow_loss(lambda x, t: self.dit(x, t, task, content, cond["visual"], src), data, generator)

    @torch.no_grad()
    def generate_image(self, spans: SpanStates, source: torch.Tensor | None = None, seed: int = 0,
                       steps: int | None = None, guidance_scale: float | None = None) -> np.ndarray:
        """One ``(H, W, 3)`` uint8 image; ``source`` is the image to edit or restore, ``(3, H, W)`` in [-1, 1];
        ``guidance_scale`` overrides the configured classifier-free guidance (the source image and its visual
        tokens condition both branches, so guidance amplifies the instruction only)."""
        cond = self.conditions(spans)
        src = None if source is None else self.vae.encode(source[None].to(cond["task"].dtype))
        spec = self.config.dit
        task, content, visual = cond["task"], cond["content"], cond["visual"]
        null_task, null_content = self.dit.drop_conditions(task, content, torch.ones(1, dtype=torch.bool))
        scale = self.config.guidance_scale if guidance_scale is None else guidance_scale
        velocity = guided(lambda x, t: self.dit(x, t, task, content, visual, src),
                          lambda x, t: self.dit(x, t, null_task, null_content, visual, src), scale)
        latents = sample_flow(velocity,
                              (1, spec.latent_channels, spec.latent_size, spec.latent_size),
                              steps=steps or self.config.sample_steps, generator=torch.Generator().manual_seed(seed),
                              dtype=cond["task"].dtype)
        return to_uint8(self.vae.decode(latents)[0])

    # ---- files
    def save(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(folder / WEIGHTS_FILE))

    @staticmethod
    def load(folder: str | Path, dtype: torch.dtype = torch.float32) -> "ImageGenerator":
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"image generator folder {folder} has no {name}")
        model = ImageGenerator(ImageGenConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text())))
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return model.to(dtype).eval()

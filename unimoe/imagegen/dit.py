"""The Task-DiT denoiser: a diffusion transformer over VAE latent patches, conditioned as Uni-MoE-2.0 conditions
PixWizard (reference §2.7):

- the **task** tokens (``task_hidden_fcs`` output) are pooled and added to the timestep embedding, which
  modulates every block (adaLN-zero): the task selects the mode (draw, edit, restore);
- the **content** tokens (``image_hidden_fcs`` output) and, when there is a source image, its **visual**
  tokens (``visual_hidden_fcs`` output) are the cross-attention context; the content tokens, concatenated,
  also feed the modulation (as SD3 adds its pooled text embedding), a global path through which a described
  scene steers every block: a small frozen LM spreads some facts (where the shape goes) over the whole span,
  so that a mean over tokens, or attention's weighted mean, loses them;
- for classifier-free guidance the task and content conditions can be swapped for learned null embeddings
  (:meth:`TaskDiT.drop_conditions`), in training at random and at sampling for the unconditional branch;
- the source image's latent is concatenated to the noisy latent along channels (zeros for text-to-image),
  so edits and restorations can copy what they keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DiTSpec:
    latent_channels: int = 8
    latent_size: int = 16
    patch_size: int = 2
    width: int = 128
    depth: int = 4
    num_heads: int = 4
    task_dim: int = 64
    content_dim: int = 64
    visual_dim: int = 64
    content_tokens: int = 32  # the content projector's queries; their concatenation feeds the modulation

    @property
    def num_patches(self) -> int:
        return (self.latent_size // self.patch_size) ** 2


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of times in [0, 1] (scaled to [0, 1000] as diffusion models do)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(t.dtype)


def sincos_2d(width: int, side: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings ``(1, side * side, width)`` (row, then column; as DiT). A learned
    table starting near zero tells the blocks too little about where a patch is for layout to be learned soon:
    with it, the tiny head drew each described shape in all four corners."""
    def axis(dim: int, pos: torch.Tensor) -> torch.Tensor:
        omega = 1.0 / 10_000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
        angles = pos.double()[:, None] * omega[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.cat([axis(width // 2, rows.flatten()), axis(width // 2, cols.flatten())], dim=1).float()[None]


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    def __init__(self, width: int, num_heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.norm_cross = nn.LayerNorm(width, eps=1e-6)
        self.cross_attn = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(cond).chunk(6, dim=-1)
        h = _modulate(self.norm1(x), shift1, scale1)
        x = x + gate1[:, None] * self.attn(h, h, h, need_weights=False)[0]
        h = self.norm_cross(x)
        x = x + self.cross_attn(h, context, context, need_weights=False)[0]
        return x + gate2[:, None] * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class TaskDiT(nn.Module):
    def __init__(self, spec: DiTSpec):
        super().__init__()
        self.spec = spec
        w, p, c = spec.width, spec.patch_size, spec.latent_channels
        self.x_embedder = nn.Conv2d(2 * c, w, p, stride=p)  # noisy latent + source latent
        self.register_buffer("pos_embed", sincos_2d(w, spec.latent_size // p), persistent=False)
        self.t_embedder = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.task_embedder = nn.Sequential(nn.Linear(spec.task_dim, w), nn.SiLU(), nn.Linear(w, w))
        self.content_embedder = nn.Linear(spec.content_dim, w)
        self.content_pooler = nn.Sequential(nn.Linear(spec.content_tokens * spec.content_dim, w), nn.SiLU(),
                                            nn.Linear(w, w))
        self.null_task = nn.Parameter(torch.zeros(1, 1, spec.task_dim))  # the "no instruction" conditions
        self.null_content = nn.Parameter(torch.zeros(1, spec.content_tokens, spec.content_dim))
        self.visual_embedder = nn.Linear(spec.visual_dim, w)
        self.blocks = nn.ModuleList(DiTBlock(w, spec.num_heads) for _ in range(spec.depth))
        self.final_norm = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))
        self.final_linear = nn.Linear(w, p * p * c)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.null_task, std=0.02)
        nn.init.normal_(self.null_content, std=0.02)
        for block in self.blocks:  # adaLN-zero: every block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_modulation[-1].weight)
        nn.init.zeros_(self.final_modulation[-1].bias)
        nn.init.zeros_(self.final_linear.weight)
        nn.init.zeros_(self.final_linear.bias)

    def drop_conditions(self, task: torch.Tensor, content: torch.Tensor, drop: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """``task`` and ``content`` with the rows where ``drop`` ``(B,)`` is True replaced by the null
        embeddings (repeated over the tokens)."""
        keep = ~drop.view(-1, 1, 1)
        return (torch.where(keep, task, self.null_task.to(task.dtype)),
                torch.where(keep, content, self.null_content.to(content.dtype)))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, task: torch.Tensor, content: torch.Tensor,
                visual: torch.Tensor | None = None, source: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity for latents ``x_t`` ``(B, C, S, S)`` at times ``t`` ``(B,)``; ``task`` ``(B, 3, task_dim)``,
        ``content`` ``(B, Nc, content_dim)``, optional ``visual`` ``(B, Nv, visual_dim)`` and ``source`` latents."""
        spec = self.spec
        b = x_t.shape[0]
        source = torch.zeros_like(x_t) if source is None else source
        x = self.x_embedder(torch.cat([x_t, source], dim=1)).flatten(2).transpose(1, 2) + self.pos_embed
        cond = (self.t_embedder(timestep_embedding(t, spec.width).to(x.dtype)) + self.task_embedder(task.mean(dim=1))
                + self.content_pooler(content.flatten(1)))
        context = self.content_embedder(content)
        if visual is not None:
            context = torch.cat([context, self.visual_embedder(visual)], dim=1)
        for block in self.blocks:
            x = block(x, cond, context)
        shift, scale = self.final_modulation(cond).chunk(2, dim=-1)
        x = self.final_linear(_modulate(self.final_norm(x), shift, scale))
        side, p, c = spec.latent_size // spec.patch_size, spec.patch_size, spec.latent_channels
        x = x.view(b, side, side, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, c, side * p, side * p)

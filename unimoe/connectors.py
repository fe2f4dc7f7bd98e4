"""Connectors from encoder features to the language model's width (reference §2.2, §2.3, §3.1).

- ``VisionAligner``: ``mlp2x_gelu`` (Linear, GELU, Linear), then each crop's patch map is average-pooled to
  s x s tokens (Uni-MoE-2.0); v1 uses the MLP without pooling (s = patches per side).
- ``WhisperQFormer``: the Whisper *decoder* stack used as a Q-Former: learned query tokens attend to
  themselves and, by cross-attention, to the Whisper encoder output; a linear projector follows.
  Module names follow the released keys (``audio_aligner.decoder.audio_decoder.*``,
  ``audio_aligner.projector.*``, ``audio_aligner.query_tokens``; ``vision_aligner.{0,2}.*``).

Uni-MoE v1 (reference §3.1) uses the same two connectors under LLaVA names, which :mod:`unimoe.checkpoint`
renames: ``model.mm_projector.{0,2}`` (CLIP-L/336 ``mlp2x_gelu``, 1024 -> 4096 -> 4096, no pooling),
``model.mm_audio_aligner.{decoder.audio_decoder,projector}`` (Whisper-small decoder as Q-Former, ``linear``
projector 768 -> 4096) and ``model.query_tokens`` ``[1, 50, 768]`` (50 queries per 30 s chunk). Only the
``linear`` audio projector of the released v1 configs is built here (``audio_projector_type`` mlpNx_gelu is not).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unimoe.whisper import WhisperConfig, WhisperDecoder


class VisionAligner(nn.Sequential):
    """Patch features ``[N, g*g, D_v]`` -> ``[N, s*s, D]``: ``mlp2x_gelu`` (Linear, GELU, Linear, so the released
    keys ``vision_aligner.0`` / ``vision_aligner.2`` load as they are), then adaptive average pooling per crop."""

    def __init__(self, in_dim: int, out_dim: int, pool: int | None):
        super().__init__(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))
        self.pool = pool

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = super().forward(patches)
        if self.pool is None:
            return x
        n, p, d = x.shape
        g = int(round(p**0.5))
        if g * g != p:
            raise ValueError(f"expected a square patch map, got {p} patches")
        x = x.transpose(1, 2).reshape(n, d, g, g)
        return F.adaptive_avg_pool2d(x, self.pool).flatten(2).transpose(1, 2)


class _QFormerDecoder(nn.Module):
    """Holds the decoder under the released name (``audio_aligner.decoder.audio_decoder.*``)."""

    def __init__(self, whisper_config: WhisperConfig):
        super().__init__()
        self.audio_decoder = WhisperDecoder(whisper_config)


class WhisperQFormer(nn.Module):
    """Encoder states ``[N, frames, D_a]`` -> ``[N, Q, D]`` query tokens per 30 s chunk."""

    def __init__(self, whisper_config: WhisperConfig, num_queries: int, out_dim: int):
        super().__init__()
        if num_queries > whisper_config.max_target_positions:
            raise ValueError(f"{num_queries} queries exceed the decoder's {whisper_config.max_target_positions} positions")
        d = whisper_config.d_model
        self.query_tokens = nn.Parameter(torch.zeros(1, num_queries, d))
        nn.init.normal_(self.query_tokens, std=0.02)
        self.decoder = _QFormerDecoder(whisper_config)
        self.projector = nn.Linear(d, out_dim)

    def forward(self, encoder_states: torch.Tensor) -> torch.Tensor:
        queries = self.query_tokens.expand(encoder_states.shape[0], -1, -1).to(encoder_states.dtype)
        return self.projector(self.decoder.audio_decoder(queries, encoder_states))

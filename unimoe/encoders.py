"""Modality encoders: their settings and the towers, in the released checkpoints' key layout.

- Uni-MoE-2.0 vision: SigLIP (So400M/14 at 384 px) with the last encoder layer deleted, so its output is the
  penultimate layer's (reference §2.2); the post-layernorm and head are not used.
- Uni-MoE v1 vision: CLIP ViT-L/14-336, patch tokens of layer -2 (the CLS token dropped).
- Audio (both): the Whisper encoder (large-v3 for 2.0, small for v1) over 30 s log-mel chunks. The v1 *audio*
  variant (``Uni-MoE-audio-*``: BEATs iter3+ encoder and a BLIP-2 Q-Former, reference §3.1) is not
  implemented: ``audio_config={"kind": "beats"}`` raises :class:`NotImplementedError` naming it.

Each encoder is configured by a plain dict (``UniMoEConfig.vision_config`` / ``audio_config``) in the
transformers config format, plus our keys documented in :class:`VisionSpec` / :class:`AudioSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from unimoe.vit import VISION_MODELS, ViTConfig
from unimoe.whisper import HOP, WhisperConfig, WhisperEncoder


@dataclass(frozen=True)
class VisionSpec:
    """Vision settings read from ``vision_config``: the tower kind and geometry, and the token budget."""

    kind: str = "siglip"  # "siglip" (Uni-MoE-2.0) or "clip" (v1)
    image_size: int = 384
    patch_size: int = 14
    spatial_pool: int = 24  # s: every crop becomes s x s tokens (vision_spatial_pool_stride; assumed 24)
    grid_pinpoints: tuple[tuple[int, int], ...] = ((384, 384), (384, 768), (768, 384), (768, 768), (384, 1152),
                                                   (1152, 384))
    hf: dict[str, Any] = field(default_factory=dict)  # the transformers vision config

    @staticmethod
    def from_config(vision_config: dict[str, Any]) -> "VisionSpec":
        cfg = dict(vision_config)
        ours = {k: cfg.pop(k) for k in ("kind", "spatial_pool", "grid_pinpoints") if k in cfg}
        if "grid_pinpoints" in ours:
            ours["grid_pinpoints"] = tuple(tuple(p) for p in ours["grid_pinpoints"])
        return VisionSpec(image_size=cfg.get("image_size", 384), patch_size=cfg.get("patch_size", 14), hf=cfg, **ours)

    @property
    def patches_per_side(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class AudioSpec:
    """Audio settings read from ``audio_config``: Whisper geometry and the Q-Former query count."""

    kind: str = "whisper"  # "whisper" (Uni-MoE-2, v1 speech); "beats" (v1 audio) is not implemented
    num_mel_bins: int = 128
    query_tokens: int = 200  # whisper_query_tokens_size: tokens per 30 s chunk (v1: 50)
    max_chunks: int = 20  # whisper_audio_time: 30 s chunks kept per audio
    chunk_samples: int = 480_000  # 30 s at 16 kHz
    hf: dict[str, Any] = field(default_factory=dict)  # the transformers Whisper config

    @staticmethod
    def from_config(audio_config: dict[str, Any]) -> "AudioSpec":
        cfg = dict(audio_config)
        ours = {k: cfg.pop(k) for k in ("kind", "query_tokens", "max_chunks", "chunk_samples") if k in cfg}
        if ours.get("kind", "whisper") != "whisper":
            raise NotImplementedError(
                f"audio tower kind {ours['kind']!r}: only Whisper is implemented; the Uni-MoE v1 audio variant "
                "(BEATs encoder + BLIP-2 Q-Former, Uni-MoE-audio-base/-e2) is not")
        return AudioSpec(num_mel_bins=cfg.get("num_mel_bins", 128), hf=cfg, **ours)

    @property
    def mel_frames(self) -> int:
        return self.chunk_samples // HOP


class VisionTower(nn.Module):
    """Image crops ``[N, 3, S, S]`` -> patch features ``[N, (S/p)^2, D]`` (SigLIP: the penultimate layer; CLIP:
    layer -2 without the CLS token)."""

    def __init__(self, spec: VisionSpec):
        super().__init__()
        self.spec = spec
        self.config = ViTConfig.from_dict(spec.kind, spec.hf)
        # nested as the releases stored it with transformers 4: ...vision_tower.vision_tower.vision_model.*
        self.vision_tower = nn.ModuleDict({"vision_model": VISION_MODELS[spec.kind](self.config)})

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.vision_tower["vision_model"](pixels)


class AudioTower(nn.Module):
    """Log-mel chunks ``[N, mels, frames]`` -> Whisper encoder states ``[N, frames / 2, D]``."""

    def __init__(self, spec: AudioSpec):
        super().__init__()
        self.spec = spec
        self.config = WhisperConfig.from_dict({"num_mel_bins": spec.num_mel_bins, **spec.hf})
        self.audio_tower = WhisperEncoder(self.config)

    @property
    def hidden_size(self) -> int:
        return self.config.d_model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.audio_tower(features)

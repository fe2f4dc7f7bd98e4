"""The vision transformers of the released towers: SigLIP (Uni-MoE-2.0) and CLIP ViT (Uni-MoE v1).

Parameter names and configuration keys are those of Hugging Face's ``SiglipVisionModel`` and
``CLIPVisionModel``, so released and hub weights load unchanged; tests/unimoe/test_towers.py holds the outputs
equal to transformers' in fp32. Only the features the models use are computed: SigLIP's penultimate layer (the
released tower deletes the last layer, its post-layernorm and head) and CLIP's layer -2 patch tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from unimoe.blocks import Attention, activation, config_fields


@dataclass(frozen=True)
class ViTConfig:
    """Geometry of a vision transformer; unnamed keys take the Hugging Face defaults of the tower's kind."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_channels: int
    image_size: int
    patch_size: int
    hidden_act: str
    layer_norm_eps: float

    @staticmethod
    def from_dict(kind: str, values: dict[str, Any]) -> "ViTConfig":
        """Read a Hugging Face vision config dict (see :func:`config_fields`)."""
        try:
            base = HF_DEFAULTS[kind]
        except KeyError:
            raise ValueError(f"unknown vision tower kind {kind!r}; known: {', '.join(HF_DEFAULTS)}") from None
        return replace(base, **config_fields(ViTConfig, values))

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


HF_DEFAULTS = {
    "siglip": ViTConfig(768, 3072, 12, 12, 3, 224, 16, "gelu_pytorch_tanh", 1e-6),
    "clip": ViTConfig(768, 3072, 12, 12, 3, 224, 32, "quick_gelu", 1e-5),
}


class MLP(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)
        self.act = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Pre-norm block: attention, then MLP, each added to the residual stream."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = Attention(config.hidden_size, config.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, config: ViTConfig, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(num_layers))


def _patchify(conv: nn.Conv2d, pixels: torch.Tensor) -> torch.Tensor:
    """``[N, C, S, S]`` -> ``[N, (S/p)^2, D]``, row-major patches."""
    return conv(pixels.to(conv.weight.dtype)).flatten(2).transpose(1, 2)


class SiglipEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.patch_embedding = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, config.patch_size)
        self.position_embedding = nn.Embedding(config.num_patches, config.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return _patchify(self.patch_embedding, pixels) + self.position_embedding.weight


class SiglipVision(nn.Module):
    """SigLIP as the released Uni-MoE-2.0 tower keeps it: ``num_hidden_layers - 1`` layers, no post-layernorm
    and no pooling head; ``[N, 3, S, S]`` -> ``[N, (S/p)^2, D]``."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        if config.num_hidden_layers < 2:
            raise ValueError("a SigLIP tower needs >= 2 layers: the released tower drops the last one")
        self.config = config
        self.embeddings = SiglipEmbeddings(config)
        self.encoder = Encoder(config, config.num_hidden_layers - 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(pixels)
        for layer in self.encoder.layers:
            x = layer(x)
        return x


class ClipEmbeddings(nn.Module):
    def __init__(self, config: ViTConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.empty(config.hidden_size))
        self.patch_embedding = nn.Conv2d(config.num_channels, config.hidden_size, config.patch_size, config.patch_size,
                                         bias=False)
        self.position_embedding = nn.Embedding(config.num_patches + 1, config.hidden_size)
        nn.init.normal_(self.class_embedding, std=config.hidden_size**-0.5)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = _patchify(self.patch_embedding, pixels)
        cls = self.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight


class ClipVision(nn.Module):
    """CLIP ViT with LLaVA's feature choice: the output of layer -2 without the CLS token,
    ``[N, 3, S, S]`` -> ``[N, (S/p)^2, D]``. The last layer and ``post_layernorm`` are kept so that the weights
    load strictly, but never run."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        if config.num_hidden_layers < 2:
            raise ValueError("a CLIP tower needs >= 2 layers: its features are layer -2's")
        self.config = config
        self.embeddings = ClipEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # sic: the released name
        self.encoder = Encoder(config, config.num_hidden_layers)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = self.pre_layrnorm(self.embeddings(pixels))
        for layer in self.encoder.layers[:-1]:
            x = layer(x)
        return x[:, 1:]


VISION_MODELS: dict[str, type[nn.Module]] = {"siglip": SiglipVision, "clip": ClipVision}

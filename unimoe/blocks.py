"""Transformer pieces the vision and audio towers share: multi-head attention under the projection names the
released checkpoints use (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``) and the activations their configs
name. Written here, not imported from transformers, so that building a tower costs no modelling-library import.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn


def config_fields(config_class: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of a Hugging Face config dict that a tower's config dataclass names; the others (dropout,
    ``model_type``, ``projection_dim``...) do not shape the forward pass and are ignored."""
    return {f.name: values[f.name] for f in fields(config_class) if f.name in values}


def _quick_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(1.702 * x)


def _tanh_gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x, approximate="tanh")


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,  # exact (erf) GELU: Whisper
    "gelu_pytorch_tanh": _tanh_gelu,  # SigLIP
    "gelu_new": _tanh_gelu,
    "quick_gelu": _quick_gelu,  # CLIP (OpenAI)
    "relu": F.relu,
    "silu": F.silu,
}


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation a tower config names (``hidden_act`` / ``activation_function``)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(ACTIVATIONS))}") from None


class Attention(nn.Module):
    """Multi-head attention, self or cross (``context``), optionally causal. ``key_bias=False`` is Whisper's
    bias-free key projection."""

    def __init__(self, dim: int, heads: int, key_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim, bias=key_bias)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # [B, T, D] -> [B, H, T, D/H]

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        source = x if context is None else context
        q, k, v = self._split(self.q_proj(x)), self._split(self.k_proj(source)), self._split(self.v_proj(source))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.out_proj(out.transpose(1, 2).flatten(2))

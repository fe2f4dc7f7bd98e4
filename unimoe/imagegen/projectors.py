"""The three projectors from the language model's hidden states to the image generator (``TextFcLayer``).

Released layout (Uni-MoE-2.0-Omni ``visual_gen_projector/layers.py``, the NExT-GPT/GILL lineage):

- ``linear`` mode: ``model`` = ``Linear(in, out)``, applied token-wise (``visual_hidden_fcs``: the source
  image's pooled vision features, already in the LLM's width, 3584 -> 1024);
- ``transformer`` mode: ``fc`` = ``Linear(in, hidden)``, ``tfm`` = pre-norm ``nn.Transformer`` (encoder over the
  span, decoder over learned ``query_embs``; ReLU FFN of 4x hidden, no dropout), ``model`` = ``Linear(hidden,
  out)``; the span's hidden states are first summed with the span tokens' input embeddings
  (``image_hidden_fcs``: 32 queries, 3584 -> 1536 -> 2048; ``task_hidden_fcs``: 3 queries, out 768).

Module names equal the released ones so that state dicts load without renaming (:mod:`.layout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Mode = Literal["linear", "transformer"]


class TextFcLayer(nn.Module):
    """Maps ``(batch, tokens, in_dim)`` hidden states to ``(batch, queries, out_dim)`` generator conditions."""

    def __init__(self, in_dim: int, out_dim: int, mode: Mode = "linear", num_queries: int = 1, hidden_dim: int = 512,
                 num_layers: int = 4, num_heads: int = 4):
        super().__init__()
        self.mode = mode
        if mode == "linear":
            self.model = nn.Linear(in_dim, out_dim)
        elif mode == "transformer":
            self.fc = nn.Linear(in_dim, hidden_dim)
            layer = dict(d_model=hidden_dim, nhead=num_heads, dim_feedforward=4 * hidden_dim, dropout=0.0,
                         batch_first=True, norm_first=True)
            encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer), num_layers, nn.LayerNorm(hidden_dim),
                                            enable_nested_tensor=False)  # nested tensors do not apply to pre-norm
            self.tfm = nn.Transformer(**layer, num_decoder_layers=num_layers, custom_encoder=encoder)
            self.model = nn.Linear(hidden_dim, out_dim)
            self.query_embs = nn.Parameter(torch.randn(1, num_queries, hidden_dim))
        else:
            raise ValueError(f"TextFcLayer mode must be 'linear' or 'transformer', got {mode!r}")

    def forward(self, hidden: torch.Tensor, input_embeds: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "linear":
            return self.model(hidden)
        if input_embeds is not None:
            hidden = hidden + input_embeds
        queries = self.query_embs.expand(hidden.shape[0], -1, -1)
        return self.model(self.tfm(self.fc(hidden), queries))


@dataclass(frozen=True)
class ProjectorSpec:
    """Widths of the three projectors. ``full()`` is the released geometry (reference §2.7); the projector
    transformers' head count is not recorded there (it changes no weight shape) and is taken as NExT-GPT's 4."""

    llm_dim: int = 3584
    hidden_dim: int = 1536
    num_layers: int = 4
    num_heads: int = 4
    image_queries: int = 32
    image_dim: int = 2048
    task_queries: int = 3
    task_dim: int = 768
    visual_dim: int = 1024

    @staticmethod
    def full() -> "ProjectorSpec":
        return ProjectorSpec()


class VisualGenProjectors(nn.Module):
    """``task_hidden_fcs``, ``image_hidden_fcs`` and ``visual_hidden_fcs``, each a one-element ``ModuleList`` as
    released (keys ``<name>.0.*``)."""

    def __init__(self, spec: ProjectorSpec):
        super().__init__()
        self.spec = spec
        common = dict(mode="transformer", hidden_dim=spec.hidden_dim, num_layers=spec.num_layers,
                      num_heads=spec.num_heads)
        self.task_hidden_fcs = nn.ModuleList(
            [TextFcLayer(spec.llm_dim, spec.task_dim, num_queries=spec.task_queries, **common)])
        self.image_hidden_fcs = nn.ModuleList(
            [TextFcLayer(spec.llm_dim, spec.image_dim, num_queries=spec.image_queries, **common)])
        self.visual_hidden_fcs = nn.ModuleList([TextFcLayer(spec.llm_dim, spec.visual_dim, mode="linear")])

    def forward(self, task_states: torch.Tensor, task_embeds: torch.Tensor, image_states: torch.Tensor,
                image_embeds: torch.Tensor, visual_features: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(task, content, visual)`` conditions; ``visual`` is None without a source image."""
        task = self.task_hidden_fcs[0](task_states, task_embeds)
        content = self.image_hidden_fcs[0](image_states, image_embeds)
        visual = None if visual_features is None else self.visual_hidden_fcs[0](visual_features)
        return task, content, visual

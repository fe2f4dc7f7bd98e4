"""Routing numbers a report draws: expert usage per modality and layer, and how far modalities' choices differ.

Everything here is computed from the additive counts a run stores (``tasks.<t>.routing.counts``, see
:mod:`harness.routing_report`), so a report never needs the model, and counts of several tasks, shards or
runs combine by addition before any share is taken.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

MODALITY_ORDER = ("text", "image", "video", "audio")


@dataclass(frozen=True)
class ExpertLayout:
    """Columns of a usage matrix: routed experts, then null experts, then shared (always-on) experts."""

    routed: int
    null: int = 0
    shared: int = 0

    @property
    def labels(self) -> list[str]:
        null = ["null"] if self.null == 1 else [f"null{i}" for i in range(self.null)]
        return [f"E{i}" for i in range(self.routed)] + null + [f"S{i}" for i in range(self.shared)]


def modalities(counts: Mapping[str, Any]) -> list[str]:
    """Modalities with routed tokens, in a fixed order (text, image, video, audio, then any others)."""
    present = [m for m, c in counts.items() if isinstance(c, Mapping) and c.get("tokens") and "expert_tokens" in c]
    return sorted(present, key=lambda m: (MODALITY_ORDER.index(m) if m in MODALITY_ORDER else len(MODALITY_ORDER), m))


def layout_for(counts: Mapping[str, Any], model_dir: Path | None = None) -> ExpertLayout:
    """The expert layout, from the checkpoint's config when the run's model folder is at hand.

    Without it, null experts are recognised from the counts: a single null expert is the last column when that
    column equals ``null_tokens`` in every layer of every modality; shared experts cannot be seen in counts.
    """
    columns = max((len(c["expert_tokens"][0]) for m, c in counts.items() if m in modalities(counts)), default=0)
    config_path = model_dir / "config.json" if model_dir else None
    if config_path and config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except ValueError:
            config = {}
        null = int(config.get("mlp_dynamic_null_expert_num", 0) or 0)
        shared = int(config.get("mlp_fixed_expert_num", 0) or 0)
        if config.get("moe_type") == "dynamic" and 0 <= null < columns:
            return ExpertLayout(columns - null, null, shared)
    entries = [counts[m] for m in modalities(counts)]
    last_is_null = bool(entries) and all(
        "null_tokens" in c and [layer[-1] for layer in c["expert_tokens"]] == list(c["null_tokens"])
        and any(c["null_tokens"]) for c in entries)
    return ExpertLayout(columns - 1, 1, 0) if last_is_null else ExpertLayout(columns)


def usage(entry: Mapping[str, Any], layout: ExpertLayout) -> np.ndarray:
    """``[layers, columns]``: the share of the modality's tokens that used each expert (shared experts: 1)."""
    tokens = max(1, int(entry["tokens"]))
    chosen = np.asarray(entry["expert_tokens"], dtype=float) / tokens
    shared = np.ones((chosen.shape[0], layout.shared))
    return np.concatenate([chosen, shared], axis=1)


def distribution(entry: Mapping[str, Any]) -> np.ndarray:
    """``[layers, routed + null]``: each layer's expert choices as a probability distribution."""
    chosen = np.asarray(entry["expert_tokens"], dtype=float)
    return chosen / np.maximum(chosen.sum(axis=1, keepdims=True), 1.0)


def per_layer(entry: Mapping[str, Any], key: str) -> np.ndarray:
    """A per-layer count divided by the modality's tokens (``active_experts_sum``, ``null_tokens``)."""
    return np.asarray(entry.get(key, []), dtype=float) / max(1, int(entry["tokens"]))


def total_variation(counts: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """Modalities and ``[layers, M, M]`` total-variation distances between their expert-choice distributions."""
    names = modalities(counts)
    dists = np.stack([distribution(counts[m]) for m in names]) if names else np.zeros((0, 0, 0))
    if not names:
        return names, np.zeros((0, 0, 0))
    # [M, L, E] -> [L, M, M]
    diff = np.abs(dists[:, None] - dists[None, :]).sum(-1) / 2
    return names, np.transpose(diff, (2, 0, 1))

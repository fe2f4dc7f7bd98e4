"""Report figures in one style: print-safe colour scales, the same fonts and sizes everywhere.

Each builder returns a matplotlib ``Figure``; :func:`save` writes it as PNG and PDF (for papers) and returns
the PNG bytes that the HTML page inlines. The Agg backend is used explicitly, so no display is needed.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from harness.report import routing as R

SEQUENTIAL = "cividis"  # perceptually uniform, colour-blind safe, readable in greyscale print
LINES = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")  # Okabe-Ito
STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "axes.spines.top": False, "axes.spines.right": False, "font.family": "DejaVu Sans",
         "pdf.fonttype": 42, "svg.fonttype": "none"}


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.rcParams.update(STYLE)
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, out_dir: Path, name: str) -> bytes:
    """Write ``<name>.png`` and ``<name>.pdf`` under ``out_dir``; return the PNG bytes for inlining."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=150)
    png = buffer.getvalue()
    (out_dir / f"{name}.png").write_bytes(png)
    fig.savefig(out_dir / f"{name}.pdf", format="pdf")
    return png


def usage_heatmaps(counts: Mapping[str, Any], layout: R.ExpertLayout, title: str = "") -> Figure:
    """One layer x expert heatmap per modality: the share of its tokens that used each expert."""
    names = R.modalities(counts)
    fig = _figure(1.2 + 0.32 * len(layout.labels) * max(1, len(names)), 0.6 + 0.28 * _layers(counts, names))
    axes = fig.subplots(1, max(1, len(names)), squeeze=False)[0]
    image = None
    for ax, name in zip(axes, names):
        matrix = R.usage(counts[name], layout)
        image = ax.imshow(matrix, cmap=SEQUENTIAL, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        ax.set_title(f"{name} ({counts[name]['tokens']:,} tokens)")
        ax.set_xticks(range(len(layout.labels)), layout.labels, rotation=90)
        ax.set_yticks(range(matrix.shape[0]))
        ax.set_xlabel("expert")
        if layout.null:  # separate routed | null | shared columns
            for edge in (layout.routed, layout.routed + layout.null):
                if edge < matrix.shape[1]:
                    ax.axvline(edge - 0.5, color="white", lw=1.5)
    axes[0].set_ylabel("layer")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="share of tokens", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def _layers(counts: Mapping[str, Any], names: Sequence[str]) -> int:
    return max((len(counts[m]["expert_tokens"]) for m in names), default=1)


def layer_profile(counts: Mapping[str, Any], title: str = "") -> Figure:
    """Mean routed experts per token and null-expert rate per layer, one line per modality."""
    fig = _figure(6.0, 2.2)
    active_ax, null_ax = fig.subplots(1, 2)
    for colour, name in zip(LINES, R.modalities(counts)):
        active = R.per_layer(counts[name], "active_experts_sum")
        null = R.per_layer(counts[name], "null_tokens")
        if active.size:
            active_ax.plot(range(active.size), active, marker="o", ms=3, color=colour, label=name)
        if null.size:
            null_ax.plot(range(null.size), null, marker="o", ms=3, color=colour, label=name)
    active_ax.set(xlabel="layer", ylabel="routed experts per token", title="active experts")
    null_ax.set(xlabel="layer", ylabel="share of tokens", title="null-expert rate", ylim=(-0.02, 1.02))
    for ax in (active_ax, null_ax):
        ax.xaxis.get_major_locator().set_params(integer=True)
    active_ax.legend(frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def tv_matrices(counts: Mapping[str, Any], title: str = "") -> Figure:
    """Total-variation distance between modalities' expert choices: the mean over layers, then each layer."""
    names, tv = R.total_variation(counts)
    panels = [("mean over layers", tv.mean(axis=0))] + [(f"layer {i}", tv[i]) for i in range(tv.shape[0])]
    fig = _figure(0.4 + 1.55 * len(panels), 1.9)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    image = None
    for ax, (label, matrix) in zip(axes, panels):
        image = ax.imshow(matrix, cmap=SEQUENTIAL, vmin=0.0, vmax=1.0)
        ax.set_title(label)
        ax.set_xticks(range(len(names)), names, rotation=90)
        ax.set_yticks(range(len(names)), names if ax is axes[0] else [])
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if matrix[i, j] > 0.55 else "white")
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="total variation", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig


def training_curves(logs: Mapping[str, Path]) -> Figure | None:
    """Loss (and learning rate, when logged) per training stage, from the trainers' ``<stage>-log.csv`` files."""
    series = {stage: _read_log(path) for stage, path in logs.items()}
    series = {k: v for k, v in series.items() if v.get("loss")}
    if not series:
        return None
    has_lr = any(v.get("lr") for v in series.values())
    fig = _figure(6.0, 2.2)
    axes = fig.subplots(1, 2 if has_lr else 1, squeeze=False)[0]
    offset = 0
    for colour, (stage, cols) in zip(LINES * 4, series.items()):
        steps = np.arange(len(cols["loss"])) + offset
        axes[0].plot(steps, cols["loss"], color=colour, lw=1, label=stage)
        if has_lr and cols.get("lr"):
            axes[1].plot(steps, cols["lr"], color=colour, lw=1, label=stage)
        offset += len(cols["loss"])
    axes[0].set(xlabel="step (stages in order)", ylabel="loss", title="training loss")
    axes[0].legend(frameon=False)
    if has_lr:
        axes[1].set(xlabel="step (stages in order)", ylabel="learning rate", title="learning rate")
    return fig


def _read_log(path: Path) -> dict[str, list[float]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, list[float]] = {}
    for key in ("loss", "lr"):
        values = []
        for row in rows:
            try:
                values.append(float(row[key]))
            except (KeyError, TypeError, ValueError):
                break
        if len(values) == len(rows):
            out[key] = values
    return out

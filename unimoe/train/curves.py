"""Loss curves from a stage's ``log.csv`` as a PNG (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path


def plot_curves(log_csv: str | Path, png: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(log_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    for key in ("loss", "ce", "aux"):
        values = [float(r[key]) for r in rows if r.get(key) not in ("", None)]
        if values and len(values) == len(steps):
            ax.plot(steps, values, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(Path(log_csv).parent.name)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return Path(png)

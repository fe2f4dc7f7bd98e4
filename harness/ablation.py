"""One table for an ablation sweep: per run, the primary score of every task and the routing cost.

Rows are the whole runs (:func:`harness.results.run_coverage`) found under a results folder (e.g. the output
of ``python -m harness run -m ... +model.args.checkpoint=a,b,c``); a row is named by what differs between
the runs' checkpoints (else the model name). Routing columns come from the runs' routing counts over all
tasks, modalities and layers: mean real experts computed per token and the share of token-layer routings
that chose a null expert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from harness.results import iter_results, primary_value, run_coverage, warn
from harness.routing_report import run_counts


def _label_parts(results: Sequence[Mapping[str, Any]]) -> list[str]:
    paths = [Path(str(r.get("model", {}).get("args", {}).get("checkpoint") or "")).parts for r in results]
    if len(results) < 2 or not all(paths):
        return [r.get("model", {}).get("name", "?") for r in results]
    head = 0
    while all(len(p) > head + 1 for p in paths) and len({p[head] for p in paths}) == 1:
        head += 1
    tail = 0
    while all(len(p) > head + tail + 1 for p in paths) and len({p[-1 - tail] for p in paths}) == 1:
        tail += 1
    return ["/".join(p[head:len(p) - tail]) for p in paths]


def routing_cost(result: Mapping[str, Any]) -> tuple[float, float]:
    """(mean active experts per token-layer, null-expert rate) over every task and modality of a run."""
    total = run_counts(result)
    tokens = active = null = 0.0
    for modality, c in total.items():
        if not isinstance(c, dict) or "tokens" not in c:
            continue
        layers = len(c.get("active_experts_sum", [])) or 1
        tokens += c["tokens"] * layers
        active += sum(c.get("active_experts_sum", []))
        null += sum(c.get("null_tokens", []))
    return (active / tokens, null / tokens) if tokens else (float("nan"), float("nan"))


def ablation_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Markdown: one row per run, the primary metric of each task, their mean, and the routing cost."""
    tasks = sorted({t for r in results for t in r.get("tasks", {})})
    short = [t.split("_", 1)[-1] if "_" in t else t for t in tasks]
    lines = ["| run | " + " | ".join(short) + " | mean | active experts/token | null rate |",
             "|---" * (len(tasks) + 4) + "|"]
    for label, r in zip(_label_parts(results), results):
        scores = []
        for t in tasks:
            value = primary_value(r.get("tasks", {}).get(t) or {})
            scores.append(float("nan") if value is None else value)
        mean = sum(scores) / len(scores) if scores else float("nan")
        active, null = routing_cost(r)
        cells = [f"{s:.1f}" for s in scores] + [f"{mean:.1f}", f"{active:.2f}", f"{null:.3f}"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ablation_command(args: Mapping[str, str]) -> int:
    from harness.errors import ConfigError, InputFileError

    if "runs" not in args:
        raise ConfigError("ablation needs runs=<results folder> (its runs/*/results.json are the rows)")
    root = Path(args["runs"])
    runs_dir = root / "runs" if any((root / "runs").glob("*/results.json")) else root
    if not any(runs_dir.glob("*/results.json")):
        raise InputFileError(f"{root}: no runs/*/results.json")
    results = []
    for _, res in iter_results(runs_dir):
        coverage = run_coverage(res)
        if coverage.whole:
            results.append(res)
        elif res.get("status") == "complete":
            warn(f"ablation: run {res['run_id']} left out, it is not a whole run ({coverage.reason})")
    table = ablation_table(results)
    print(table)
    if args.get("out"):
        Path(args["out"]).write_text(table + "\n")
    return 0

"""Routing statistics: merging per-sample counts and turning them into a per-modality, per-layer report.

Adapters put *additive* counts under ``Response.stats["routing"]`` (numbers, lists of numbers, nested
dicts of those), e.g. ``{"image": {"tokens": 12, "expert_tokens": [[...per expert...] per layer],
"null_tokens": [...per layer...], "active_experts_sum": [...per layer...]}}``. Counts merge by addition,
so any number of samples, batches or shards combine exactly; means are derived only when reporting.
"""

from __future__ import annotations

from typing import Any, Mapping


def merge_counts(into: dict[str, Any], counts: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``counts`` into ``into`` elementwise (recursively for dicts and lists)."""
    for key, value in counts.items():
        if key not in into:
            into[key] = _copy(value)
        else:
            into[key] = _add(into[key], value)
    return into


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return merge_counts(dict(a), b)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise ValueError(f"cannot merge routing counts of lengths {len(a)} and {len(b)}")
        return [_add(x, y) for x, y in zip(a, b)]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a + b
    raise TypeError(f"routing counts must be numbers, lists or dicts, got {type(a).__name__}/{type(b).__name__}")


def run_counts(results: Mapping[str, Any]) -> dict[str, Any]:
    """The routing counts of every task of a run, added together (empty when the model reported none)."""
    total: dict[str, Any] = {}
    for record in results.get("tasks", {}).values():
        counts = (record.get("routing") or {}).get("counts")
        if counts:
            merge_counts(total, counts)
    return total


def summarize(counts: Mapping[str, Any]) -> dict[str, Any]:
    """Per modality: tokens, expert-usage distribution per layer (fractions), null rate and mean active experts."""
    report: dict[str, Any] = {}
    for modality, c in counts.items():
        if not isinstance(c, Mapping) or not c.get("tokens"):
            continue
        tokens = c["tokens"]
        entry: dict[str, Any] = {"tokens": tokens}
        if "expert_tokens" in c:
            entry["expert_share"] = [
                [n / max(1, sum(layer)) for n in layer] for layer in c["expert_tokens"]
            ]
        if "null_tokens" in c:
            entry["null_rate"] = [n / tokens for n in c["null_tokens"]]
        if "active_experts_sum" in c:
            entry["mean_active_experts"] = [n / tokens for n in c["active_experts_sum"]]
        report[modality] = entry
    return report


def format_report(task: str, report: Mapping[str, Any]) -> str:
    """Readable per-modality table: tokens, mean active experts, null rate, and the most used experts per layer."""
    lines = [f"## {task}", f"{'modality':10} {'tokens':>8} {'active/tok':>10} {'null rate':>9}  top experts (layer 0 .. L-1)"]
    for modality, entry in report.items():
        active = entry.get("mean_active_experts")
        null = entry.get("null_rate")
        tops = [max(range(len(layer)), key=layer.__getitem__) for layer in entry.get("expert_share", [])]
        lines.append(
            f"{modality:10} {entry['tokens']:8d} "
            f"{(sum(active) / len(active)) if active else float('nan'):10.2f} "
            f"{(sum(null) / len(null)) if null else float('nan'):9.3f}  {tops}"
        )
    return "\n".join(lines)


def routing_command(args: Mapping[str, str]) -> int:
    from pathlib import Path

    from harness.errors import ConfigError
    from harness.jsonio import read_json_object

    if "run" not in args:
        raise ConfigError("routing needs run=<run dir or results.json>")
    path = Path(args["run"])
    path = path / "results.json" if path.is_dir() else path
    results = read_json_object(path, "results file")
    shown = 0
    for task, rec in (results.get("tasks") or {}).items():
        if isinstance(rec, dict) and isinstance(rec.get("routing"), dict) and "summary" in rec["routing"]:
            print(format_report(task, rec["routing"]["summary"]))
            shown += 1
    if not shown:
        print(f"{path}: no routing statistics (the model reported none)")
    return 0

"""Regression comparison of two runs: per task and metric, the delta in the metric's own direction.

A metric regresses when it moves the wrong way by more than ``tolerance`` (in reported units, e.g.
accuracy points). When both runs kept their per-sample logs, the paired difference over the shared
samples is shown with a 95% confidence interval, which tells noise from change. Two runs over different
documents (another shard or limit) are refused; partial runs over the same documents are footnoted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from harness.errors import ConfigError, HarnessError
from harness.results import read_results, run_coverage, run_selection
from harness.runner import read_sample_log
from harness.schema import parse_tolerance


@dataclass
class Delta:
    task: str
    metric: str
    baseline: float
    candidate: float
    higher_is_better: bool
    regressed: bool
    paired: tuple[float, float, float] | None = None  # (delta, ci_low, ci_high) on shared samples

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline


def load_results(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    return read_results(path) | {"_path": str(path)}


def compare(baseline: Mapping[str, Any], candidate: Mapping[str, Any], tolerance: float = 0.0) -> list[Delta]:
    """Every baseline task and metric against the candidate's; one the candidate lacks counts as regressed
    (a gate must not pass because a task silently stopped running)."""
    deltas = []
    for task, brec in baseline.get("tasks", {}).items():
        crec = candidate.get("tasks", {}).get(task) or {}
        for metric, bm in brec.get("metrics", {}).items():
            hib = bm.get("higher_is_better", True)
            cm = crec.get("metrics", {}).get(metric)
            if cm is None:
                deltas.append(Delta(task, metric, _number(bm.get("value")), math.nan, hib, True))
                continue
            b, c = _number(bm.get("value")), _number(cm.get("value"))
            if math.isnan(c) and not math.isnan(b):
                regressed = True
            else:
                drop = (b - c) if hib else (c - b)
                regressed = drop > tolerance
            deltas.append(Delta(task, metric, b, c, hib, regressed, _paired(baseline, candidate, task, metric)))
    return deltas


def _number(value: Any) -> float:
    """A metric value as a float; null (a NaN written as strict JSON) or junk reads as NaN."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _samples(results: Mapping[str, Any], task: str) -> dict[str, Any] | None:
    path = Path(results.get("_path", "")).parent / "samples" / f"{task}.jsonl"
    if not path.is_file():
        return None
    return {doc_id: row.get("items", {}) for doc_id, row in read_sample_log(path).items() if row.get("error") is None}


def _paired(baseline: Mapping[str, Any], candidate: Mapping[str, Any], task: str, metric: str):
    a, b = _samples(baseline, task), _samples(candidate, task)
    if not a or not b:
        return None
    from harness.metrics.uncertainty import paired_difference

    shared = [d for d in a if d in b and isinstance(a[d].get(metric), (int, float))
              and isinstance(b[d].get(metric), (int, float))]
    if len(shared) < 2:
        return None
    scale = baseline["tasks"][task].get("scale", 1.0)
    delta, lo, hi = paired_difference([a[d][metric] for d in shared], [b[d][metric] for d in shared])
    return delta * scale, lo * scale, hi * scale


def coverage_notes(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """Footnotes for runs that are not whole (:func:`harness.results.run_coverage`); raises
    :class:`harness.api.HarnessError` when the two cover different documents (other shards or limits), whose
    scores a delta would compare as if they were the same test."""
    if run_selection(baseline) != run_selection(candidate):
        raise HarnessError(
            f"compare: baseline {baseline.get('_path', '')} and candidate {candidate.get('_path', '')} cover "
            f"different documents ({_describe(baseline)} vs {_describe(candidate)}); compare whole runs, or "
            f"partial runs made with the same shard and limit")
    notes = []
    for role, res in (("baseline", baseline), ("candidate", candidate)):
        coverage = run_coverage(res)
        if not coverage.whole:
            notes.append(f"{role} is not a whole run ({coverage.reason}): its scores cover part of the benchmark")
    return notes


def _describe(results: Mapping[str, Any]) -> str:
    selection = run_selection(results)
    parts = [f"{key}={value}" for key, value in selection.items() if value is not None]
    return ", ".join(parts) or "every document"


COMPARABILITY_KEYS = ("task_hash", "prompt_hash", "extraction_rule", "data_source", "judge")


def comparability_notes(baseline: Mapping[str, Any], candidate: Mapping[str, Any]) -> list[str]:
    """What differs between the two runs' task set-ups (prompt, extraction, data, judge): a reason for a
    difference in scores that is not the model's."""
    notes = []
    for task, brec in baseline.get("tasks", {}).items():
        crec = candidate.get("tasks", {}).get(task)
        if crec is None:
            notes.append(f"{task}: missing from the candidate run")
            continue
        for key in COMPARABILITY_KEYS:
            if brec.get(key) != crec.get(key):
                notes.append(f"{task}: {key} differs ({brec.get(key)!r} -> {crec.get(key)!r})")
    return notes


def format_deltas(deltas: list[Delta]) -> str:
    lines = [f"{'task':28} {'metric':16} {'baseline':>10} {'candidate':>10} {'delta':>9}  {'paired 95% CI':>22}  verdict"]
    for d in deltas:
        ci = "" if d.paired is None else f"[{d.paired[1]:+.2f}, {d.paired[2]:+.2f}]"
        verdict = "REGRESSED" if d.regressed else "ok"
        lines.append(f"{d.task:28} {d.metric:16} {d.baseline:10.2f} {d.candidate:10.2f} {d.delta:+9.2f}  {ci:>22}  {verdict}")
    return "\n".join(lines)


def compare_command(args: Mapping[str, str]) -> int:
    if "baseline" not in args or "candidate" not in args:
        raise ConfigError("compare needs baseline=<results.json> candidate=<results.json> [tolerance=0.0]")
    tolerance = parse_tolerance(args.get("tolerance", 0))
    baseline, candidate = load_results(args["baseline"]), load_results(args["candidate"])
    partial = coverage_notes(baseline, candidate)
    deltas = compare(baseline, candidate, tolerance)
    print(format_deltas(deltas))
    for note in partial + comparability_notes(baseline, candidate):
        print(f"note: {note}")
    if not deltas:
        print("no task/metric in common: nothing compared")
        return 1
    regressed = [d for d in deltas if d.regressed]
    print(f"\n{len(regressed)} regression(s) beyond tolerance {args.get('tolerance', 0)}")
    return 1 if regressed else 0

"""Means of sub-task means: benchmarks whose overall score is an unweighted mean over sub-tasks, not over
questions (VSI-Bench's 8 task scores with the three rel_direction levels averaged first, MVBench's 20
sub-tasks, VideoMMMU's three tracks).

An item carries its group path, e.g. ``("object_rel_direction", "hard")`` or ``("object_counting",)``, and
the per-question score of an inner metric (accuracy, MRA, ...). The aggregate averages the questions of each
leaf, then the children of each node, unweighted, up to the root.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

from harness.metrics.base import Metric, get_metric, register_metric


def _path(group: Any) -> tuple[str, ...]:
    return tuple(str(g) for g in group) if isinstance(group, (list, tuple)) else (str(group),)


def group_mean_item(prediction: Any, target: Any, group: Any = "all", inner: str = "accuracy",
                    **inner_options: Any) -> dict[str, Any]:
    """``{"group": path, "score": inner metric's item}``; the inner metric must be a per-sample mean metric."""
    return {"group": _path(group), "score": float(get_metric(inner).item(prediction, target, **inner_options))}


def _weights(items: Sequence[dict[str, Any]]) -> list[float]:
    """Each item's weight in the nested unweighted mean (the weights sum to 1)."""
    children: dict[tuple[str, ...], set[str]] = defaultdict(set)
    leaf_size: dict[tuple[str, ...], int] = defaultdict(int)
    for item in items:
        path = tuple(item["group"])
        leaf_size[path] += 1
        for depth in range(len(path)):
            children[path[:depth]].add(path[depth])
    weights = []
    for item in items:
        path = tuple(item["group"])
        w = 1.0 / leaf_size[path]
        for depth in range(len(path)):
            w /= len(children[path[:depth]])
        weights.append(w)
    return weights


def group_mean_aggregate(items: Sequence[dict[str, Any]]) -> float:
    return sum(w * item["score"] for w, item in zip(_weights(items), items))


def group_mean_scores(items: Sequence[dict[str, Any]]) -> list[float]:
    """Per-item scores rescaled so that their plain mean is the nested mean (for its standard error)."""
    n = len(items)
    return [n * w * item["score"] for w, item in zip(_weights(items), items)]


def group_scores(items: Sequence[dict[str, Any]], depth: int = 1) -> dict[str, float]:
    """The nested mean of every group at ``depth`` (e.g. VSI-Bench's 8 task scores), keyed by 'a/b' path."""
    by: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        path = tuple(item["group"])
        by[path[:depth]].append({"group": path[depth:] or ("",), "score": item["score"]})
    return {"/".join(k): group_mean_aggregate(v) for k, v in sorted(by.items())}


register_metric(Metric(
    "group_mean", group_mean_item, group_mean_aggregate, stderr="bootstrap", best=1.0,
    sample_scores=group_mean_scores,
    description="unweighted mean of sub-task means (options: inner metric; the task passes each item's group)",
))

"""Scores read off an image judge's verdicts (the task asks the judge; these turn its numbers into items).

* VIEScore (GEdit-Bench): SC = min(SC scores), PQ = min(PQ scores), O = sqrt(SC * PQ), 0-10. GEdit-Bench's
  official ``calculate_statistics.py`` averages each task type, then the task-type means without weights
  (``viescore_overall`` / ``_semantics`` / ``_quality``, items carry their group); lmms-eval's
  ``gedit_bench_aggregate_results`` takes the plain mean over samples (``viescore_overall_micro``).
* WiScore (WISE): (0.7 consistency + 0.2 realism + 0.1 aesthetic_quality) / 2 per image, 0-1; the overall is
  the category means weighted as the task's options say (WISE: culture 0.4, time 0.167, space 0.133, biology,
  physics, chemistry 0.1), divided by the weights of the categories present (1.0 on the full set).
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import mean
from typing import Any, Mapping, Sequence

from harness.metrics.base import Metric, register_metric
from harness.metrics.grouped import group_mean_aggregate, group_mean_scores


def viescore_parts(prediction: Mapping[str, Sequence[float]]) -> tuple[float, float, float]:
    """(SC, PQ, O) from the two verdicts' score lists."""
    sc, pq = min(prediction["sc"]), min(prediction["pq"])
    return sc, pq, math.sqrt(sc * pq)


def _grouped(index: int):
    def item(prediction: Any, target: Any = None, group: Any = "all") -> dict[str, Any]:
        return {"group": (str(group),), "score": float(viescore_parts(prediction)[index])}

    return item


def _micro_item(prediction: Any, target: Any = None, **_: Any) -> float:
    return viescore_parts(prediction)[2]


for _name, _index, _what in (("viescore_semantics", 0, "SC"), ("viescore_quality", 1, "PQ"),
                             ("viescore_overall", 2, "O = sqrt(SC*PQ)")):
    register_metric(Metric(_name, _grouped(_index), group_mean_aggregate, stderr="bootstrap", best=10.0,
                           sample_scores=group_mean_scores,
                           description=f"VIEScore {_what} (0-10), mean of the task-type means (GEdit-Bench)"))
register_metric(Metric("viescore_overall_micro", _micro_item, mean, best=10.0,
                       description="VIEScore O = sqrt(SC*PQ) (0-10), plain mean over samples (lmms-eval)"))


def wiscore(scores: Mapping[str, float]) -> float:
    return (0.7 * scores["consistency"] + 0.2 * scores["realism"] + 0.1 * scores["aesthetic_quality"]) / 2


def _wiscore_item(prediction: Any, target: Any = None, category: str = "all",
                  weights: Mapping[str, float] | None = None) -> dict[str, Any]:
    weight = 1.0 if weights is None else float(weights[category])
    return {"group": str(category), "weight": weight, "score": wiscore(prediction)}


def _category_shares(items: Sequence[dict[str, Any]]) -> list[float]:
    """Each item's share of the overall: its category's weight over the weights present, over its size."""
    size: dict[str, int] = defaultdict(int)
    weight: dict[str, float] = {}
    for item in items:
        size[item["group"]] += 1
        weight[item["group"]] = item["weight"]
    total = sum(weight.values())
    return [weight[item["group"]] / total / size[item["group"]] for item in items]


def _wiscore_aggregate(items: Sequence[dict[str, Any]]) -> float:
    return sum(share * item["score"] for share, item in zip(_category_shares(items), items))


def _wiscore_scores(items: Sequence[dict[str, Any]]) -> list[float]:
    n = len(items)
    return [n * share * item["score"] for share, item in zip(_category_shares(items), items)]


register_metric(Metric("wiscore", _wiscore_item, _wiscore_aggregate, stderr="bootstrap", best=1.0,
                       sample_scores=_wiscore_scores,
                       description="WISE WiScore (0-1), category means weighted (options: weights)"))

"""Standard errors for aggregated metrics, and the paired difference of two runs.

- ``mean`` metrics (per-sample numbers averaged): the standard error of the mean; with clusters (several
  questions on one video) the cluster-robust estimator, which widens the error when answers within a
  cluster are correlated instead of pretending they are independent.
- ``bootstrap`` metrics (corpus-level: WER, CIDEr, circular accuracy): the standard deviation of the
  aggregate over seeded bootstrap resamples, resampling whole clusters when clusters are given.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any, Sequence

BOOTSTRAP_ROUNDS = 1000


def mean_stderr(values: Sequence[float], clusters: Sequence[Any] | None = None) -> float:
    n = len(values)
    if n < 2:
        return math.nan
    mean = sum(values) / n
    if clusters is None or all(c is None for c in clusters):
        var = sum((v - mean) ** 2 for v in values) / (n - 1)
        return math.sqrt(var / n)
    sums: dict[Any, float] = defaultdict(float)
    for v, c in zip(values, clusters):
        sums[c] += v - mean
    g = len(sums)
    if g < 2:
        return math.nan
    # cluster-robust (CR1) variance of the mean: G/(G-1) * sum_g (sum_{i in g} (x_i - mean))^2 / n^2
    return math.sqrt(g / (g - 1) * sum(s * s for s in sums.values()) / n**2)


def bootstrap_stderr(items: Sequence[Any], aggregate, clusters: Sequence[Any] | None = None, seed: int = 0,
                     rounds: int = BOOTSTRAP_ROUNDS) -> float:
    if len(items) < 2:
        return math.nan
    rng = random.Random(seed)
    if clusters is None or all(c is None for c in clusters):
        groups = [[x] for x in items]
    else:
        by: dict[Any, list[Any]] = defaultdict(list)
        for x, c in zip(items, clusters):
            by[c].append(x)
        groups = list(by.values())
    if len(groups) < 2:
        return math.nan
    stats = []
    for _ in range(rounds):
        sample = [x for _ in groups for x in rng.choice(groups)]
        stats.append(aggregate(sample))
    m = sum(stats) / rounds
    return math.sqrt(sum((s - m) ** 2 for s in stats) / (rounds - 1))


def stderr_for(metric: Any, items: Sequence[Any], clusters: Sequence[Any] | None = None, seed: int = 0) -> float | None:
    """The standard error of ``metric.aggregate(items)`` according to the metric's ``stderr`` kind."""
    if metric.stderr == "none":
        return None
    if metric.stderr == "mean":
        return mean_stderr([float(x) for x in items], clusters)
    if metric.sample_scores is not None:
        return mean_stderr(metric.sample_scores(items), clusters)
    return bootstrap_stderr(items, metric.aggregate, clusters, seed=seed)


def paired_difference(a: Sequence[float], b: Sequence[float], z: float = 1.959964) -> tuple[float, float, float]:
    """Mean of (b - a) over shared samples with a normal-approximation 95% interval: (delta, low, high)."""
    if len(a) != len(b) or not a:
        raise ValueError("paired difference needs two equally long, non-empty score lists")
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1) / n) if n > 1 else math.nan
    return mean, mean - z * se, mean + z * se

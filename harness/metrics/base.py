"""The metric contract: a per-sample item plus an aggregation over all items.

Corpus-level metrics (WER, CIDEr) cannot be averaged per sample, so every metric is two functions:
``item`` turns one (prediction, reference) into whatever the aggregation needs, and ``aggregate`` turns the
list of items into one number. Standard errors come from :mod:`harness.metrics.uncertainty`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

from harness.registry import Registry

StderrKind = Literal["mean", "bootstrap", "none"]


@dataclass(frozen=True)
class Metric:
    name: str
    item: Callable[..., Any]  # item(prediction, reference, **options) -> item
    aggregate: Callable[[Sequence[Any]], float]
    higher_is_better: bool = True
    stderr: StderrKind = "mean"  # "mean": items are numbers, stderr of the mean (clustered when asked)
    version: str = "1"
    description: str = ""
    best: float | None = None  # best attainable aggregate (before task scaling); `validate` checks the oracle hits it
    # For corpus metrics that are a mean of per-sample scores under corpus statistics (CIDEr): those scores,
    # so the standard error is that of their mean instead of a costly bootstrap of the whole corpus metric.
    sample_scores: Callable[[Sequence[Any]], list[float]] | None = None


METRICS: Registry[Metric] = Registry("metric")


def register_metric(metric: Metric) -> Metric:
    METRICS.register(metric.name, metric)
    return metric


def get_metric(name: str) -> Metric:
    import harness.metrics  # noqa: F401  (registers the built-in metrics)

    return METRICS.get(name)

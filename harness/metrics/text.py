"""Per-sample text metrics averaged over samples: accuracy, exact match, MMBench circular accuracy."""

from __future__ import annotations

import re
import string
from collections import defaultdict
from typing import Any, Sequence

from harness.metrics.base import Metric, register_metric


def mean(items: Sequence[float]) -> float:
    return sum(items) / len(items)


def _accuracy_item(prediction: Any, target: Any, ignore_case: bool = True) -> float:
    """1.0 when the extracted answer equals the gold one (surrounding space ignored; letter case too unless
    ``ignore_case`` is false, for protocols that compare exactly, e.g. StreamingBench's "b" != "B")."""
    if prediction is None:
        return 0.0
    p, t = str(prediction).strip(), str(target).strip()
    return float(p.lower() == t.lower() if ignore_case else p == t)


_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def _exact_match_item(prediction: Any, target: Any, ignore_case: bool = True, ignore_punctuation: bool = True,
                      normalize: str | None = None) -> float:
    """lm-eval ``exact_match`` with its usual options (case and punctuation ignored by default).

    ``normalize="vqa"`` first puts both sides through the official VQA answer normalisation (digit words,
    articles, contractions), for VQA-style sets with a single gold answer (v1 scores OK-VQA this way).
    A list of gold answers (A-OKVQA's ten direct answers) scores 1 when ANY of them matches.
    """
    if isinstance(target, (list, tuple)):
        return max((_exact_match_item(prediction, t, ignore_case, ignore_punctuation, normalize) for t in target),
                   default=0.0)
    p, t = str(prediction or "").strip(), str(target).strip()
    if normalize == "vqa":
        from harness.metrics.vqa import normalize_vqa_answer

        p, t = normalize_vqa_answer(p), normalize_vqa_answer(t)
    elif normalize is not None:
        raise ValueError(f"exact_match: normalize must be None or 'vqa', got {normalize!r}")
    if ignore_case:
        p, t = p.lower(), t.lower()
    if ignore_punctuation:
        p, t = _PUNCT.sub("", p), _PUNCT.sub("", t)
    return float(p == t)


def _circular_item(prediction: Any, target: Any, group: Any) -> dict[str, Any]:
    return {"group": group, "correct": _accuracy_item(prediction, target) == 1.0}


def _circular_aggregate(items: Sequence[dict[str, Any]]) -> float:
    """A question counts only if every circular copy of it is answered correctly."""
    groups: dict[Any, bool] = defaultdict(lambda: True)
    for item in items:
        groups[item["group"]] &= bool(item["correct"])
    return sum(groups.values()) / len(groups)


def _macro_item(prediction: Any, target: Any, groups: Sequence[Any] = ()) -> dict[str, Any]:
    return {"groups": tuple(groups), "correct": _accuracy_item(prediction, target)}


def _macro_aggregate(items: Sequence[dict[str, Any]]) -> float:
    """Unweighted mean over the first group level of the unweighted means over the next level, and so on
    (no levels: the plain mean). MMStar averages its l2 categories; CV-Bench's official overall is
    mean(mean(ADE20K, COCO), Omni3D), i.e. groups (type, source)."""
    if not items or not items[0]["groups"]:
        return mean([item["correct"] for item in items])
    levels: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        levels[item["groups"][0]].append({"groups": item["groups"][1:], "correct": item["correct"]})
    return mean([_macro_aggregate(members) for members in levels.values()])


register_metric(Metric("accuracy", _accuracy_item, mean, best=1.0, description="extracted answer == gold"))
register_metric(Metric("exact_match", _exact_match_item, mean, best=1.0, description="lm-eval exact match"))
register_metric(Metric("circular_accuracy", _circular_item, _circular_aggregate, stderr="bootstrap", best=1.0,
                       description="MMBench CircularEval: all copies of a question correct"))
register_metric(Metric("circular_accuracy_vlmevalkit", _circular_item, _circular_aggregate, stderr="bootstrap",
                       best=1.0, description="MMBench CircularEval over answers found by VLMEvalKit's newer rule "
                                             "(the task maps it with options.secondary_extract)"))
register_metric(Metric("macro_accuracy", _macro_item, _macro_aggregate, stderr="bootstrap", best=1.0,
                       description="accuracy averaged without weights over groups (nested levels; the task "
                                   "names the fields with metric option `by`)"))

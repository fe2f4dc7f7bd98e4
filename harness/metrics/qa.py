"""Open-answer QA metrics: ANLS (DocVQA), relaxed accuracy (ChartQA), existence match (speech QA),
MMMU's open-answer match, and VSI-Bench's mean relative accuracy."""

from __future__ import annotations

from functools import partial
from typing import Any

from rapidfuzz.distance import Levenshtein

from harness.metrics.base import Metric, register_metric
from harness.metrics.text import mean


def _golds(target: Any) -> list[str]:
    return [str(t) for t in target] if isinstance(target, (list, tuple)) else [str(target)]


def anls_item(prediction: Any, target: Any, threshold: float = 0.5) -> float:
    """DocVQA ANLS per question as lmms-eval 0.5.x computes it (``api/metrics.anls``): the smallest over gold
    answers of Levenshtein distance (on lower-cased, whitespace-collapsed strings) / the longer RAW length
    (un-collapsed, as written), then 1 - that, zeroed only when BELOW the threshold (0.5 itself is kept)."""
    pred = str(prediction or "")
    ratios = []
    for gold in _golds(target):
        dist = Levenshtein.distance(" ".join(gold.strip().lower().split()), " ".join(pred.strip().lower().split()))
        length = max(len(gold.upper()), len(pred.upper()))
        ratios.append(0.0 if length == 0 else dist / length)
    score = 1.0 - min(ratios) if ratios else 0.0
    return 0.0 if score < threshold else score


def _to_float(text: str) -> float | None:
    """ChartQA's converter: ``float()`` (which tolerates surrounding white space), "12%" as 0.12."""
    try:
        return float(text.rstrip("%")) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        return None


def relaxed_item(prediction: Any, target: Any, tolerance: float = 0.05) -> float:
    """ChartQA ``relaxed_correctness`` (lmms-eval 0.5.x, from Qwen-VL): when both sides are numbers and the
    gold is non-zero, a relative error up to 5% counts; otherwise (a zero gold included: "0.0" against "0"
    fails) the strings must match ignoring case only, not surrounding space. Best over gold answers."""
    pred = str(prediction or "")
    for gold in _golds(target):
        p, g = _to_float(pred), _to_float(gold)
        if p is not None and g:
            if abs(p - g) / abs(g) <= tolerance:
                return 1.0
        elif pred.lower() == gold.lower():
            return 1.0
    return 0.0


def existence_item(prediction: Any, target: Any) -> float:
    """Speech QA (Table 9 of the paper): a gold answer string occurs in the response (case-insensitive)."""
    pred = str(prediction or "").lower()
    return float(any(g.lower() in pred for g in _golds(target) if g))


def mmmu_open_item(prediction: Any, target: Any) -> float:
    """MMMU ``eval_open``: a hit if any candidate equals a numeric gold, or contains a string gold."""
    from harness.extract.mmmu import normalize_answer

    preds = prediction if isinstance(prediction, list) else [prediction]
    golds = [n for g in _golds(target) for n in normalize_answer(g)]
    for p in preds:
        for g in golds:
            if isinstance(g, float) and isinstance(p, float) and p == g:
                return 1.0
            if isinstance(g, str) and isinstance(p, str) and g in p:
                return 1.0
    return 0.0


def mmmu_acc_item(prediction: Any, target: Any, question_type: str = "multiple-choice") -> float:
    """MMMU ``evaluate_mmmu`` per question: a choice must equal the gold letter exactly (``eval_multi_choice``);
    an open answer goes through ``eval_open`` with every parsed candidate (the official MMMU code)."""
    if question_type == "open":
        return mmmu_open_item(prediction, target)
    return float(prediction == target)


def mmmu_acc_lmms05_item(prediction: Any, target: Any, question_type: str = "multiple-choice") -> float:
    """As lmms-eval 0.5.x scores MMMU: its ``mmmu_process_results`` keeps only ``str(candidates[0])`` of an
    open answer and ``eval_open`` then walks that string character by character, so no open answer can
    match (lmms-eval PR #1471 fixed it in 2026). Multiple choice as the official code."""
    if question_type == "open":
        candidates = prediction if isinstance(prediction, list) else [prediction]
        return mmmu_open_item(list(str(candidates[0])) if candidates else [], target)
    return float(prediction == target)


def mathvista_item(prediction: Any, target: Any, question_type: str = "free_form", answer_type: str = "text",
                   choices: Any = None, precision: Any = None, precision_as_stored: bool = False) -> float:
    """MathVista: the extracted answer normalised to the question's type, then ``safe_equal`` (stripped string
    equality with the gold). See :func:`harness.extract.mathvista.normalize_mathvista` for the float quirk."""
    from harness.extract.mathvista import normalize_mathvista

    norm = normalize_mathvista(prediction, choices, question_type, answer_type, precision, precision_as_stored)
    return float(str(norm).strip() == str(target).strip())


def mathvision_item(prediction: Any, target: Any, options: Any = ()) -> float:
    """MathVision ``mathvision_standard_eval``: the extracted answer equals the gold, or the gold letter's option
    text (see :func:`harness.extract.mathvision.mathvision_correct`; needs ``latex2sympy2``)."""
    from harness.extract.mathvision import mathvision_correct

    return float(mathvision_correct(prediction, target, tuple(options or ())))


def judged_item(prediction: Any, target: Any) -> float:
    """A binary verdict the task already obtained (1/True right); the gold is only logged."""
    return float(prediction is True or prediction == 1)


def judged_grade_item(prediction: Any, target: Any) -> float:
    """The numeric grade the task already obtained from its judge, unchanged (a failed grading's -1 too, so
    averaging it in lowers the mean as CharXiv's reference does); the gold is only logged."""
    return float(prediction)


# VSI-Bench's thresholds 0.50, 0.55, ..., 0.95: ten points, hard-coded (the reference derives the count from
# (0.95 - 0.5) / 0.05 + 2, which gives 10 only through float rounding). The values are numpy.linspace's, so a
# relative error exactly on a boundary (e.g. 0.25 against 1 - 0.75) compares as in the reference.
MRA_THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95)


def mra_item(prediction: Any, target: Any) -> float:
    """VSI-Bench mean relative accuracy (paper-era lmms-eval ``mean_relative_accuracy``): the mean over theta of
    1[|y_hat - y| / y <= 1 - theta] (``<=``, as the code has it; the paper writes ``<``); non-numbers score 0."""
    try:
        p, y = float(prediction), float(target)
    except (TypeError, ValueError):
        return 0.0
    if y == 0:
        return float(p == 0)
    rel = abs(p - y) / abs(y)
    return sum(rel <= 1 - t for t in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)


def _verdict_item(prediction: Any, target: Any) -> dict[str, Any]:
    """A Video-ChatGPT-style verdict ``{"pred": bool, "score": int}`` (the task puts it in the prediction)."""
    verdict = prediction if isinstance(prediction, dict) else {}
    return {"pred": bool(verdict.get("pred")), "score": int(verdict.get("score") or 0)}


def _verdict_accuracy(items: Any) -> float:
    """Share of "yes" verdicts (Video-ChatGPT / lmms-eval ``activitynetqa_aggregate_accuracy``)."""
    return mean([float(item["pred"]) for item in items])


def _verdict_score(items: Any) -> float:
    """Mean 0-5 score over all verdicts (``activitynetqa_aggregate_score``)."""
    return mean([float(item["score"]) for item in items])


def iou(prediction: Any, target: Any) -> float:
    """Temporal IoU of two (start, end) spans; 0 for a missing prediction."""
    if not prediction:
        return 0.0
    (ps, pe), (gs, ge) = sorted(prediction), sorted(target)
    inter = max(0.0, min(pe, ge) - max(ps, gs))
    union = max(pe, ge) - min(ps, gs)
    return inter / union if union > 0 else 0.0


def recall_item(prediction: Any, target: Any, threshold: float = 0.5) -> float:
    return float(iou(prediction, target) >= threshold)


for metric in (
    Metric("anls", anls_item, mean, best=1.0, version="2",
           description="average normalised Levenshtein similarity (DocVQA; lmms-eval 0.5.x lengths and threshold)"),
    Metric("relaxed_accuracy", relaxed_item, mean, best=1.0, version="2",
           description="ChartQA relaxed correctness: numbers within 5% of a non-zero gold, else case-blind match"),
    Metric("existence_match", existence_item, mean, best=1.0, description="gold string occurs in the response"),
    Metric("mmmu_open_match", mmmu_open_item, mean, best=1.0, description="MMMU open-answer match"),
    Metric("mmmu_acc", mmmu_acc_item, mean, best=1.0, description="MMMU accuracy (official eval_open)"),
    # No `best`: with open questions present even a perfect model cannot reach 1 under this metric.
    Metric("mmmu_acc_lmms05", mmmu_acc_lmms05_item, mean,
           description="MMMU accuracy as lmms-eval 0.5.x computes it (open questions never match)"),
    Metric("mathvista_acc", mathvista_item, mean, best=1.0,
           description="MathVista accuracy, float answers rounded to their (integer) precision"),
    # No `best`: float answers can never match under the lmms-eval 0.5.x normalisation.
    Metric("mathvista_acc_lmms05", partial(mathvista_item, precision_as_stored=True), mean,
           description="MathVista accuracy as lmms-eval 0.5.x computes it (float answers never match)"),
    Metric("mathvision_acc", mathvision_item, mean, best=1.0,
           description="MathVision accuracy (lmms-eval 0.5.x mathvision_standard_eval: string, tuple, LaTeX value)"),
    Metric("judged_binary", judged_item, mean, best=1.0,
           description="share of samples a binary judge found correct (MathVerse gpt_eval_score)"),
    Metric("judged_grade", judged_grade_item, mean, best=1.0,
           description="mean of the grades a judge gave, as given (CharXiv: 1, 0, and -1 for a failed grading)"),
    Metric("mra", mra_item, mean, best=1.0, version="2",
           description="VSI-Bench mean relative accuracy (<= at the thresholds, as the reference code)"),
    Metric("miou", iou, mean, best=1.0, description="mean temporal IoU (Charades-STA)"),
    Metric("judge_accuracy", _verdict_item, _verdict_accuracy, stderr="bootstrap", best=1.0,
           sample_scores=lambda items: [float(i["pred"]) for i in items],
           description="Video-ChatGPT judged accuracy: share of 'yes' verdicts"),
    # No `best` for the score: tasks scale it by 1 (a 0-5 mean) while `validate` multiplies `best` by the
    # task's scale; tests check that the oracle reaches 5.
    Metric("judge_score", _verdict_item, _verdict_score, stderr="bootstrap",
           sample_scores=lambda items: [float(i["score"]) for i in items],
           description="Video-ChatGPT judged score: mean of the 0-5 scores"),
    Metric("recall_at_iou", recall_item, mean, best=1.0, description="R@IoU>=threshold (option `threshold`)"),
    # Charades-STA reports R@1 at IoU 0.3 / 0.5 / 0.7 next to mIoU: one named metric per threshold.
    *(Metric(f"recall_at_iou_{t}", partial(recall_item, threshold=t), mean, best=1.0, description=f"R@IoU>={t}")
      for t in (0.3, 0.5, 0.7)),
):
    register_metric(metric)

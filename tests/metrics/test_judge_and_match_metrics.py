"""Video-ChatGPT judge metrics (yes share, mean 0-5 score) and exact match against a list of gold answers."""

from __future__ import annotations

import pytest

from harness.metrics.base import get_metric
from harness.metrics.uncertainty import stderr_for


def test_judge_accuracy_and_score_aggregate_verdicts() -> None:
    acc, score = get_metric("judge_accuracy"), get_metric("judge_score")
    verdicts = [{"pred": True, "score": 4.8}, {"pred": False, "score": 1}, {"pred": True, "score": 5}, None]
    items = [acc.item(v, "gold") for v in verdicts]
    assert items[0] == {"pred": True, "score": 4}  # the reference keeps int(score)
    assert items[3] == {"pred": False, "score": 0}  # no verdict: no / 0
    assert acc.aggregate(items) == pytest.approx(0.5)
    assert score.aggregate(items) == pytest.approx((4 + 1 + 5 + 0) / 4)
    assert stderr_for(acc, items) == pytest.approx(stderr_for(get_metric("accuracy"), [1.0, 0.0, 1.0, 0.0]))


@pytest.mark.parametrize("prediction, golds, kwargs, expected", [
    ("Cat", ["dog", "cat"], {}, 1.0),
    ("a cat", ["dog", "cat"], {}, 0.0),
    ("a cat", ["dog", "cat"], {"normalize": "vqa"}, 1.0),
    ("horse", ["dog", "cat"], {}, 0.0),
    ("horse", [], {}, 0.0),
])
def test_exact_match_any_gold(prediction, golds, kwargs, expected) -> None:
    assert get_metric("exact_match").item(prediction, golds, **kwargs) == expected


def test_accuracy_ignores_case_unless_told_not_to() -> None:
    accuracy = get_metric("accuracy")
    assert accuracy.item(" b ", "B") == 1.0 and accuracy.item("c", "B") == 0.0 and accuracy.item(None, "B") == 0.0
    assert accuracy.item("b", "B", ignore_case=False) == 0.0 and accuracy.item(" B", "B", ignore_case=False) == 1.0

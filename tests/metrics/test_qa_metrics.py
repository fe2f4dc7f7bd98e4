"""Open-answer metrics against their protocols' definitions, on worked examples."""

from __future__ import annotations

import pytest

from harness.extract.base import ExtractContext, get_rule
from harness.metrics.base import get_metric


def item(name, pred, gold, **kw):
    return get_metric(name).item(pred, gold, **kw)


def test_anls_threshold_and_best_gold():
    assert item("anls", "Hello World", ["hello world"]) == 1.0
    assert item("anls", "helo world", ["hello world"]) == pytest.approx(1 - 1 / 11)
    assert item("anls", "abc", ["xyz"]) == 0.0  # distance above 0.5: zero, not 0.0-ish similarity
    assert item("anls", "cat", ["dog", "cats"]) == pytest.approx(0.75)


def test_anls_follows_lmms_eval_lengths_and_threshold():
    # a ratio of exactly 0.5 keeps its 0.5 (lmms-eval zeroes only scores BELOW the threshold)
    assert item("anls", "ab", ["abcd"]) == pytest.approx(0.5)
    # the distance uses collapsed white space, the length the raw strings: "a  b" is 4 long, distance 0 -> 1.0;
    # a gold with extra inner space and a one-letter slip: distance 1 over raw length 6
    assert item("anls", "a  b", ["a b"]) == 1.0
    assert item("anls", "x b c", ["a  b c"]) == pytest.approx(1 - 1 / 6)
    assert item("anls", "", [""]) == 1.0  # both empty: length 0 counts as distance 0


def test_relaxed_accuracy_lmms_eval_quirks():
    assert item("relaxed_accuracy", "0.0", "0") == 0.0  # a zero gold falls back to string comparison
    assert item("relaxed_accuracy", "0", "0") == 1.0
    assert item("relaxed_accuracy", "Yes ", "Yes") == 0.0  # strings: case-blind, but not space-blind
    assert item("relaxed_accuracy", " 101", "100") == 1.0  # float() itself tolerates the space
    assert item("relaxed_accuracy", "105", "100") == 1.0  # 5% exactly


def test_relaxed_accuracy_five_percent():
    assert item("relaxed_accuracy", "104", "100") == 1.0
    assert item("relaxed_accuracy", "106", "100") == 0.0
    assert item("relaxed_accuracy", "12%", "0.12") == 1.0
    assert item("relaxed_accuracy", "Yes", "yes") == 1.0


def test_mra_matches_the_vsibench_definition():
    assert item("mra", "10", "10") == 1.0
    # relative error 0.2 passes 1[0.2 <= 1 - theta] for theta = 0.50 .. 0.75 (1 - 0.8 is 0.19999...): 6 of 10
    assert item("mra", 12, 10) == pytest.approx(0.6)
    # on a boundary: 0.25 <= 1 - 0.75 holds (the reference code's <=; the paper's < would give 0.5)
    assert item("mra", "12.5", "10") == pytest.approx(0.6)
    assert item("mra", "15", "10") == pytest.approx(0.1)  # 0.5 <= 1 - 0.5 only
    assert item("mra", "1.55", "1") == pytest.approx(0.0)
    assert item("mra", "about ten", 10) == 0.0


def test_iou_metrics():
    assert item("miou", (2.0, 6.0), (4.0, 8.0)) == pytest.approx(2 / 6)
    assert item("recall_at_iou", (2.0, 6.0), (4.0, 8.0), threshold=0.3) == 1.0
    assert item("recall_at_iou", (2.0, 6.0), (4.0, 8.0), threshold=0.5) == 0.0
    assert item("miou", None, (1.0, 2.0)) == 0.0


def test_existence_and_mmmu_open():
    assert item("existence_match", "I think it is Paris, France.", ["paris"]) == 1.0
    preds = get_rule("mmmu_open")("Therefore, the answer is 42.0", ExtractContext())
    assert item("mmmu_open_match", preds, "42") == 1.0
    assert item("mmmu_open_match", get_rule("mmmu_open")("so it is blue", ExtractContext()), "red") == 0.0


def test_mmmu_acc_choices_exact_and_open_answers_official():
    assert item("mmmu_acc", "B", "B") == 1.0
    assert item("mmmu_acc", "b", "B") == 0.0  # eval_multi_choice: exact equality
    preds = get_rule("mmmu_open")("Therefore, the answer is 42.0", ExtractContext())
    assert item("mmmu_acc", preds, "42", question_type="open") == 1.0


def test_mmmu_acc_lmms05_never_credits_an_open_answer():
    for response, gold in [("Therefore, the answer is 42.0", "42"), ("hepatitis", "hepatitis"), ("a", "a")]:
        preds = get_rule("mmmu_open")(response, ExtractContext())
        assert item("mmmu_acc", preds, gold, question_type="open") == 1.0
        assert item("mmmu_acc_lmms05", preds, gold, question_type="open") == 0.0
    assert item("mmmu_acc_lmms05", "C", "C") == 1.0
    assert get_metric("mmmu_acc_lmms05").best is None  # a perfect model cannot reach 1 with open questions


def test_macro_accuracy_nests_unweighted_means():
    m = get_metric("macro_accuracy")
    # CV-Bench official: 1/2 * ((ADE20K + COCO)/2 + Omni3D)
    rows = [("2D", "ADE20K", "A", "A"), ("2D", "ADE20K", "B", "A"), ("2D", "COCO", "C", "C"),
            ("3D", "Omni3D", "A", "B"), ("3D", "Omni3D", "B", "B"), ("3D", "Omni3D", "C", "C")]
    items = [m.item(p, t, groups=(a, b)) for a, b, p, t in rows]
    assert m.aggregate(items) == pytest.approx(0.5 * ((0.5 + 1.0) / 2 + 2 / 3))
    flat = [m.item(p, t, groups=(b,)) for _, b, p, t in rows]
    assert m.aggregate(flat) == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    assert m.aggregate([m.item("a", "A"), m.item("b", "C")]) == 0.5  # no groups: plain mean, case-insensitive

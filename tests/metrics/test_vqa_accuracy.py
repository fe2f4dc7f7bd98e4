"""VQA accuracy against expected values worked out by hand from the official script's rules.

Each row says which rule produces the expected output, so a reader can re-derive it without running code.
"""

from __future__ import annotations

import pytest

from harness.metrics.base import get_metric
from harness.metrics.vqa import normalize_vqa_answer, process_punctuation

NORMALISATION = [
    # (answer, expected, why)
    ("Yes.", "yes", "a period not followed by a digit is deleted; lower-cased"),
    ("3.5", "3.5", "a period followed by a digit stays"),
    ("5.", "5", "trailing period: nothing follows, so it is deleted"),
    (".5", ".5", "a digit follows the period"),
    ("Two dogs", "2 dogs", "number words zero..ten become digits"),
    ("none", "0", "'none' is in the number map"),
    ("eleven", "eleven", "only zero..ten are mapped"),
    ("The cat", "cat", "articles a/an/the are dropped after lower-casing"),
    ("the the", "", "every article goes, even all of the answer"),
    ("dont", "don't", "contraction table: apostrophe-less key"),
    ("wont", "won't", "contraction table"),
    ("couldnt've", "couldn't've", "two-apostrophe forms: a key with one apostrophe missing"),
    ("couldntve", "couldntve", "...but not with both missing"),
    ("Im", "im", "the table's key is 'Im' but lookup happens after lower-casing: never fires"),
    ("somebody'd", "somebodyd", "the one backwards entry of the official table"),
    ("it's", "it's", "the apostrophe is not in the punctuation list; 'it's' is no key"),
    ("oclock", "o'clock", "contraction table"),
    ("1,000", "1000", "a digit,digit group anywhere deletes every punctuation mark"),
    ("1,000 - 2,000", "1000 2000", "same rule deletes the dash; the double space collapses on split"),
    ("red, white", "red white", "a mark touching a space is deleted"),
    ("red,white", "red white", "a mark touching no space becomes a space"),
    ("black-and-white", "black and white", "'-' touching no space becomes a space"),
    ("t - shirt", "t shirt", "'-' touching a space is deleted"),
    ("How's it?", "how's it", "'?' becomes a space; 'how's' is a value, not a key"),
    ("12:30", "12:30", "the colon is not in the punctuation list"),
    ("(a)", "", "brackets become spaces, then 'a' is an article"),
    ("U.S.A.", "usa", "every period is deleted (no digit follows any)"),
    ("Mr. Smith", "mr smith", "period deleted, lower-cased"),
    ("\tYes\n", "yes", "tabs and newlines become spaces, then strip"),
    ("x" + "." * 33, "x.", "at most 32 periods are deleted (re.UNICODE passed as count)"),
]


@pytest.mark.parametrize("answer,expected,why", NORMALISATION, ids=[r[0] for r in NORMALISATION])
def test_official_normalisation(answer, expected, why):
    assert normalize_vqa_answer(answer) == expected, why


def test_punctuation_conditions_read_the_input_not_the_running_output():
    # ", " is in the input, so "," is deleted everywhere, including in "b,c" where it touches no space
    assert process_punctuation("a, b,c") == "a bc"


def acc(pred, golds, **kw):
    return get_metric("vqa_accuracy").item(pred, golds, **kw)


def ten(*counts):
    """Ten human answers from (answer, how many) pairs."""
    out = [a for a, n in counts for _ in range(n)]
    assert len(out) == 10
    return out


ACCURACY = [
    # (prediction, human answers, expected, why)
    ("yes", ten(("yes", 10)), 1.0, "10 matches: each 9-subset has 9 >= 3"),
    ("Yes", ten(("yes", 10)), 0.0, "all humans agree: no normalisation at all, 'Yes' != 'yes'"),
    ("two", ten(("2", 10)), 0.0, "same quirk: digit words are only mapped when the humans disagree"),
    ("two", ten(("2", 3), ("3", 7)), 0.9,
     "humans disagree so 'two' -> '2', 3 matches: leaving out one of the 3 leaves 2 (2/3), one of the 7 leaves 3"),
    ("cat", ten(("cat", 1), ("dog", 9)), 0.3, "1 match: 0 when its giver is left out, else 1/3 -> 9/3/10"),
    ("cat", ten(("cat", 2), ("dog", 8)), 0.6, "2 matches: 2 x 1/3 + 8 x 2/3 = 6, over 10"),
    ("cat", ten(("cat", 4), ("dog", 6)), 1.0, "4 matches: every subset keeps >= 3"),
    ("bird", ten(("cat", 4), ("dog", 6)), 0.0, "no match"),
    ("A dog.", ten(("the dog", 3), ("dog", 2), ("a dog", 1), ("puppy", 4)), 1.0,
     "humans disagree, so both sides are normalised: 6 answers become 'dog'"),
    ("1,000", ten(("1000", 5), ("1,000", 5)), 1.0, "'1,000' loses its comma on both sides: 10 matches"),
    ("cat", ["cat", "dog"], 1 / 6, "two answers: leave out 'cat' -> 0, leave out 'dog' -> 1/3; mean 1/6"),
    ("yes", ten(("yes ", 10)), 1.0, "human answers are stripped before comparison"),
]


@pytest.mark.parametrize("pred,golds,expected,why", ACCURACY, ids=[f"{r[0]}-{r[2]:.3f}" for r in ACCURACY])
def test_official_accuracy(pred, golds, expected, why):
    assert acc(pred, golds) == pytest.approx(expected), why


def test_always_normalize_lifts_the_unanimous_quirk():
    assert acc("Yes", ten(("yes", 10)), always_normalize=True) == 1.0
    assert acc("two", ten(("2", 10)), always_normalize=True) == 1.0


def test_single_gold_answer_is_refused_with_a_pointer():
    with pytest.raises(ValueError, match="exact_match"):
        acc("cat", "cat")


def test_exact_match_can_use_the_vqa_normalisation():
    em = get_metric("exact_match")
    assert em.item("Two dogs", "2 dogs") == 0.0  # default behaviour unchanged
    assert em.item("Two dogs.", "2 dogs", normalize="vqa") == 1.0
    assert em.item("the dont", "don't", normalize="vqa") == 1.0
    with pytest.raises(ValueError):
        em.item("a", "a", normalize="squad")


def test_aggregate_is_the_mean_over_questions():
    m = get_metric("vqa_accuracy")
    items = [m.item("cat", ten(("cat", 10))), m.item("cat", ten(("cat", 1), ("dog", 9)))]
    assert m.aggregate(items) == pytest.approx(0.65)

"""ASR cleaning against lmms-eval 0.5.0 (tag v0.5 @ 8f142bc) ``tasks/librispeech/utils.py``: ``remove_sp`` and
the English branch of ``compute_wer`` (shared by LibriSpeech, Common Voice, FLEURS, MLS and VoxPopuli here).

The ``reference_*`` functions are a TRANSCRIPTION of that code, kept in this test only as an independent
oracle. The normalisers are Whisper's (the reference vendors the same ``whisper_normalizer`` classes); the
sacreBLEU ``none`` tokenizer is the identity. Our per-utterance (edits, words) must equal the reference's.
"""

from __future__ import annotations

import re
import unicodedata

import pytest
from rapidfuzz.distance import Levenshtein
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

from harness.api import Response
from harness.metrics.asr_zh import normalize_chinese
from harness.metrics.base import get_metric
from tests.tasks.helpers import answer_all, load_task

PUNCS = "!,.?;:"
ENGLISH, BASIC = EnglishTextNormalizer(), BasicTextNormalizer()


def reference_remove_sp(text: str, language: str) -> str:
    gt = re.sub(r"<\|.*?\|>", " ", text)
    gt = re.sub(r"\s+", r" ", gt)
    gt = re.sub(f" ?([{PUNCS}])", r"\1", gt)
    gt = gt.lstrip(" ")
    if language == "zh":
        gt = re.sub(r"\s+", r"", gt)
    return gt


def reference_remove_punctuation(sent: str) -> str:
    """EvaluationTokenizer.remove_punctuation: drop space-separated tokens made only of Unicode P characters."""
    return " ".join(t for t in sent.split(" ") if not all(unicodedata.category(c)[0] == "P" for c in t))


def reference_items(text: str) -> list[str]:
    """remove_sp(.., "en"), then compute_wer's English path: English normaliser, then (the if/else lets it
    run) the basic one, the none tokenizer, punctuation removal, lower-casing, split."""
    text = BASIC(ENGLISH(reference_remove_sp(text, "en")))
    return reference_remove_punctuation(text).lower().split()


def reference_edits(gt: str, pred: str) -> tuple[int, int]:
    ref, hyp = reference_items(gt), reference_items(pred)
    return Levenshtein.distance(ref, hyp), len(ref)  # editdistance.eval on token lists


GOLD = "HE WAS NOT AN ILL DISPOSED YOUNG MAN"
HYPOTHESES = [
    "He was not an ill disposed young man.", "He was not an ill-disposed young man",
    "He was not an ill dis<|notimestamps|>posed young man", "<|en|><|transcribe|>He was not an ill disposed young man",
    "He was<|0.00|>not an ill disposed young man", "He was not an ill disposed young man<|endoftext|>",
    "He was not an ill disposed young man ... !", "He was not an ill disposed young man \u2014 \u00bbindeed\u00ab",
    "He wasn't an ill disposed young man", "He was not an ill disposed young man , , ;", "", "   ",
    "he  was\tnot\nan ill disposed young man", "<|a|>", "HE WAS NOT AN ILL DISPOSED YOUNG MAN $5",
    "Mr. Dashwood was not an ill disposed young man", "He was 2 ill disposed young men",
]


@pytest.mark.parametrize("hypothesis", HYPOTHESES)
def test_per_utterance_edits_equal_the_reference(hypothesis: str) -> None:
    assert get_metric("wer").item(hypothesis, GOLD) == reference_edits(GOLD, hypothesis)


def test_a_tag_inside_a_word_splits_it() -> None:
    """"dis<|x|>posed" is two words for the reference (the tag becomes a space): two edits, not zero."""
    edits, words = get_metric("wer").item("He was not an ill dis<|notimestamps|>posed young man", GOLD)
    assert (edits, words) == reference_edits(GOLD, "He was not an ill dis<|notimestamps|>posed young man") == (2, 8)


def test_tags_in_the_gold_are_cleaned_the_same_way() -> None:
    gold = "<|en|>HE WAS NOT<|0.00|>AN ILL DISPOSED YOUNG MAN"
    assert get_metric("wer").item(GOLD, gold) == reference_edits(gold, GOLD) == (0, 8)


def test_corpus_wer_of_a_task_equals_the_reference() -> None:
    task = load_task("librispeech_test_clean")
    responses = iter(HYPOTHESES)
    samples = answer_all(task, lambda doc: Response(text=next(responses)))
    edits = [reference_edits(str(s.target), str(s.response.text)) for s in samples]
    expected = 100 * sum(e for e, _ in edits) / sum(n for _, n in edits)
    assert task.aggregate(samples)["wer"].value == pytest.approx(expected)


def test_chinese_removes_spaces_before_reading_numbers() -> None:
    """remove_sp(.., "zh") deletes every space (tags become spaces first) before cn_tn reads numbers, so
    "1 2" and "1<|x|>2" are the number 12, as "12" is."""
    assert reference_remove_sp("1 2", "zh") == reference_remove_sp("1<|x|>2", "zh") == "12"
    assert normalize_chinese("1 2") == normalize_chinese("1<|x|>2") == normalize_chinese("12")

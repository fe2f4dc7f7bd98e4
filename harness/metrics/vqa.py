"""VQA accuracy with the answer normalisation of the official VQA v2 evaluation script.

The official script (GT-Vision-Lab ``vqaEval.py``, 2021 revision) and EvalAI's answer processor, which
lmms-eval 0.5.0 uses for ``vqav2`` (``tasks/_task_utils/vqa_eval_metric.py``), score an answer against the 10
human answers as the mean, over the 10 leave-one-out subsets of 9 answers, of ``min(1, matches / 3)``.
Their quirks are part of the protocol and are kept:

- answers are stripped and have newlines/tabs turned into spaces; in the official script the full
  normalisation (punctuation, digit words, articles, contractions) runs **only when the human answers are
  not all identical**: if all 10 say ``"2"``, ``"two"`` scores 0; lmms-eval always normalises
  (``always_normalize=True``);
- punctuation is deleted when it touches a space or when the text has a digit, a run of commas and a digit
  anywhere (EvalAI's ``(?<=\d)(\,)+(?=\d)``: ``1,,2`` counts as ``1,2`` does; the official script's
  ``(\d)(\,)(\d)`` wants exactly one comma), and replaced by a space otherwise; the apostrophe and the
  colon are not punctuation here;
- a period is deleted unless a digit follows (the look-behind in the original regex is a typo for a
  look-ahead that never fires), at most 32 times (``re.UNICODE`` was passed as the ``count`` argument);
- ``none``/``zero``..``ten`` become digits, ``a``/``an``/``the`` are dropped, then the contractions
  table is applied word by word after lower-casing, so its capitalised keys (``Im``, ``Ive``) never fire
  and one entry runs backwards (``somebody'd`` becomes ``somebodyd``).
"""

from __future__ import annotations

import re
from typing import Any

from harness.metrics.base import Metric, register_metric
from harness.metrics.text import mean

_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?",
          "!")
_DIGITS_AROUND_COMMAS = re.compile(r"\d,+\d")
_PERIOD_NOT_BEFORE_DIGIT = re.compile(r"\.(?!\d)")
_MAX_PERIODS = 32  # re.UNICODE == 32, passed positionally as `count` in the official script
_NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
_ARTICLES = frozenset({"a", "an", "the"})

# Canonical forms of the official contractions table. Its keys are the canonical form with the apostrophe
# dropped (one apostrophe) or with any one of the apostrophes dropped (two or more: "couldn'tve" and
# "couldnt've" map to "couldn't've", but "couldntve" is not a key). Keys keep the canonical letter case.
_CANONICAL = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't haven't
he'd he'd've he's how'd how'll how's I'd've I'm I've isn't it'd it'd've it'll ma'am mightn't mightn't've
might've mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've shouldn't
shouldn't've somebody'd've somebody'll somebody's someone'd someone'd've someone'll someone's
something'd something'd've something'll that's there'd there'd've there're there's they'd they'd've
they'll they're they've 'twas wasn't we'd've we've weren't what'll what're what's what've when's where'd
where's where've who'd who'd've who'll who's who've why'll why're why's won't would've wouldn't
wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll you're you've
""".split()


def _contractions() -> dict[str, str]:
    table: dict[str, str] = {}
    for form in _CANONICAL:
        cuts = [i for i, c in enumerate(form) if c == "'"]
        if len(cuts) == 1:
            table[form.replace("'", "")] = form
        else:
            for i in cuts:
                table[form[:i] + form[i + 1:]] = form
    table["somebody'd"] = "somebodyd"  # backwards in the official table; kept for fidelity
    return table


CONTRACTIONS = _contractions()


def process_punctuation(text: str) -> str:
    """The official ``processPunctuation`` (conditions are tested on the input, not the running output)."""
    out = text
    strip_all = _DIGITS_AROUND_COMMAS.search(text) is not None
    for p in _PUNCT:
        if strip_all or p + " " in text or " " + p in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_NOT_BEFORE_DIGIT.sub("", out, count=_MAX_PERIODS)


def process_digit_article(text: str) -> str:
    """The official ``processDigitArticle``: lower-case, number words to digits, no articles, contractions."""
    words = [_NUMBER_WORDS.get(w, w) for w in text.lower().split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in _ARTICLES)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_vqa_answer(text: str) -> str:
    """An answer as the official script compares it when the human answers disagree."""
    return process_digit_article(process_punctuation(_clean(text)))


def vqa_accuracy_item(prediction: Any, target: Any, always_normalize: bool = False) -> float:
    """Official VQA accuracy of one answer against the human answers (usually 10)."""
    golds = [_clean(str(t)) for t in (target if isinstance(target, (list, tuple)) else [target])]
    if len(golds) < 2:
        # leave-one-out over a single answer leaves nothing to match: the official formula gives 0 always
        raise ValueError("vqa_accuracy needs the list of human answers (10 in VQA v2); for one gold answer "
                         "use exact_match with normalize='vqa'")
    pred = _clean(str(prediction or ""))
    if always_normalize or len(set(golds)) > 1:
        golds = [process_digit_article(process_punctuation(g)) for g in golds]
        pred = process_digit_article(process_punctuation(pred))
    matches = [g == pred for g in golds]
    total = sum(matches)
    # leave-one-out over annotators: dropping annotator i leaves total - matches[i] agreeing answers
    return sum(min(1.0, (total - m) / 3.0) for m in matches) / len(golds)


register_metric(Metric("vqa_accuracy", vqa_accuracy_item, mean, best=1.0, version="1",
                       description="official VQA v2 accuracy: mean over 10-choose-9 of min(1, matches/3)"))

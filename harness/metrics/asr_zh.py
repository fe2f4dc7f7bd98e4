"""Chinese character error rate (AISHELL, FLEURS-zh, Common Voice zh), corpus-level.

The paper-era lmms-eval scores Chinese ASR with ``cn_tn.TextNorm`` (numbers read out as Chinese
characters, Chinese and ASCII punctuation removed) and character tokens; its "WER" column is a CER.
``cn_tn`` is a script, not a package, so we normalise with the pieces pip has offline, in this order:

1. replace ``<|...|>`` tags (Whisper-style special tokens) with a space and then delete every space, as the
   reference's ``remove_sp(text, "zh")`` does before any normalisation (so ``1 2`` is read as ``12``);
2. full-width to half-width (U+FF01..U+FF5E shift to ASCII, the ideographic space to a space), as
   ``cn_tn``'s ``to_banjiao``; then lower-case;
3. numbers to Chinese characters with ``cn2an`` (cardinals, decimals, percentages, fractions, dates:
   ``3个`` -> ``三个``, ``50%`` -> ``百分之五十``, ``2019年`` -> ``二零一九年``) after deleting thousands
   separators; runs of 7 or more digits (phone numbers, ids) are read digit by digit, as ``cn_tn`` does;
4. remove punctuation (Unicode category P, plus ASCII punctuation) and any space left.

Known differences from ``cn_tn``: no money/measure verbalisation (``¥5`` keeps its symbol out, ``5`` is
read as ``五``), 4-6 digit bare numbers read as cardinals rather than digit by digit, and Latin words are
split into letters (a pure CER) where lmms-eval's sacreBLEU ``zh`` tokenizer keeps them as one token.
CER = total character edits / total reference characters over the corpus, never a mean of rates.
"""

from __future__ import annotations

import re
import string
import unicodedata
import warnings
from typing import Any, Sequence

from rapidfuzz.distance import Levenshtein

from harness.metrics.base import Metric, register_metric
from harness.optional import require

_TAG = re.compile(r"<\|.*?\|>")
_FULL_TO_HALF = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_LONG_DIGITS = re.compile(r"(?<![\d.])\d{7,}(?![\d.])")
_DIGIT_CHARS = dict(zip("0123456789", "零一二三四五六七八九"))
_ASCII_PUNCT = frozenset(string.punctuation)


def _cn2an():
    return require("cn2an", "cn2an", "cer_zh (it reads numbers out in Chinese)")


def _numbers_to_chinese(text: str) -> str:
    text = _THOUSANDS.sub("", text)
    text = _LONG_DIGITS.sub(lambda m: "".join(_DIGIT_CHARS[d] for d in m.group()), text)
    if not any(c.isdigit() for c in text):
        return text
    with warnings.catch_warnings():  # cn2an warns (and leaves the digits) on numbers beyond 16 digits
        warnings.simplefilter("ignore")
        return _cn2an().transform(text, "an2cn")


def _is_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_chinese(text: str, numbers: bool = True) -> str:
    """The text as CER compares it: one character per token, no punctuation, no spaces."""
    text = re.sub(r"\s+", "", _TAG.sub(" ", text or "")).translate(_FULL_TO_HALF).lower()
    if numbers:
        text = _numbers_to_chinese(text)
    return "".join(c for c in text if not c.isspace() and not _is_punct(c))


def cer_zh_item(prediction: Any, target: Any, numbers: bool = True) -> tuple[int, int]:
    """(character edits, reference characters) for one utterance."""
    ref = normalize_chinese(str(target), numbers=numbers)
    hyp = normalize_chinese(str(prediction or ""), numbers=numbers)
    return Levenshtein.distance(ref, hyp), len(ref)


def corpus_cer(items: Sequence[tuple[int, int]]) -> float:
    chars = sum(n for _, n in items)
    return sum(e for e, _ in items) / chars if chars else 0.0


register_metric(Metric("cer_zh", cer_zh_item, corpus_cer, higher_is_better=False, stderr="bootstrap", best=0.0,
                       version="1",
                       description="corpus CER for Chinese ASR, cn_tn-style normalisation (cn2an numbers)"))

"""Speech-recognition error rates, following the LibriSpeech protocol of the paper-era lmms-eval.

Normalisation (lmms-eval 0.5.0 ``tasks/librispeech/utils.py``, ``remove_sp`` + ``compute_wer``): replace
``<|...|>`` tags with a space (so a tag inside a word splits it) and collapse spaces, apply Whisper's
English normaliser and then the basic normaliser (the reference's if/else lets both run), tokenise as
sacreBLEU's ``none`` tokenizer does with lower-casing and punctuation tokens (every character in a Unicode
P category) removed, split on spaces.
WER is corpus-level: total edits over total reference words, never a mean of per-utterance rates.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from typing import Any, Sequence

from rapidfuzz.distance import Levenshtein

from harness.metrics.base import Metric, register_metric

_TAG = re.compile(r"<\|.*?\|>")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:])")


@functools.cache
def _normalizers():
    from whisper_normalizer.basic import BasicTextNormalizer
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer(), BasicTextNormalizer()


def normalize_english(text: str) -> list[str]:
    """LibriSpeech-protocol word tokens of ``text``."""
    english, basic = _normalizers()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", re.sub(r"\s+", " ", _TAG.sub(" ", text or ""))).strip()
    text = basic(english(text)).lower()
    return [tok for tok in text.split() if not all(unicodedata.category(ch).startswith("P") for ch in tok)]


def _wer_item(prediction: Any, target: Any) -> tuple[int, int]:
    """(word edits, reference words) for one utterance."""
    hyp, ref = normalize_english(str(prediction or "")), normalize_english(str(target))
    return Levenshtein.distance(ref, hyp), len(ref)


def _corpus_rate(items: Sequence[tuple[int, int]]) -> float:
    words = sum(n for _, n in items)
    return sum(e for e, _ in items) / words if words else 0.0


register_metric(Metric("wer", _wer_item, _corpus_rate, higher_is_better=False, stderr="bootstrap", best=0.0,
                       description="corpus WER, LibriSpeech protocol normalisation (Whisper English + basic)"))


# ---- Seed-TTS-eval convention for speech generation: per-utterance WER of an ASR transcript, averaged
# (BytedanceSpeech/seed-tts-eval run_wer.py + average_wer.py): every punctuation mark of zhon's hanzi set and of
# string.punctuation except the ASCII apostrophe is deleted (not replaced by a space, so "well-known" becomes
# "wellknown"), English is lower-cased and split on white space, Chinese is split into characters (white space
# dropped, so Latin words inside Chinese text count letter by letter); no number or spelling normalisation
# ("twenty" vs "20" is an error). Each utterance's rate is edits / reference tokens; the score is their mean.


@functools.cache
def _tts_punctuation() -> frozenset[str]:
    from harness.optional import require

    hanzi = require("zhon.hanzi", "zhon", "wer_mean (Seed-TTS punctuation set)").punctuation
    return frozenset((hanzi + string.punctuation).replace("'", ""))


def tts_tokens(text: str, lang: str = "en") -> list[str]:
    """The tokens run_wer.py scores: punctuation deleted; English lower-cased words, Chinese characters."""
    punct = _tts_punctuation()
    text = "".join(ch for ch in (text or "") if ch not in punct)
    if lang == "en":
        return text.lower().split()
    if lang == "zh":
        return [ch for ch in text if not ch.isspace()]
    raise ValueError(f"wer_mean: lang must be 'en' or 'zh', got {lang!r}")


def tts_words(text: str) -> list[str]:
    """English tokens of the Seed-TTS convention (kept for callers of the first version)."""
    return tts_tokens(text, "en")


def _tts_wer_item(prediction: Any, target: Any, lang: str = "en") -> float:
    ref = tts_tokens(str(target), lang)
    return Levenshtein.distance(ref, tts_tokens(str(prediction or ""), lang)) / max(1, len(ref))


register_metric(Metric("wer_mean", _tts_wer_item, lambda xs: sum(xs) / len(xs), higher_is_better=False, best=0.0,
                       version="2",
                       description="mean per-utterance WER/CER (Seed-TTS-eval run_wer.py), option lang: en | zh"))

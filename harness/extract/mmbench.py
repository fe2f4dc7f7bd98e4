"""MMBench answer inference: the rule stage (two generations of it) and the protocol's seeded random fallback.

Two rules find an option letter in a response before a judge or a random letter is needed:

- ``mmbench_lmms05``: the paper-era rule, lmms-eval 0.5.0 ``tasks/mmbench/mmbench_evals.py``
  (``MMBench_Evaluator.can_infer_option`` then ``can_infer_text``), which the Uni-MoE authors ran;
- ``mmbench_vlmevalkit``: VLMEvalKit's newer ``can_infer_option`` / ``can_infer_text`` (punctuation padded
  into spaces, letters limited to the question's options, refusals rejected), kept as a secondary reading.

Both return None when they cannot decide; the task then asks a judge (if configured) and finally draws the
seeded random letter.
"""

from __future__ import annotations

import math
import random
from typing import Any, Iterable, Mapping

from harness.extract.base import ExtractContext, register_rule

MMBENCH_SEED = 2680

# ---- lmms-eval 0.5.0 (the paper-era primary)

_LMMS05_LETTERS = "ABCDE"  # can_infer_option's default num_choice=5, whatever the question's option count
_LMMS05_TEXT_LETTERS = "ABCD"  # build_choices reads the columns A-D only
_LMMS05_API_FAILURE = "Failed to obtain answer via API"
# (prefix, suffix) forms tried in this order after the bare letter; the first form with exactly one hit wins
_LMMS05_AFFIXES = (("", "."), ("", ","), ("", ":"), ("", ")"), ("", ")."), ("(", ")"), ("(", ")."), (":", ""),
                   (":", ","), (":", "."), (":", ")"), (":", ")."))


def can_infer_option_lmms05(answer: str) -> str | None:
    """The letter among A-E that is a whole whitespace-separated word, if exactly one such letter occurs and
    the quantifier guard does not fire (an "A" among more than 3 words skips this pass); else the first affix
    form (``X.``, ``(X)``, ``:X)`` ...) in which exactly one letter occurs as a whole word. No refusal check."""
    if _LMMS05_API_FAILURE in answer:
        return None
    words = answer.split()
    bare = [c for c in _LMMS05_LETTERS if c in words]
    if len(bare) == 1 and not ("A" in words and len(words) > 3):
        return bare[0]
    for prefix, suffix in _LMMS05_AFFIXES:
        hits = [c for c in _LMMS05_LETTERS if prefix + c + suffix in words]
        if len(hits) == 1:
            return hits[0]
    return None


def _is_missing(value: Any) -> bool:
    """pandas.isna for a table cell: None and float NaN (the string "nan" is NOT missing there)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def lmms05_text_choices(doc: Mapping[str, Any]) -> dict[str, str]:
    """``build_choices``: the cells A-D that pandas does not see as missing, as strings (so a stored "nan"
    is an option text here, as in the reference)."""
    return {c: str(doc[c]) for c in _LMMS05_TEXT_LETTERS if not _is_missing(doc.get(c))}


def can_infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """Exactly one option's text occurs in the answer (case-insensitive)."""
    answer = answer.lower()
    hits = [k for k, v in choices.items() if str(v).lower() in answer]
    return hits[0] if len(hits) == 1 else None


@register_rule("mmbench_lmms05", "1")
def mmbench_lmms05(response: str, ctx: ExtractContext) -> str | None:
    """lmms-eval 0.5.0 ``can_infer``: ``can_infer_option_lmms05``, then a unique option text among the doc's
    cells A-D; None when neither decides."""
    return can_infer_option_lmms05(response) or can_infer_text(response, lmms05_text_choices(ctx.doc))


# ---- VLMEvalKit (the newer rule, kept as a secondary reading)

_VLMEVALKIT_REJECT = ("Sorry,", "I cannot", "I can't", "I apologize")  # refusals: the answer is no option


def can_infer_option_vlmevalkit(answer: str, choices: Mapping[str, str]) -> str | None:
    """Exactly one standalone option letter (also in the forms ``A.`` ``A,`` ``A:`` ``A)`` ``(A)`` ``:A``)."""
    if any(marker in answer for marker in _VLMEVALKIT_REJECT):
        return None
    padded = answer
    for ch in ".()[],:;!*#{}":
        padded = padded.replace(ch, " ")
    found = [w for w in padded.split() if w in choices]
    return found[0] if len(found) == 1 else None


@register_rule("mmbench_vlmevalkit", "1")
def mmbench_vlmevalkit(response: str, ctx: ExtractContext) -> str | None:
    """VLMEvalKit ``can_infer``: ``can_infer_option_vlmevalkit``, then a unique option text among the
    question's options; None when neither decides."""
    choices = dict(ctx.options)
    return can_infer_option_vlmevalkit(response, choices) or can_infer_text(response, choices)


def mmbench_random_letter(columns: Iterable[str], doc_key: str = "") -> str:
    """The protocol's last resort (lmms-eval 0.5.0 ``extract_answer_from_item``): a random letter over the
    option COLUMNS the row has among A-D (every MMBench row has all four, empty or not, so usually A-D) plus
    the always-wrong "E". The RNG is seeded with 2680 per question, so a draw does not depend on order (the
    reference seeds one global RNG for the whole run)."""
    letters = [c for c in "ABCD" if c in set(columns)] + ["E"]
    return random.Random(f"{MMBENCH_SEED}:{doc_key}").choice(letters)

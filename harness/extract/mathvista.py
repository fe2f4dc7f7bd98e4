"""MathVista (lmms-eval 0.5.x ``tasks/mathvista``): the rule part of answer extraction and the normalisation
that turns an extracted answer into the form compared with the gold.

Extraction in the reference: an empty response gives ""; a multiple-choice response that IS one of the choices,
or a response that parses as the answer type (``int()`` for integers, ``float()`` for floats), is taken as it
is; everything else goes to the GPT extractor (``quick_extract`` is off). The rule returns ``None`` for those,
so the task can ask its judge, or mark the sample as needing one.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rapidfuzz.distance import Levenshtein

from harness.extract.base import ExtractContext, register_rule


@register_rule("mathvista", "1")
def mathvista(response: str, ctx: ExtractContext) -> str | None:
    """The answer when no LLM is needed (see the module docstring); ``None`` when it is."""
    text = (response or "").strip()
    doc = ctx.doc
    if not text:
        return ""
    if doc.get("question_type") == "multi_choice" and text in (doc.get("choices") or []):
        return text
    if doc.get("answer_type") == "integer":
        try:
            return str(int(text))
        except ValueError:
            pass
    if doc.get("answer_type") == "float":
        try:
            return str(float(text))
        except ValueError:
            pass
    return None


_PAREN_LETTER = re.compile(r"\(([a-zA-Z])\)")


def normalize_mathvista(extraction: Any, choices: Sequence[str] | None, question_type: str, answer_type: str,
                        precision: Any, precision_as_stored: bool = True) -> str | None:
    """``normalize_extracted_answer``. Multiple choice: "(b) ..." -> "B"; a letter becomes its choice, anything
    else the choice nearest in Levenshtein distance (the first of equals, so "" picks the shortest). Integer:
    ``int(float(x))``. Float: ``round(float(x), precision)``; the hub stores ``precision`` as float64 and
    ``round`` refuses a float count of digits, so with ``precision_as_stored`` (lmms-eval 0.5.x) every float
    answer becomes None and never matches; otherwise the precision is used as the integer it means."""
    if question_type == "multi_choice":
        text = extraction.strip() if isinstance(extraction, str) else str(extraction)
        letters = _PAREN_LETTER.findall(text)
        if letters:
            text = letters[0].upper()
        choices = list(choices or [])
        options = [chr(ord("A") + i) for i in range(len(choices))]
        if text in options:
            return choices[options.index(text)]
        distances = [Levenshtein.distance(text, c) for c in choices]
        return choices[distances.index(min(distances))] if choices else None
    if answer_type == "integer":
        try:
            return str(int(float(extraction)))
        except (TypeError, ValueError, OverflowError):
            return None
    if answer_type == "float":
        digits = precision if precision_as_stored or precision is None else int(precision)
        try:
            return str(round(float(extraction), digits))
        except (TypeError, ValueError, OverflowError):
            return None
    if answer_type == "list":
        return str(extraction)
    return extraction

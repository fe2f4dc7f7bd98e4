"""MMMU's official answer parsers (``parse_multi_choice_response``, ``parse_open_response``), which lmms-eval
also uses for MMMU-Pro (options A-J)."""

from __future__ import annotations

import random
import re
from typing import Any

from harness.extract.base import ExtractContext, register_rule


@register_rule("mmmu_mcq", "1")
def mmmu_mcq(response: str, ctx: ExtractContext) -> str:
    """``(A)``, then ``A `` with a space, then ``A.``; for responses over 5 words, option text; several
    candidates: the LAST occurrence; none: a random letter. The random draw uses an RNG seeded by (run seed,
    question id), not the global one, so it does not depend on evaluation order (documented deviation)."""
    choices = list(ctx.options)
    for ch in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(ch)
    response = f" {response} "
    by_bracket = [c for c in choices if f"({c})" in response]
    candidates = by_bracket or [c for c in choices if f"{c} " in response] or [c for c in choices if f"{c}." in response]
    by_text = False
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, text in ctx.options.items() if text and text.lower() in response.lower()]
        by_text = bool(candidates)
    if not candidates:
        key = ctx.doc.get("id", ctx.doc.get("question_id", ""))
        return random.Random(f"{ctx.seed}:{key}").choice(choices) if choices else ""
    if len(candidates) == 1:
        return candidates[0]
    if by_text:
        starts = [response.lower().rfind(ctx.options[c].lower()) for c in candidates]
    elif by_bracket:
        starts = [response.rfind(f"({c})") for c in candidates]
    else:
        starts = [response.rfind(f" {c} ") for c in candidates]
    return candidates[max(range(len(candidates)), key=starts.__getitem__)]


_NUMBER_PATTERNS = (
    re.compile(r"-?\b\d{1,3}(?:,\d{3})+\b"),  # 1,234,567
    re.compile(r"-?\d+(?:\.\d+)?[eE][+-]?\d+"),  # 1.5e-3
    re.compile(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])"),  # 12, 3.5, .5 (not "12" of "12kg")
)
_INDICATORS = ("could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result ")


def extract_numbers(text: str) -> list[str]:
    return [m for pattern in _NUMBER_PATTERNS for m in pattern.findall(text)]


def normalize_answer(value: str) -> list[Any]:
    """Numbers become floats rounded to 2 places; strings are lower-cased (a 1-char string also gets the
    space-padded forms, as MMMU does, so that 'a' does not match inside words)."""
    value = value.strip()
    try:
        return [round(float(value.replace(",", "")), 2)]
    except ValueError:
        value = value.lower()
        return [" " + value, value + " "] if len(value) == 1 else [value]


def _key_subresponses(response: str) -> list[str]:
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for index, part in enumerate(parts):
        indicators = list(_INDICATORS) + (["="] if index == len(parts) - 1 else [])
        shortest = None
        for indicator in indicators:
            if indicator in part:
                tail = part.split(indicator)[-1].strip()
                if not shortest or len(tail) < len(shortest):  # MMMU: an empty tail is replaced
                    shortest = tail
        if shortest and shortest not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    return keys or [response]


@register_rule("mmmu_open", "2")
def mmmu_open(response: str, ctx: ExtractContext) -> list[Any]:
    """The candidate answers of an open response: key sub-responses after indicator words, plus every number
    in them, normalised (a list: the open metric counts a hit if any candidate matches the gold answer)."""
    keys = _key_subresponses(response)
    preds = keys + [n for k in keys for n in extract_numbers(k)]
    out: list[Any] = []
    for p in preds:
        for norm in normalize_answer(p):
            if norm not in out:
                out.append(norm)
    return out

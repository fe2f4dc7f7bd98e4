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


def _key_subresponses(response: str, indicator_words: tuple[str, ...] = _INDICATORS) -> list[str]:
    response = response.strip().strip(".").lower()
    parts = re.split(r"\.\s(?=[A-Z])|\n", response)
    keys = []
    for index, part in enumerate(parts):
        indicators = list(indicator_words) + (["="] if index == len(parts) - 1 else [])
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
    return _open_candidates(_key_subresponses(response))


def _open_candidates(keys: list[str]) -> list[Any]:
    """Key sub-responses and every number in them, each normalised, without repeats, in order."""
    preds = keys + [n for k in keys for n in extract_numbers(k)]
    out: list[Any] = []
    for p in preds:
        for norm in normalize_answer(p):
            if norm not in out:
                out.append(norm)
    return out


# VideoMMMU (lmms-eval 0.5.x tasks/videommmu/utils.py) ships its own copies of both parsers, changed from MMMU's:
# the multiple-choice one tries "A." and "A:" before "(A)" and "A ", and returns no letter instead of a random one;
# the open one knows more indicator words. An EMPTY response is "API Error" there and is left out of the score
# (the task drops it from aggregation; the rules return "" for it).
_VIDEOMMMU_INDICATORS = _INDICATORS + (
    "are ", "in total ", "total ", "identify ", "recognize ", "calculated as ", "counted as ", "measured as ",
    "observed as ", "concluded as ", "found to be ", "equals ", "determined to be ", "number of ", "value is ",
    "adds up to ", "have ", "has ",
)
NO_ANSWER = "No Answer Found."


@register_rule("videommmu_mcq", "1")
def videommmu_mcq(response: str, ctx: ExtractContext) -> str:
    """VideoMMMU's multiple-choice parser: candidates from "A." and "A:" (both passes run), else "(A)", else
    "A "; for responses over 5 words, option text; several: the last occurrence of the first form that matched
    (a colon candidate is ranked by its "A." position, i.e. -1, when a period candidate exists); none:
    "No Answer Found." (scored wrong)."""
    if response == "":
        return ""
    choices = list(ctx.options)
    for ch in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(ch)
    response = f" {response} "
    by_period = [c for c in choices if f"{c}." in response]
    by_colon = [c for c in choices if f"{c}:" in response]
    candidates = by_period + by_colon
    by_bracket = [] if candidates else [c for c in choices if f"({c})" in response]
    candidates = candidates or by_bracket or [c for c in choices if f"{c} " in response]
    by_text = False
    if not candidates and len(response.split()) > 5:
        candidates = [c for c, text in ctx.options.items() if text.lower() in response.lower()]
        by_text = bool(candidates)
    if not candidates:
        return NO_ANSWER
    if len(candidates) == 1:
        return candidates[0]
    if by_text:
        starts = [response.lower().rfind(ctx.options[c].lower()) for c in candidates]
    elif by_period:
        starts = [response.rfind(f"{c}.") for c in candidates]
    elif by_colon:
        starts = [response.rfind(f"{c}:") for c in candidates]
    elif by_bracket:
        starts = [response.rfind(f"({c})") for c in candidates]
    else:
        starts = [response.rfind(f" {c} ") for c in candidates]
    return candidates[max(range(len(candidates)), key=starts.__getitem__)]


@register_rule("videommmu_open", "1")
def videommmu_open(response: str, ctx: ExtractContext) -> list[Any]:
    """MMMU's open parser with VideoMMMU's longer indicator list ("are ", "total ", "equals ", "has ", ...)."""
    if response == "":
        return []
    return _open_candidates(_key_subresponses(response, _VIDEOMMMU_INDICATORS))

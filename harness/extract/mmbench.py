"""MMBench answer inference (VLMEvalKit ``can_infer_option`` / ``can_infer_text``, as lmms-eval's MMBench
task calls them), and the protocol's seeded random fallback."""

from __future__ import annotations

import random
import string
from typing import Mapping

from harness.extract.base import ExtractContext, register_rule

MMBENCH_SEED = 2680
_REJECT = ("Sorry,", "I cannot", "I can't", "I apologize")  # refusal markers: the answer is "Z" (no option)


def can_infer_option(answer: str, choices: Mapping[str, str]) -> str | None:
    """Exactly one standalone option letter (also in the forms ``A.`` ``A,`` ``A:`` ``A)`` ``(A)`` ``:A``)."""
    if any(marker in answer for marker in _REJECT):
        return None
    padded = answer
    for ch in ".()[],:;!*#{}":
        padded = padded.replace(ch, " ")
    words = padded.split()
    found = [w for w in words if w in choices]
    return found[0] if len(found) == 1 else None


def can_infer_text(answer: str, choices: Mapping[str, str]) -> str | None:
    """Exactly one option's text occurs in the answer (case-insensitive)."""
    answer = answer.lower()
    hits = [k for k, v in choices.items() if str(v).lower() in answer]
    return hits[0] if len(hits) == 1 else None


@register_rule("mmbench", "1")
def mmbench(response: str, ctx: ExtractContext) -> str | None:
    """Option letter by ``can_infer_option`` then ``can_infer_text``; None when neither decides (the task
    then asks a judge, if configured, and finally draws the seeded random letter)."""
    choices = dict(ctx.options)
    return can_infer_option(response, choices) or can_infer_text(response, choices)


def mmbench_random_letter(options: Mapping[str, str], doc_key: str = "") -> str:
    """The protocol's last resort: a random letter over the options plus the always-wrong "E" when fewer than
    five options exist, from an RNG seeded with 2680 (per question, so results do not depend on order)."""
    letters = list(options)
    if len(letters) < 5:
        letters.append(string.ascii_uppercase[len(letters)])
    return random.Random(f"{MMBENCH_SEED}:{doc_key}").choice(letters)

"""Option-letter extraction for multiple choice, each rule as its benchmark's reference code behaves
(paper-era lmms-eval 0.5.x / lm-eval), quirks included: a rule that scores differently is a different rule."""

from __future__ import annotations

import re

from harness.extract.base import ExtractContext, register_rule

# Video-MME ``extract_characters_regex``. The reference list lacks two commas, so two compound prefixes
# ("The best option is" + "The correct option is", "Best answer:" + "Best option:") are glued into strings
# that never occur; we keep exactly the prefixes that can fire.
_VIDEOMME_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                      "The best option isThe correct option is", "Best answer:Best option:")


@register_rule("videomme", "1")
def videomme(response: str, ctx: ExtractContext) -> str:
    """Strip answer prefixes; if > 10 words and no A-D anywhere, '' (wrong); else the FIRST A-D character."""
    s = response.strip()
    for prefix in _VIDEOMME_PREFIXES:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCD]", s):
        return ""
    match = re.search("[ABCD]", s)
    return match[0] if match else ""


@register_rule("gpqa", "1")
def gpqa(response: str, ctx: ExtractContext) -> str:
    """lm-eval GPQA flexible-extract: the first ``(X)``; fallback (ours, documented): a lone letter A-D
    as a word (``B``, ``B.``, ``answer: B``). Returns '' when neither is found."""
    match = re.search(r"\(([A-Z])\)", response)
    if match:
        return match[1]
    match = re.search(r"(?:^|[\s:])([ABCD])(?:[.):,]|\s|$)", response.strip())
    return match[1] if match else ""


@register_rule("option_letter", "1")
def option_letter(response: str, ctx: ExtractContext) -> str:
    """Generic: a response that is (or starts with) an option letter, ``(B)``, ``B.``, ``B)``, ``Answer: B``;
    else the unique option whose text the response contains. '' when ambiguous or absent."""
    letters = "".join(ctx.options) or "ABCD"
    s = response.strip()
    patterns = [rf"^\(?([{letters}])\)?(?:[.):,\s]|$)", rf"answer(?: is)?\s*[:：]?\s*\(?([{letters}])\)?(?:\W|$)",
                rf"\(([{letters}])\)"]
    for pattern in patterns:
        match = re.search(pattern, s, flags=re.I if "answer" in pattern else 0)
        if match:
            return match[1].upper()
    hits = [k for k, v in ctx.options.items() if v and v.lower() in s.lower()]
    return hits[0] if len(hits) == 1 else ""

"""Option-letter extraction for multiple choice, each rule as its benchmark's reference code behaves
(paper-era lmms-eval 0.5.x / lm-eval), quirks included: a rule that scores differently is a different rule."""

from __future__ import annotations

import random
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


@register_rule("worldsense", "1")
def worldsense(response: str, ctx: ExtractContext) -> str:
    """WorldSense's parser: candidates are the bare letters A-D found anywhere (``f"{c}" in response``, so any
    capital counts); with several, the largest ``rfind("(X)")`` wins, usually -1 for all, so the FIRST
    candidate; with none, "A"."""
    candidates = [c for c in "ABCD" if c in response]
    if not candidates:
        return "A"
    if len(candidates) == 1:
        return candidates[0]
    starts = [response.rfind(f"({c})") for c in candidates]
    return candidates[max(range(len(candidates)), key=starts.__getitem__)]


@register_rule("mmlu_pro", "1")
def mmlu_pro(response: str, ctx: ExtractContext) -> str:
    """lmms-eval MMLU-Pro custom-extract: ``answer is (X)`` / ``answer is X`` with X in A-J."""
    match = re.search(r"answer is \(?([ABCDEFGHIJ])\)?", response)
    return match[1] if match else ""


@register_rule("ai2d", "1")
def ai2d(response: str, ctx: ExtractContext) -> str:
    """lmms-eval AI2D flexible-extract: the first ``X.``; else the response stripped."""
    match = re.search(r"([A-Z])\.", response)
    return match[1] if match else response.strip()


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


@register_rule("realworldqa", "1")
def realworldqa(response: str, ctx: ExtractContext) -> str:
    """lmms-eval RealWorldQA: number words to digits, then the first ``(X)`` if any, else the stripped text
    without a trailing period (lower-cased comparison happens in the metric)."""
    text = " ".join(_NUMBER_WORDS.get(w.lower(), w) for w in response.split())
    match = re.search(r"\(([A-Z])\)", text)
    return match[1] if match else text.strip().rstrip(".")


@register_rule("option_text", "1")
def option_text(response: str, ctx: ExtractContext) -> str:
    """The option whose text the response contains (the longest when several match); '' if none.
    For benchmarks whose gold answer is the option text (OmniBench, MMAU)."""
    hits = [v for v in ctx.options.values() if v and v.lower() in response.lower()]
    return max(hits, key=len) if hits else ""


@register_rule("mmau", "1")
def mmau(response: str, ctx: ExtractContext) -> str:
    """lmms-eval 0.5 MMAU: strip ``, . ! ? ; : '`` from the ends and pad with spaces; candidates are the
    letters A-D (only these, whatever the number of choices) found as ``(X)``, else `` X ``, else ``X.``;
    several: the largest ``rfind(" X ")`` wins (-1 for bracket-only hits, so then the first); none: a
    random letter. The letter is mapped to its choice TEXT (the metric compares texts). Deviations, both
    documented: the random draw uses an RNG seeded by (run seed, question id), not the global one; a letter
    past the last choice (where the reference raises IndexError) gives '' (scored wrong)."""
    letters = "ABCD"
    for ch in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(ch)
    response = f" {response} "
    candidates = ([c for c in letters if f"({c})" in response] or [c for c in letters if f" {c} " in response]
                  or [c for c in letters if f"{c}." in response])
    if not candidates:
        letter = random.Random(f"{ctx.seed}:{ctx.doc.get('id', '')}").choice(letters)
    elif len(candidates) == 1:
        letter = candidates[0]
    else:
        starts = [response.rfind(f" {c} ") for c in candidates]
        letter = candidates[max(range(len(candidates)), key=starts.__getitem__)]
    return ctx.options.get(letter, "")

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


def _strip_pad(response: str) -> str:
    """MMMU-family preamble: strip , . ! ? ; : ' from both ends (one character class at a time), pad with spaces."""
    for ch in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(ch)
    return f" {response} "


def _last(candidates: list[str], starts: list[int]) -> str:
    """numpy.argmax over start positions: the largest wins, the first candidate on ties (all -1 included)."""
    return candidates[max(range(len(candidates)), key=starts.__getitem__)]


@register_rule("worldsense", "2")
def worldsense(response: str, ctx: ExtractContext) -> str:
    """WorldSense's (and TOMATO's) parser. Letters are the question's options (A-C for 3-option rows). The
    first pass tests the bare letter (``f"{c}" in response``), so any capital counts; with several, the
    largest ``rfind("(X)")`` wins, usually -1 for all, so the FIRST candidate. Only a response with no option
    capital at all reaches the option-text pass (over 5 words; case-insensitive; several: the last occurring).
    With none, "A". v2: option letters from the question and the option-text pass (v1 had neither)."""
    letters = list(ctx.options) or list("ABCD")
    s = _strip_pad(response)
    candidates = [c for c in letters if c in s]
    if candidates:
        return candidates[0] if len(candidates) == 1 else _last(candidates, [s.rfind(f"({c})") for c in candidates])
    if len(s.split()) > 5:
        hits = [c for c in letters if ctx.options.get(c, "").lower() in s.lower()]
        if hits:
            return _last(hits, [s.lower().rfind(ctx.options[c].lower()) for c in hits])
    return "A"


@register_rule("omnibench", "1")
def omnibench(response: str, ctx: ExtractContext) -> str:
    """OmniBench (lmms-eval ``omni_bench``): ``(X)``, else ``X `` (a letter before a space, anywhere: "A dog"
    counts), else ``X.``; several: the largest ``rfind("(X)")`` / ``rfind(" X ")``, first on ties; none: ''
    (scored wrong; no random guess, no option-text pass)."""
    letters = list(ctx.options) or list("ABCD")
    s = f" {response.strip()} "
    bracket = [c for c in letters if f"({c})" in s]
    candidates = bracket or [c for c in letters if f"{c} " in s] or [c for c in letters if f"{c}." in s]
    if not candidates:
        return ""
    if len(candidates) == 1:
        return candidates[0]
    return _last(candidates, [s.rfind(f"({c})" if bracket else f" {c} ") for c in candidates])


_LVB_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                 "The best option is", "The correct option is", "Best answer:", "Best option:")


def _seeded_choice(ctx: ExtractContext, letters: list[str]) -> str:
    """The protocols' ``random.choice`` fallback, drawn from an RNG seeded by (run seed, question id)."""
    key = ctx.doc.get("id", ctx.doc.get("question_id", ""))
    return random.Random(f"{ctx.seed}:{key}").choice(letters)


@register_rule("longvideobench", "1")
def longvideobench(response: str, ctx: ExtractContext) -> str:
    """LongVideoBench: remove the eight answer prefixes; over 10 words with no A-E: a random option; else the
    FIRST A-E character anywhere (even beyond the question's options); none: a random option. The random
    draw is seeded per question (documented deviation from the global RNG)."""
    letters = list(ctx.options) or list("ABCDE")
    s = response.strip()
    for prefix in _LVB_PREFIXES:
        s = s.replace(prefix, "")
    match = re.search("[ABCDE]", s)  # covers "over 10 words and no A-E" too: both fall back to a guess
    return match[0] if match else _seeded_choice(ctx, letters)


@register_rule("egoschema", "1")
def egoschema(response: str, ctx: ExtractContext) -> str:
    """EgoSchema: collect EVERY ``(X)``, ``X `` and ``X.`` form present (no early stop); with several, the form
    whose LAST occurrence comes FIRST wins (argmin of rfind). With none and over 5 words, options whose full
    stored string ("A. text", which ``ctx.options`` must hold) occurs, the earliest last occurrence again;
    else a random letter (seeded per question)."""
    letters = list(ctx.options) or list("ABCDE")
    s = _strip_pad(response)
    forms = [f"({c})" for c in letters if f"({c})" in s]
    forms += [f"{c} " for c in letters if f"{c} " in s]
    forms += [f"{c}." for c in letters if f"{c}." in s]
    if forms:
        starts = [s.rfind(f) for f in forms]
        return forms[min(range(len(forms)), key=starts.__getitem__)].strip("(). ")
    if len(s.split()) > 5:
        hits = [c for c in letters if ctx.options[c].strip().lower() in s.lower()]
        if hits:
            starts = [s.lower().rfind(ctx.options[c].strip().lower()) for c in hits]
            return hits[min(range(len(hits)), key=starts.__getitem__)]
    return _seeded_choice(ctx, letters)


_MVB_PUNCT = (";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_MVB_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: a lookahead for "<=digit", so every "." not before a digit
_MVB_COMMA = re.compile(r"(\d)(\,)(\d)")


@register_rule("mvbench", "1")
def mvbench(response: str, ctx: ExtractContext) -> str:
    """MVBench ``mcq_acc``'s normalisation of the prediction: "X. text" -> X; otherwise VQA-style punctuation
    handling, quotes and brackets stripped, LOWER-CASED, then the first standalone letter a-e (so the article
    "a" reads as option A); else the normalised text (never equal to a letter)."""
    match = re.match(r"^([A-E])\.\s*(.+)$", response.strip(), re.IGNORECASE)
    if match:
        return match[1].upper()
    s = response.replace("\n", " ").replace("\t", " ").strip()
    out = s
    for p in _MVB_PUNCT:
        if p + " " in s or " " + p in s or _MVB_COMMA.search(s) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    s = _MVB_PERIOD.sub("", out, count=32)  # the reference passes re.UNICODE (32) as sub's count
    s = s.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = re.search(r"\b([A-E])\b", s, re.IGNORECASE)
    return letter[1].upper() if letter else s


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

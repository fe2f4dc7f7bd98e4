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


@register_rule("ai2d", "2")
def ai2d(response: str, ctx: ExtractContext) -> str:
    """lmms-eval 0.5.x AI2D flexible-extract: its MultiChoiceRegexFilter ignores the YAML regex and only
    takes a letter written ``X.`` at the very START of the response (``^\\s*([A-Z])\\.``); anything else
    is kept as written and compared whole (so "B" scores, "The answer is B." does not)."""
    match = re.match(r"\s*([A-Z])\.", response)
    return match[1] if match else response


# RealWorldQA's NumberWordsToDigitsFilter: a WHOLE response that is one of these words becomes the digit.
_NUMBER_WORDS = {w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}
_INLINE_CHOICE = re.compile(r"\b([A-Z])\.\s+([^\n]*)")


@register_rule("realworldqa", "2")
def realworldqa(response: str, ctx: ExtractContext) -> str:
    """lmms-eval 0.5.x RealWorldQA flexible-extract. (1) A response that is exactly a number word (any case)
    becomes its digit. (2) The YAML regex ``(\\([A-Z]\\))`` is never used: the filter reads the options
    ``X. text`` out of the question, strips punctuation from the response and, if an option's text occurs in
    it (case-sensitive, leftmost), answers that option's letter; otherwise the punctuation-free response."""
    response = _NUMBER_WORDS.get(response.lower(), response)
    choices: dict[str, str] = {}
    for i, (_, text) in enumerate(_INLINE_CHOICE.findall(str(ctx.doc.get("question", "")))):
        choices[text.strip()] = chr(ord("A") + i)  # letters by position, as the filter assigns them
    cleaned = re.sub(r"[^\w\s]", "", response).strip()
    match = re.search("|".join(re.escape(t) for t in choices), cleaned)
    return choices[match[0]] if match and match[0] in choices else cleaned


@register_rule("mmstar", "1")
def mmstar(response: str, ctx: ExtractContext) -> str:
    """MMStar's ``exact_match`` as a rule: after lower-casing and stripping, the gold letter may be the first
    character, the one after "(", after "option " or after "the answer is ". Returned: the first of these
    that is an option letter (the gold is always one, so the score is the reference's); '' if none."""
    p = response.lower().replace("\n", " ").strip()
    letters = "".join(ctx.options).lower() or "abcde"
    candidates = [p[:1], p[1:2] if p[:1] == "(" else "", p[7:8] if p[:7] == "option " else "",
                  p[14:15] if p[:14] == "the answer is " else ""]
    return next((c.upper() for c in candidates if c and c in letters), "")


@register_rule("cv_bench", "1")
def cv_bench(response: str, ctx: ExtractContext) -> str:
    """lmms-eval CV-Bench: ``re.match(r"[\\(\\s]*([A-Z])[\\)\\.\\s]*", text, IGNORECASE)`` on the stripped response,
    upper-cased: the first letter of the response whatever follows ("The answer is B" gives "T")."""
    match = re.match(r"[\(\s]*([A-Z])[\)\.\s]*", response.strip(), flags=re.I)
    return match[1].upper() if match else ""


_MME_RW_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                    "The best option is", "The correct option is", "Best answer:", "Best option:")


@register_rule("mme_realworld", "1")
def mme_realworld(response: str, ctx: ExtractContext) -> str:
    """lmms-eval MME-RealWorld ``extract_characters_regex``: strip the eight answer prefixes; more than 10
    words and no A-E: ''; else the FIRST A-E character; with none, the first of "(A)".."(E)" that contains
    the (lower-cased) rest, so an empty rest answers "A" and "b" answers "B"."""
    s = response.strip()
    for prefix in _MME_RW_PREFIXES:
        s = s.replace(prefix, "")
    if len(s.split()) > 10 and not re.search("[ABCDE]", s):
        return ""
    match = re.search("[ABCDE]", s)
    if match:
        return match[0]
    return next((c[1] for c in ("(A)", "(B)", "(C)", "(D)", "(E)") if s.lower() in c.lower()), "")


@register_rule("first_char", "1")
def first_char(response: str, ctx: ExtractContext) -> str:
    """SEED-Bench-2-Plus: the stripped response, cut to its first character when longer than one."""
    return response.strip()[:1]


@register_rule("option_text", "1")
def option_text(response: str, ctx: ExtractContext) -> str:
    """The option whose text the response contains (the longest when several match); '' if none.
    For benchmarks whose gold answer is the option text (OmniBench, MMAU)."""
    hits = [v for v in ctx.options.values() if v and v.lower() in response.lower()]
    return max(hits, key=len) if hits else ""

"""Option-letter extraction for multiple choice, each rule as its benchmark's reference code behaves
(paper-era lmms-eval 0.5.x / lm-eval), quirks included: a rule that scores differently is a different rule."""

from __future__ import annotations

import random
import re
import string

from harness.extract.base import ExtractContext, register_rule

# Video-MME ``extract_characters_regex``. The reference list lacks two commas, so two compound prefixes
# ("The best option is" + "The correct option is", "Best answer:" + "Best option:") are glued into strings
# that never occur; we keep exactly the prefixes that can fire.
_VIDEOMME_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                      "The best option isThe correct option is", "Best answer:Best option:")


@register_rule("videomme", "1")
def videomme(response: str, ctx: ExtractContext) -> str:
    """Strip answer prefixes; if > 10 words and no A-D anywhere, '' (wrong); else the FIRST A-D character."""
    s, letter = _first_letter_after_prefixes(response, _VIDEOMME_PREFIXES, "ABCD")
    return letter or ""


def _first_letter_after_prefixes(response: str, prefixes: tuple[str, ...], letters: str) -> tuple[str, str | None]:
    """lmms-eval's ``extract_characters_regex`` core (Video-MME, MME-RealWorld): the stripped response with
    every answer prefix deleted, and its FIRST character among ``letters`` (None if it has none, and "" when
    it is also longer than 10 words: such an answer is scored wrong outright)."""
    s = response.strip()
    for prefix in prefixes:
        s = s.replace(prefix, "")
    match = re.search(f"[{letters}]", s)
    if match:
        return s, match[0]
    return s, "" if len(s.split()) > 10 else None


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
    s, letter = _first_letter_after_prefixes(response, _MME_RW_PREFIXES, "ABCDE")
    if letter is not None:
        return letter
    return next((c[1] for c in ("(A)", "(B)", "(C)", "(D)", "(E)") if s.lower() in c.lower()), "")


@register_rule("first_char", "1")
def first_char(response: str, ctx: ExtractContext) -> str:
    """SEED-Bench-2-Plus: the stripped response, cut to its first character when longer than one."""
    return response.strip()[:1]


@register_rule("streamingbench", "1")
def streamingbench(response: str, ctx: ExtractContext) -> str:
    """StreamingBench (src/data/count.py): the response's first character as it stands, compared with the
    letter exactly: no stripping, no case folding ("b", " B" and "The answer is B" are wrong). An empty
    response, which the reference's indexing cannot score, gives "" (wrong)."""
    return response[:1]


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


@register_rule("omnivideobench", "1")
def omnivideobench(response: str, ctx: ExtractContext) -> str:
    """OmniVideoBench's reference (utils.extract_model_answer + clean_text): keep the text after the last
    "assistant" (a chat-template marker there; it also cuts a reply that says "assistant"), take the inside
    of /box{..} or \\boxed{..}, lower-case, keep the first character when the second is "." ("c. angry" ->
    "c"), delete punctuation and collapse spaces. The result must equal the gold letter: "C)" and "(C)" pass,
    "The answer is C" does not."""
    text = response.split("assistant")[-1].strip() if "assistant" in response else response.strip()
    for pattern in (r"/box\{([^}]+)\}", r"\\boxed\{([^}]+)\}"):
        match = re.search(pattern, text)
        if match:
            text = match.group(1).strip()
    text = text.lower()
    match = re.search(r"/box\{([^}]+)\}", text)
    if match:
        text = match.group(1)
    if len(text) > 1 and text[1] == ".":
        text = text[0]
    text = text.translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())

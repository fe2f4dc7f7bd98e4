"""LogicVista's answer reader for direct answers: the SET of option labels a reply chose.

LogicVista's own scorer (Yijia-Xiao/LogicVista eval/extract_accuracy.py) asks GPT-4 which letters a reply
chose and compares the sorted lists, lower-cased, with the gold split on ", " (so "A, C" needs both A and C,
in any order). A direct-answer prompt makes that call unnecessary: the labels are read here,
deterministically, from the first place that names some of: after an "answer is" / "answer:" cue (the last
first), the start of the reply, after an "option" / "choice" cue (the last first).

The labels are option letters (A-H) or, for the few numbered-option questions, digits (1-9), whichever kind
the row's gold uses. A run of labels may be separated by commas, "and", "&", "/", semicolons or spaces, and
each label may be wrapped as "(A)", "[A]", "A.", "A)" or "A:"; an all-capital run such as "AC" counts as
its letters; a reply that is one label alone may be lower-case ("b"); markdown bold and quotes are
ignored. Reading stops at the first other word, so "B, because A is wrong" is {B} (and a reply opening "A
square..." reads as A: the prompt asks for the label alone). A reply with no such run gives ``None`` (the
reference's "ZZZZZ": scored wrong).
"""

from __future__ import annotations

import re

from harness.extract.base import ExtractContext, register_rule

LETTER_LABELS = "ABCDEFGH"
DIGIT_LABELS = "123456789"

_ANSWER_CUE = re.compile(r"\banswers?(?:\s+(?:is|are)\b|\s*:)\s*", re.I)  # "the answer is", "Answer:"
_OPTION_CUE = re.compile(r"\b(?:choice|option)s?(?:\s+(?:is|are)\b|\s*:)?\s*", re.I)  # "option B"
_EMPHASIS = re.compile(r"[*\"'“”‘’`]")  # markdown bold and quotes around labels: "**B**", "'B'"
_SEPARATOR = re.compile(r"(?:\s*(?:,|;|/|&|\band\b)\s*|\s+)", re.I)


def label_kind(gold: str) -> str:
    """The label alphabet a gold answer is written in: digits when it is, letters otherwise."""
    labels = [part.strip() for part in str(gold).split(",") if part.strip()]
    return DIGIT_LABELS if labels and all(p.isdigit() for p in labels) else LETTER_LABELS


def canonical(labels: set[str] | frozenset[str]) -> str:
    """A label set as one comparable string: sorted, upper-case, joined by ", " (the dataset's own form)."""
    return ", ".join(sorted(label.upper() for label in labels))


def _token(text: str, alphabet: str) -> tuple[set[str], int] | None:
    """The labels of one wrapped label (or all-capital run) at the start of ``text`` and its length."""
    match = re.match(rf"[\(\[]?([{alphabet}]+)[\)\]]?(?:[.:)](?=\s|$))?(?=[\s,;/&.!?]|$)", text)
    if not match:
        return None
    run = match[1]
    if len(run) > 1 and (len(set(run)) != len(run) or alphabet == DIGIT_LABELS):
        return None  # "AA", "12": not a choice of distinct labels
    return set(run), match.end()


def leading_labels(text: str, alphabet: str) -> set[str]:
    """The labels of the run of labels ``text`` opens with (empty when it opens with another word)."""
    found: set[str] = set()
    position = 0
    while position < len(text):
        token = _token(text[position:], alphabet)
        if token is None:
            break
        found |= token[0]
        position += token[1]
        separator = _SEPARATOR.match(text, position)
        if separator is None or separator.end() == position:
            break
        position = separator.end()
    return found


@register_rule("logicvista_choices", "1")
def logicvista_choices(response: str, ctx: ExtractContext) -> str | None:
    """The set of option labels a direct answer chose, as "A, C" (sorted); None when it names none."""
    alphabet = label_kind(str(ctx.doc.get("answer", "")))
    text = _EMPHASIS.sub("", response).strip()
    bare = text.strip(" .()[]")
    if len(bare) == 1 and bare.upper() in alphabet:  # a lone label in any case ("b"), as the reference keeps it
        return bare.upper()
    answer_cues = [cue.end() for cue in reversed(list(_ANSWER_CUE.finditer(text)))]
    option_cues = [cue.end() for cue in reversed(list(_OPTION_CUE.finditer(text)))]
    for start in [*answer_cues, 0, *option_cues]:
        labels = leading_labels(text[start:], alphabet)
        if labels:
            return canonical(labels)
    return None

"""From the language model's output ids to MoE-TTS segments, as the released ``generate_from_tokens``.

The model writes ``<|speech_start|>`` voice prompt ``<|speech_prompt|>`` text ``<|speech_end|>``. Each span's
text is cut into segments (``select_split2``): after a punctuation token once the segment is longer than
``minlen`` tokens, or anywhere once it exceeds ``maxcutlen`` tokens, but never right before a digit, a
punctuation token or (for punctuation cuts) the span's end. A segment that does not end in punctuation gets a
full stop (id 13 in the Qwen vocabulary). Every segment of a span carries that span's voice prompt.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from dataclasses import dataclass

MIN_SEGMENT = 5  # the release's minlen: a punctuation cut needs a segment longer than this
FULL_STOP = 13  # "." in the Qwen2/2.5 vocabulary
PUNCTUATION = ".,!?;:。，！？；：、"


@dataclass(frozen=True)
class SpeechSpan:
    prompt: list[int]  # voice prompt ids (e.g. "Brian"), possibly empty
    text: list[int]  # the ids to speak, possibly empty
    segments: list[list[int]]  # text cut for generation, each ending in punctuation


@dataclass(frozen=True)
class SpeechTokens:
    """The ids that delimit spans, and the token classes the cutter looks at."""

    start: int
    prompt_end: int
    end: int
    punctuation: frozenset[int]
    digits: frozenset[int]
    full_stop: int = FULL_STOP

    @classmethod
    def for_tokenizer(cls, tokenizer, start: int, prompt_end: int, end: int) -> SpeechTokens:
        """Punctuation and digit classes read from a tokenizer's vocabulary (single-character tokens)."""
        punctuation, digits = set(), set()
        for char in PUNCTUATION:
            ids = tokenizer.encode(char, add_special_tokens=False)
            if len(ids) == 1:
                punctuation.add(ids[0])
        for char in "0123456789":
            ids = tokenizer.encode(char, add_special_tokens=False)
            if len(ids) == 1:
                digits.add(ids[0])
        stop = tokenizer.encode(".", add_special_tokens=False)
        return cls(start, prompt_end, end, frozenset(punctuation), frozenset(digits), stop[0] if stop else FULL_STOP)


def cut_points(text: Sequence[int], tokens: SpeechTokens, maxcutlen: int, end_follows: bool = True) -> list[int]:
    """Indices into ``text`` where a new segment starts (the release's rule, see the module docstring)."""
    cuts, start = [], -1  # the release counts from the prompt-end token, then from each cut
    for i, tok in enumerate(text):
        nxt = text[i + 1] if i + 1 < len(text) else (tokens.end if end_follows else None)
        if nxt is None:
            break
        if i - start > maxcutlen and nxt not in tokens.digits and nxt not in tokens.punctuation \
                and nxt != tokens.end or tok in tokens.punctuation and nxt not in tokens.digits and nxt != tokens.end \
                and i + 1 - start > MIN_SEGMENT:  # (the release may cut right before the end: an empty segment)
            cuts.append(i + 1)
            start = i + 1
    return cuts


def segment(text: Sequence[int], tokens: SpeechTokens, maxcutlen: int) -> list[list[int]]:
    """``text`` cut at :func:`cut_points`, each piece closed by punctuation. Empty text gives no segment."""
    if not text:
        return []
    bounds = [0, *cut_points(text, tokens, maxcutlen), len(text)]
    pieces = [list(text[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    return [p if p[-1] in tokens.punctuation else p + [tokens.full_stop] for p in pieces]


def speech_spans(ids: Sequence[int], tokens: SpeechTokens, maxcutlen: int,
                 ignore: Collection[int] = ()) -> list[SpeechSpan]:
    """Every complete ``start … prompt_end … end`` span in ``ids``, in order. A span whose end never came is
    closed at the last id (the release appends the end token to a cut-off output); ``ignore`` ids (e.g.
    ``<|im_end|>``) are dropped from text."""
    spans, i = [], 0
    while i < len(ids):
        if ids[i] != tokens.start:
            i += 1
            continue
        try:
            mid = ids.index(tokens.prompt_end, i + 1)
        except ValueError:
            break
        try:
            end = ids.index(tokens.end, mid + 1)
        except ValueError:
            end = len(ids)
        prompt = [t for t in ids[i + 1:mid] if t not in ignore]
        text = [t for t in ids[mid + 1:end] if t not in ignore]
        spans.append(SpeechSpan(prompt, text, segment(text, tokens, maxcutlen)))
        i = end + 1
    return spans

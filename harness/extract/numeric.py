"""Numbers and time spans out of free text (VSI-Bench, Charades-STA, counting questions)."""

from __future__ import annotations

import re

from harness.extract.base import ExtractContext, register_rule

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")
_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*[–-]\s*(\d+(?:\.\d+)?)")


@register_rule("numeric", "1")
def numeric(response: str, ctx: ExtractContext) -> float | None:
    """The first number in the response (thousands separators allowed), or None."""
    match = _NUMBER.search(response)
    return float(match[0].replace(",", "")) if match else None


@register_rule("vsibench", "1")
def vsibench(response: str, ctx: ExtractContext) -> str:
    """VSI-Bench: the first whitespace token with a trailing '.' removed (``pred.split(" ")[0].rstrip(".")``)."""
    return response.split(" ")[0].rstrip(".").strip()


_CHARADES_EXAMPLE = "a specific example is : 20.8 - 30.0 seconds"
_CHARADES_KEYWORDS = ("starts", "ends", "happens in", "start time", "end time", "start", "end", "happen")
_SPAN_LOOSE = re.compile(r"(\d+\.*\d*)\s*[–-]\s*(\d+\.*\d*)")
_SECONDS = re.compile(r"\b(\d+\.\d+\b|\b\d+)\b")
_CLOCK = re.compile(r"\b((\d{1,2}:\d{2}:\d{2}))\b")
_SPAN_FALLBACK = re.compile(r"(\d+(?:\.\d+)?)\s*s?\s*[–-]\s*(\d+(?:\.\d+)?)\s*s?")


def _pairs(times: list[float]) -> list[tuple[float, float]]:
    times = times[: len(times) // 2 * 2]
    return [(times[i], times[i + 1]) for i in range(0, len(times), 2)]


@register_rule("charades_time", "2")
def charades_time(response: str, ctx: ExtractContext) -> tuple[float, float] | None:
    """Charades-STA ``extract_time`` (lmms-eval ``charades_sta/eval_tvg.py``): lower-case, drop the prompt's
    example sentence, replace EVERY "to" with "-" (inside words too); then the first ``m - n`` span; else the
    first number of each sentence (split on ! ? newline) that has a start/end keyword, paired in order; else
    the first hh:mm:ss of each such sentence, paired; else ``m s - n s``. The first span, ordered; None when
    there is none (the protocol then scores IoU 0). v2: v1 had only the first pattern."""
    text = response.lower().replace(_CHARADES_EXAMPLE, "").replace("to", "-")
    sentences = re.split(r"[!?\n]", text)
    keyed = [s for s in sentences if any(k in s for k in _CHARADES_KEYWORDS)]
    spans: list[tuple[float, float]] = []
    try:
        spans = [(float(a), float(b)) for a, b in _SPAN_LOOSE.findall(text)]
    except ValueError:  # "3..5": the reference would crash; we read it as no span
        spans = []
    if not spans:
        spans = _pairs([float(found[0]) for s in keyed if (found := _SECONDS.findall(s))])
    if not spans:
        clocks = [found[0][0] for s in keyed if (found := _CLOCK.findall(s))]
        spans = _pairs([float(h) * 3600 + float(m) * 60 + float(sec) for h, m, sec in (c.split(":") for c in clocks)])
    if not spans:
        spans = [(float(a), float(b)) for a, b in _SPAN_FALLBACK.findall(text)]
    if not spans:
        return None
    start, end = spans[0]
    return (start, end) if end > start else (end, start)

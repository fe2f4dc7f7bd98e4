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


@register_rule("charades_time", "1")
def charades_time(response: str, ctx: ExtractContext) -> tuple[float, float] | None:
    """Charades-STA: the first ``start - end`` pair of seconds, or None."""
    match = _SPAN.search(response)
    return (float(match[1]), float(match[2])) if match else None

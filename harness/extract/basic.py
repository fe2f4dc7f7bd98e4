"""Rules that keep the whole response: free-form answers (captions, transcripts) and reasoning traces."""

from __future__ import annotations

import re

from harness.extract.base import ExtractContext, register_rule

_THINK = re.compile(r"<think>.*?</think>", re.S)


@register_rule("identity", "1")
def identity(response: str, ctx: ExtractContext) -> str:
    """The response exactly as the model wrote it."""
    return response


@register_rule("strip", "1")
def strip(response: str, ctx: ExtractContext) -> str:
    """The response without surrounding white space."""
    return response.strip()


@register_rule("think", "1")
def strip_think(response: str, ctx: ExtractContext) -> str:
    """Drop ``<think>...</think>`` blocks (and an unterminated trailing one); the rest is the answer."""
    text = _THINK.sub("", response)
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    if "</think>" in text:  # a template that opened the block in the prompt
        text = text.rsplit("</think>", 1)[1]
    return text.strip()

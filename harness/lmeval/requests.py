"""lm-eval request arguments as harness requests: one definition for both directions of the bridge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.api import GenerationConfig, Message, Request

LM_EVAL_MAX_GEN_TOKS = 256  # lm-eval's default when a task gives no max_gen_toks


def generation_config(gen_kwargs: Mapping[str, Any]) -> GenerationConfig:
    """lm-eval's ``generation_kwargs`` (until, max_gen_toks, do_sample, temperature, top_p) as ours."""
    until = gen_kwargs.get("until") or ()
    do_sample = bool(gen_kwargs.get("do_sample", False))
    return GenerationConfig(
        max_new_tokens=int(gen_kwargs.get("max_gen_toks", LM_EVAL_MAX_GEN_TOKS)),
        do_sample=do_sample,
        temperature=float(gen_kwargs.get("temperature", 0.0)) if do_sample else 0.0,
        top_p=float(gen_kwargs.get("top_p", 1.0)),
        until=(until,) if isinstance(until, str) else tuple(until),
    )


def generation_request(task: str, doc_id: Any, context: str, gen_kwargs: Mapping[str, Any]) -> Request:
    """A ``generate_until`` instance: the context as one user turn, lm-eval's decoding settings."""
    return Request(task=task, doc_id=str(doc_id), messages=(Message.user(context),),
                   generation=generation_config(gen_kwargs))


def choice_request(task: str, doc_id: Any, context: str, continuations: tuple[str, ...]) -> Request:
    """A ``multiple_choice`` document: the context and its scored continuations (delimiter included)."""
    return Request(task=task, doc_id=str(doc_id), messages=(Message.user(context),), choices=continuations)

"""Log-likelihood of a continuation given a context, with lm-eval's semantics, for any causal LM.

lm-eval splits a (context, continuation) pair at the token level by encoding the whole string and the
context alone (trailing spaces of the context move to the continuation), scores ``log P(continuation |
context)`` as the sum of the continuation tokens' log-probabilities, and calls it greedy when every
continuation token is the argmax. Batches are right-padded, so a causal model's real tokens never see a pad
and each row's numbers equal those of its own unpadded forward pass.
"""

from __future__ import annotations

from typing import Callable, Sequence

from harness.api import LoglikelihoodRequest

Encode = Callable[[str], list[int]]
# ids [B, T] and attention mask [B, T] -> logits [B, T, V]
Forward = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]  # noqa: F821


def encode_pair(encode: Encode, context: str, continuation: str, prefix_id: int) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation) as lm-eval splits them; an empty context becomes ``prefix_id``."""
    stripped = context.rstrip(" ")
    continuation = context[len(stripped):] + continuation
    if not stripped:
        return [prefix_id], encode(continuation)
    whole = encode(stripped + continuation)
    context_ids = encode(stripped)
    return context_ids, whole[len(context_ids):]


def score(forward: Forward, encode: Encode, requests: Sequence[LoglikelihoodRequest], prefix_id: int,
          pad_id: int, batch_size: int = 8) -> list[tuple[float, bool]]:
    """``(log P(continuation | context), continuation is the greedy decode)`` per request, in order.

    Requests are scored longest first (fewer pad tokens per batch) and returned in the caller's order."""
    import torch

    pairs = [encode_pair(encode, r.context, r.continuation, prefix_id) for r in requests]
    order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
    for start in range(0, len(order), max(1, batch_size)):
        chunk = order[start:start + batch_size]
        rows = [(pairs[i][0] + pairs[i][1])[:-1] for i in chunk]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, tokens in enumerate(rows):
            ids[row, :len(tokens)] = torch.tensor(tokens)
            mask[row, :len(tokens)] = 1
        with torch.inference_mode():
            logprobs = torch.log_softmax(forward(ids, mask).float(), dim=-1)
        for row, i in enumerate(chunk):
            continuation = pairs[i][1]
            end = len(rows[row])
            window = logprobs[row, end - len(continuation):end]
            target = torch.tensor(continuation)
            total = float(window.gather(-1, target[:, None]).sum())
            results[i] = (total, bool((window.argmax(-1) == target).all()))
    return results

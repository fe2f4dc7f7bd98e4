"""Log-likelihood of a continuation given a context, with lm-eval's semantics, for any causal LM.

lm-eval splits a (context, continuation) pair at the token level by encoding the whole string and the
context alone (trailing spaces of the context move to the continuation), scores ``log P(continuation |
context)`` as the sum of the continuation tokens' log-probabilities, and calls it greedy when every
continuation token is the argmax. Batches are right-padded, so a causal model's real tokens never see a pad
and each row's numbers equal those of its own unpadded forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness.api import LoglikelihoodRequest

Encode = Callable[[str], list[int]]
# ids [B, T], attention mask [B, T] and keep -> logits [B, >= keep, V] (at least the last ``keep`` positions)
Forward = Callable[["torch.Tensor", "torch.Tensor", int], "torch.Tensor"]  # noqa: F821


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

    Requests whose model input is the same (the options of one question, each a single token after the same
    context) share one row, as in lm-eval; rows run longest first (fewer pads per batch), and the head is
    applied only to the positions that predict continuation tokens (``forward``'s ``keep``)."""
    import torch

    pairs = [encode_pair(encode, r.context, r.continuation, prefix_id) for r in requests]
    row_of: dict[tuple[int, ...], int] = {}
    inputs = [row_of.setdefault(tuple((c + t)[:-1]), len(row_of)) for c, t in pairs]
    rows = sorted(row_of, key=len, reverse=True)
    wanted: dict[int, list[int]] = {}  # row index -> requests it serves
    for i, row in enumerate(inputs):
        wanted.setdefault(row, []).append(i)
    results: list[tuple[float, bool]] = [(0.0, False)] * len(pairs)
    for start in range(0, len(rows), max(1, batch_size)):
        chunk = rows[start:start + batch_size]
        width = len(chunk[0])
        ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for b, tokens in enumerate(chunk):
            ids[b, :len(tokens)] = torch.tensor(tokens)
            mask[b, :len(tokens)] = 1
        served = [(b, i) for b, tokens in enumerate(chunk) for i in wanted[row_of[tokens]]]
        keep = max(width - len(chunk[b]) + len(pairs[i][1]) for b, i in served)
        with torch.inference_mode():
            logits = forward(ids, mask, keep)[:, -keep:]
        for b, i in served:
            continuation = pairs[i][1]
            end = keep - (width - len(chunk[b]))
            window = torch.log_softmax(logits[b, end - len(continuation):end].float(), dim=-1)
            target = torch.tensor(continuation, device=window.device)
            total = float(window.gather(-1, target[:, None]).sum())
            results[i] = (total, bool((window.argmax(-1) == target).all()))
    return results

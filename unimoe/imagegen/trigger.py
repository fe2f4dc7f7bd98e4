"""The trigger (``generate_visualgen`` in the released ``modeling_out.py``): find the answer's task and image
spans and read the language model's last-layer hidden states there.

The released code takes "the last 64 positions" as the image span, while the paper's answer format and the
tokenizer have 32 image tokens: ``[IMG0]``..``[IMG31]`` are ids 151672..151703 and ``[TASK0]`` is 151704,
so no 64-token span of distinct image tokens can exist. We therefore locate the spans by token id (3 task
tokens, then the image tokens that follow) instead of by a fixed count, which gives the 32-token span of the
tokenizer; the content projector's learned queries fix its output length whatever the span length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from unimoe.tokenizer import SPECIAL_IDS

NUM_TASK_TOKENS = 3
NUM_IMAGE_TOKENS = sum(1 for tok in SPECIAL_IDS if tok.startswith("[IMG"))
TASK_IDS = tuple(SPECIAL_IDS[f"[TASK{i}]"] for i in range(NUM_TASK_TOKENS))
IMAGE_IDS = tuple(SPECIAL_IDS[f"[IMG{i}]"] for i in range(NUM_IMAGE_TOKENS))
SPAN_IDS = TASK_IDS + IMAGE_IDS  # the answer format: [TASK0][TASK1][TASK2][IMG0]...[IMG31]


def find_spans(ids: Sequence[int]) -> tuple[list[int], list[int]] | None:
    """Positions of the last ``[TASK0..2]`` span and of the image tokens after it, or None when the sequence
    holds no complete task span followed by at least one image token."""
    ids = list(ids)
    for start in range(len(ids) - NUM_TASK_TOKENS, -1, -1):
        if tuple(ids[start:start + NUM_TASK_TOKENS]) == TASK_IDS:
            image = [i for i in range(start + NUM_TASK_TOKENS, len(ids)) if ids[i] in IMAGE_IDS]
            return (list(range(start, start + NUM_TASK_TOKENS)), image) if image else None
    return None


@dataclass
class SpanStates:
    """What the projectors read: hidden states and input embeddings of the two spans (batch of one)."""

    text: str
    task_states: torch.Tensor  # (1, 3, hidden)
    task_embeds: torch.Tensor
    image_states: torch.Tensor  # (1, n_image, hidden)
    image_embeds: torch.Tensor
    visual_features: torch.Tensor | None  # (1, n_visual, hidden): the prompt images' aligned features
    forced: bool  # True when the model did not emit the spans and they were appended to its answer


@torch.inference_mode()
def span_states(model: Any, processor: Any, encoded: dict[str, Any], answer_ids: Sequence[int]) -> SpanStates:
    """Teacher-force ``prompt + answer`` once and read the spans (appending them when the answer lacks them)."""
    answer = list(answer_ids)
    spans = find_spans(answer)
    forced = spans is None
    if forced:
        answer = answer + list(SPAN_IDS)
        spans = find_spans(answer)
    task_pos, image_pos = spans
    prompt_len = len(encoded["ids"])
    full = dict(encoded, ids=encoded["ids"] + answer, modality=encoded["modality"] + [0] * len(answer))
    batch = processor.collate([full])
    hidden = model.forward_batch(batch).hidden_states
    embeds = model.model.embed_tokens(batch.input_ids)
    pick = lambda x, pos: x[:, [prompt_len + p for p in pos]]  # noqa: E731  (one row, no padding)
    visual = None
    if batch.pixel_values is not None:
        from unimoe.processor import IMAGE_PAD

        visual = model.media_features(batch.pixel_values, None)[IMAGE_PAD][None]
    text_ids = answer[:task_pos[0]]
    return SpanStates(processor.tokenizer.decode(text_ids, skip_special_tokens=True).strip(),
                      pick(hidden, task_pos), pick(embeds, task_pos), pick(hidden, image_pos), pick(embeds, image_pos),
                      visual, forced)


def generate_visualgen(model: Any, processor: Any, conversation: list[dict[str, Any]], max_new_tokens: int = 0,
                       **generate_kw: Any) -> SpanStates:
    """Generate the answer (``max_new_tokens`` > 0) and read its spans, or, with ``max_new_tokens=0``, append
    the span to the prompt directly (what a generator trained on forced spans expects)."""
    encoded = processor.encode(conversation)
    answer: list[int] = []
    if max_new_tokens > 0:
        result = model.generate_batch(processor.collate([encoded]), max_new_tokens=max_new_tokens, **generate_kw)
        answer = list(result.tokens[0])
    return span_states(model, processor, encoded, answer)

"""Training batches from chat-style examples: decode media, tokenise, supervise only the answer.

An example is ``{"messages": [user turn with <image>/<video>/<audio> tags, assistant answer], "media":
{kind: path}, "modality": str}`` (what :func:`unimoe.train.omniworld.training_examples` yields). Labels
cover the answer tokens and the closing ``<|im_end|>``; aux-loss token weights are 1 for prompt tokens,
``aux_balance_weight`` (10 in the released scripts) for labelled ones and 0 for padding (reference §1.6).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np
import torch

from unimoe.processor import Audio, Batch, Image, Processor, Video

IGNORE = -100
_TAG = re.compile(r"<(image|video|audio)>")


def decode_media(kind: str, path: str) -> Image | Video | Audio:
    """Small, dependency-light decoders for training media (the harness has its own, richer ones)."""
    if kind == "image":
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            return Image(im.convert("RGB"))
    if kind == "audio":
        import soundfile as sf

        samples, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate != 16_000:
            raise ValueError(f"{path}: training audio must be 16 kHz, got {rate}")
        return Audio(samples.mean(1))
    if kind == "video":
        import av

        with av.open(path) as container:
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            fps = float(stream.average_rate or 1)
        return Video(np.stack(frames), fps=fps)
    raise ValueError(f"unknown media kind {kind!r}")


def encode_example(processor: Processor, example: dict[str, Any]) -> dict[str, Any]:
    user, answer = example["messages"][0]["content"], example["messages"][1]["content"]
    parts: list[Any] = []
    pos = 0
    for m in _TAG.finditer(user):
        if m.start() > pos:
            parts.append(user[pos:m.start()])
        parts.append(decode_media(m[1], example["media"][m[1]]))
        pos = m.end()
    if pos < len(user):
        parts.append(user[pos:])
    enc = processor.encode([{"role": "user", "content": parts}])
    target = processor.tokenizer.encode(answer, add_special_tokens=False) + processor.tokenizer.encode(
        "<|im_end|>", add_special_tokens=False)
    enc["labels"] = [IGNORE] * len(enc["ids"]) + target
    enc["ids"] = enc["ids"] + target
    enc["modality"] = enc["modality"] + [0] * len(target)
    return enc


class EncodedCache:
    """Each example encoded once (media decoded, cropped, turned into log-mel) and reused every epoch:
    decoding dominates a tiny model's step otherwise. Keyed by the example's identity, so duplicates made by
    a re-weighted mixture share one entry."""

    def __init__(self, processor: Processor):
        self.processor = processor
        self._encoded: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

    def __call__(self, example: dict[str, Any]) -> dict[str, Any]:
        key = id(example)
        if key not in self._encoded:  # the example is kept alongside, so its id cannot be reused
            self._encoded[key] = (example, encode_example(self.processor, example))
        return self._encoded[key][1]


def collate(processor: Processor, examples: Sequence[dict[str, Any]], aux_balance_weight: float = 10.0,
            encode: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Batch:
    encode = encode or (lambda e: encode_example(processor, e))
    batch = processor.collate([encode(e) for e in examples])
    labels = batch.extras["labels"]
    weights = batch.attention_mask.float()
    weights[labels != IGNORE] = aux_balance_weight
    batch.extras["token_weights"] = weights
    return batch


def batches(examples: Sequence[dict[str, Any]], batch_size: int, seed: int, epoch: int) -> list[list[dict[str, Any]]]:
    """Shuffled (seed, epoch) batches; the same seed gives the same order on every machine."""
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [[examples[i] for i in order[k:k + batch_size]] for k in range(0, len(order), batch_size)]

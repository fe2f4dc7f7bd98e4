"""Requests to model inputs for the ``hf`` adapter: chat-templated prompts and decoded media.

Text goes through the checkpoint's own chat template (the tokenizer's for a causal LM, the processor's for a
multimodal model), so every model sees the prompt format it was trained on; media are decoded by
:mod:`harness.media` at the request's fps and frame cap and handed to the processor the way it expects
(PIL images, ``uint8 [N, H, W, 3]`` frame stacks, 16 kHz mono float arrays).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.api import AudioPart, ImagePart, Request, TextPart, VideoPart
from harness.models.hf_load import processor_modalities


@dataclass
class Prompt:
    """One request's prompt text and its media in prompt order."""

    text: str
    images: list[Any] = field(default_factory=list)
    videos: list[Any] = field(default_factory=list)
    audios: list[Any] = field(default_factory=list)


def missing_modality(request: Request, modalities: frozenset[str]) -> str | None:
    """The first media kind in the request that the model does not take, if any."""
    return next((p.type for p in request.media() if p.type not in modalities), None)


def text_prompt(request: Request, tokenizer: Any, use_chat_template: bool, system_prompt: str | None) -> str:
    """A text-only request as the tokenizer's chat template lays it out (plain joined text without one)."""
    turns = [{"role": m.role, "content": "".join(p.text for p in m.content if isinstance(p, TextPart))}
             for m in request.messages]
    if system_prompt is not None and not any(t["role"] == "system" for t in turns):
        turns.insert(0, {"role": "system", "content": system_prompt})
    if use_chat_template and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return "\n".join(t["content"] for t in turns)


def multimodal_prompt(request: Request, processor: Any, system_prompt: str | None) -> Prompt:
    """A request in the processor's chat format: each part a typed content item, media decoded."""
    from PIL import Image

    from harness.media import load_audio, load_image, load_video_audio, load_video_frames

    prompt = Prompt(text="")
    turns: list[dict[str, Any]] = []
    if system_prompt is not None and not any(m.role == "system" for m in request.messages):
        turns.append({"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    for message in request.messages:
        content: list[dict[str, Any]] = []
        for part in message.content:
            if isinstance(part, TextPart):
                content.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                content.append({"type": "image"})
                prompt.images.append(load_image(part.path))
            elif isinstance(part, VideoPart):
                frames, _ = load_video_frames(part.path, fps=part.fps, max_frames=part.max_frames,
                                              start_time=part.start_time, end_time=part.end_time)
                if getattr(processor, "video_processor", None) is not None:
                    content.append({"type": "video"})
                    prompt.videos.append(frames)
                else:  # an image-only model sees the sampled frames as images
                    content.extend({"type": "image"} for _ in frames)
                    prompt.images.extend(Image.fromarray(frame) for frame in frames)
                if part.use_audio and "audio" in processor_modalities(processor):
                    content.append({"type": "audio"})
                    prompt.audios.append(load_video_audio(part.path, start_time=part.start_time, end_time=part.end_time))
            elif isinstance(part, AudioPart):
                content.append({"type": "audio"})
                prompt.audios.append(load_audio(part.path, start_time=part.start_time, end_time=part.end_time))
        turns.append({"role": message.role, "content": content})
    prompt.text = processor.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return prompt


def processor_inputs(processor: Any, prompts: list[Prompt]) -> dict[str, Any]:
    """Left-padded tensors for a batch of prompts; only the media kinds present are passed."""
    from harness.media import SAMPLE_RATE

    processor.tokenizer.padding_side = "left"
    media: dict[str, Any] = {}
    if any(p.images for p in prompts):
        media["images"] = [im for p in prompts for im in p.images]
    if any(p.videos for p in prompts):
        media["videos"] = [v for p in prompts for v in p.videos]
    if any(p.audios for p in prompts):
        media["audio"] = [a for p in prompts for a in p.audios]
        media["sampling_rate"] = SAMPLE_RATE
    return processor(text=[p.text for p in prompts], padding=True, return_tensors="pt", **media)


def speech_inputs(processor: Any, requests: list[Request]) -> Any:
    """Each request's first audio part as a speech seq2seq model's input features (one batch)."""
    from harness.media import SAMPLE_RATE, load_audio

    parts = [next(p for p in r.media() if isinstance(p, AudioPart)) for r in requests]
    audios = [load_audio(p.path, start_time=p.start_time, end_time=p.end_time) for p in parts]
    return processor(audios, sampling_rate=SAMPLE_RATE, return_tensors="pt")

"""Requests as OpenAI chat-completion bodies: text parts, images as base64 data URLs, audio as ``input_audio``,
video as sampled frames or as one ``video_url`` (for servers that take video: vLLM, SGLang, ``harness serve``).

A ``video_url`` part also carries the request's sampling settings (``fps``, ``max_frames``, ``start_time``,
``end_time``, ``use_audio``: :data:`VIDEO_FIELDS`) inside its ``video_url`` object; servers that do not know
them ignore them, and ``harness serve`` samples the video exactly as an in-process run would.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from pathlib import Path
from typing import Any, Literal

from harness.api import AudioPart, GenerationConfig, ImagePart, Message, Request, TextPart, VideoPart

VideoMode = Literal["frames", "video_url"]
VIDEO_FIELDS = ("fps", "max_frames", "start_time", "end_time", "use_audio")
AUDIO_FORMATS = {".wav": "wav", ".mp3": "mp3"}  # what input_audio takes as it is


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def chat_body(request: Request, model: str, *, video: VideoMode = "frames", image_area: int | None = None,
              image_format: str | None = None) -> dict[str, Any]:
    """The ``/chat/completions`` body for one request (raises MediaError naming an unreadable file)."""
    body: dict[str, Any] = {"model": model, "messages": [_message(m, video, image_area, image_format)
                                                         for m in request.messages]}
    body.update(sampling(request.generation))
    return body


def sampling(gen: GenerationConfig) -> dict[str, Any]:
    """Decoding settings as OpenAI parameters: greedy is temperature 0."""
    out: dict[str, Any] = {"max_tokens": gen.max_new_tokens, "temperature": gen.temperature if gen.do_sample else 0.0}
    if gen.do_sample:
        out["top_p"] = gen.top_p
    if gen.until:
        out["stop"] = list(gen.until)
    if gen.seed is not None:
        out["seed"] = gen.seed
    return out


def _message(message: Message, video: VideoMode, image_area: int | None, image_format: str | None) -> dict[str, Any]:
    if all(isinstance(p, TextPart) for p in message.content) and message.role != "user":
        return {"role": message.role, "content": "".join(p.text for p in message.content)}  # type: ignore[union-attr]
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            parts.append(_image(part.path, image_area, image_format))
        elif isinstance(part, AudioPart):
            parts.append(_audio(part))
        elif isinstance(part, VideoPart):
            parts.extend(_video_url(part) if video == "video_url" else _video_frames(part, image_format))
        else:
            raise TypeError(f"unsupported message part {type(part).__name__}")
    return {"role": message.role, "content": parts}


def _image(path: str, area: int | None, fmt: str | None) -> dict[str, Any]:
    from harness.judges.llm import judge_image
    from harness.media import _existing

    image = judge_image(_existing(path, "image"), area=area, fmt=fmt)  # the file's own bytes unless resized
    return {"type": "image_url", "image_url": {"url": image.data_url()}}


def _audio(part: AudioPart) -> dict[str, Any]:
    from harness.media import _existing, load_audio

    path = _existing(part.path, "audio")
    fmt = AUDIO_FORMATS.get(path.suffix.lower())
    if fmt and part.start_time is None and part.end_time is None:
        return _input_audio(path.read_bytes(), fmt)
    return _input_audio(_wav(load_audio(path, start_time=part.start_time, end_time=part.end_time)), "wav")


def _input_audio(data: bytes, fmt: str) -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode("ascii"), "format": fmt}}


def _wav(samples: Any) -> bytes:
    """16 kHz float WAV: lossless for the decoded samples, so a server decodes what we would have."""
    import soundfile as sf

    from harness.media import SAMPLE_RATE

    buffer = io.BytesIO()
    sf.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def _video_frames(part: VideoPart, image_format: str | None) -> list[dict[str, Any]]:
    from PIL import Image

    from harness.media import has_audio_stream, load_video_audio, load_video_frames

    frames, _ = load_video_frames(part.path, fps=part.fps, max_frames=part.max_frames,
                                  start_time=part.start_time, end_time=part.end_time)
    fmt = (image_format or "JPEG").upper().replace("JPG", "JPEG")
    parts = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format=fmt)
        parts.append({"type": "image_url", "image_url": {"url": data_url(buffer.getvalue(), f"image/{fmt.lower()}")}})
    if part.use_audio and has_audio_stream(part.path):
        sound = load_video_audio(part.path, start_time=part.start_time, end_time=part.end_time)
        parts.append(_input_audio(_wav(sound), "wav"))
    return parts


def _video_url(part: VideoPart) -> list[dict[str, Any]]:
    from harness.media import _existing

    path = _existing(part.path, "video")
    mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
    video: dict[str, Any] = {"url": data_url(Path(path).read_bytes(), mime)}
    video.update({key: getattr(part, key) for key in VIDEO_FIELDS if getattr(part, key) is not None})
    return [{"type": "video_url", "video_url": video}]

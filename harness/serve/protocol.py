"""OpenAI chat-completion bodies as harness requests, for ``harness serve``; every defect is a :class:`BadRequest`
whose message names the field (``messages[1].content[0].image_url``), answered with HTTP 400.

Media arrive only as base64 ``data:`` URLs (or ``input_audio`` data): the server never fetches a URL nor opens
a path a client names. Decoded media are stored content-addressed in the user cache
(:func:`harness.media.stored_bytes`) and handed to the adapter as paths, as every request carries them.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import random
from dataclasses import dataclass
from typing import Any

from harness.api import AudioPart, GenerationConfig, ImagePart, Message, Part, Request, TextPart, VideoPart
from harness.models.openai_messages import VIDEO_FIELDS

ROLES = ("system", "user", "assistant")
DEFAULT_MAX_TOKENS = 256


class BadRequest(ValueError):
    """A malformed request; the message says what and where."""


@dataclass(frozen=True)
class Limits:
    max_media_bytes: int = 50 * 2**20  # per decoded media item
    max_tokens: int = 4096


def parse_chat(body: Any, served: str, limits: Limits = Limits()) -> Request:
    """The harness request for one ``/v1/chat/completions`` body addressed to the model served as ``served``."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("model") != served:
        raise BadRequest(f"unknown model {body.get('model')!r}: this server serves {served!r}")
    if body.get("stream"):
        raise BadRequest("stream=true is not supported")
    if body.get("n") not in (None, 1):
        raise BadRequest(f"only n=1 is supported, got n={body.get('n')!r}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    parsed = tuple(_message(m, f"messages[{i}]", limits) for i, m in enumerate(messages))
    return Request(task="serve", doc_id="0", messages=parsed, generation=_generation(body, limits))


def _generation(body: dict[str, Any], limits: Limits) -> GenerationConfig:
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= limits.max_tokens:
        raise BadRequest(f"max_tokens must be an integer in 1..{limits.max_tokens}, got {max_tokens!r}")
    temperature = _number(body, "temperature", 1.0, 0.0, 2.0)  # OpenAI's default is sampling at 1
    top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop):
        raise BadRequest("stop must be a string or a list of non-empty strings")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BadRequest(f"seed must be an integer, got {seed!r}")
    if seed is None and temperature > 0:  # unseeded sampling differs from call to call, as OpenAI's does
        seed = random.getrandbits(31)
    return GenerationConfig(max_new_tokens=max_tokens, do_sample=temperature > 0, temperature=temperature,
                            top_p=top_p, until=tuple(stop), seed=seed)


def _number(body: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"{key} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _message(message: Any, where: str, limits: Limits) -> Message:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise BadRequest(f"{where} must be an object with role one of {', '.join(ROLES)}")
    content = message.get("content")
    if isinstance(content, str):
        return Message(message["role"], (TextPart(content),))
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content must be a string or a list of parts")
    parts = tuple(_part(p, f"{where}.content[{j}]", limits) for j, p in enumerate(content))
    return Message(message["role"], parts)


def _part(part: Any, where: str, limits: Limits) -> Part:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise BadRequest(f"{where}.text must be a string")
        return TextPart(part["text"])
    if kind == "image_url":
        return ImagePart(_media_url(part.get("image_url"), f"{where}.image_url", "image", limits))
    if kind == "video_url":
        video = part.get("video_url")
        path = _media_url(video, f"{where}.video_url", "video", limits)
        settings = {k: video[k] for k in VIDEO_FIELDS if video.get(k) is not None}
        try:
            return VideoPart(path, **settings)
        except (TypeError, ValueError) as e:
            raise BadRequest(f"{where}.video_url: {e}") from None
    if kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise BadRequest(f"{where}.input_audio must be an object with base64 data")
        fmt = str(audio.get("format") or "wav").lower()
        if fmt not in ("wav", "mp3", "flac"):
            raise BadRequest(f"{where}.input_audio.format must be wav, mp3 or flac, got {fmt!r}")
        return AudioPart(_store(audio["data"], f".{fmt}", f"{where}.input_audio.data", limits))
    raise BadRequest(f"{where}: unsupported part type {kind!r} (text, image_url, video_url, input_audio)")


def _media_url(obj: Any, where: str, kind: str, limits: Limits) -> str:
    url = obj.get("url") if isinstance(obj, dict) else None
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise BadRequest(f"{where}: only base64 data URLs are accepted (data:{kind}/...;base64,...)")
    header, _, data = url.partition(";base64,")
    mime = header[len("data:"):]
    if not mime.startswith(f"{kind}/"):
        raise BadRequest(f"{where}: expected a {kind}/* data URL, got {mime or 'no type'}")
    suffix = mimetypes.guess_extension(mime) or f".{mime.split('/')[-1]}"
    return _store(data, suffix, where, limits)


def _store(data: str, suffix: str, where: str, limits: Limits) -> str:
    from harness.media import stored_bytes

    if len(data) * 3 // 4 > limits.max_media_bytes + 3:  # checked before decoding anything that large
        raise BadRequest(f"{where}: media of about {len(data) * 3 // 4} bytes exceeds the limit of "
                         f"{limits.max_media_bytes} bytes")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: invalid base64 data") from None
    if not raw:
        raise BadRequest(f"{where}: empty media")
    return str(stored_bytes(raw, suffix))

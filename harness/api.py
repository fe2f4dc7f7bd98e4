"""Typed contracts between tasks, the runner and model adapters.

Requests carry media as *paths* (never decoded tensors) so that they are hashable, cacheable and cheap
to ship between processes; the adapter decides how to decode them (see :mod:`harness.media`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, Sequence, Union, runtime_checkable

# --------------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True)
class ImagePart:
    path: str
    type: Literal["image"] = "image"


def _check_window(part: "VideoPart | AudioPart") -> None:
    """A window is ``[start_time, end_time)`` in seconds of the file's own clock; either end may be open (None:
    the file's start or end). Checks that need no decoding happen here; the end against the file's duration
    is checked by the preflight and the loaders (:func:`harness.media.window`)."""
    start, end = part.start_time, part.end_time
    if start is not None and not start >= 0:
        raise ValueError(f"{part.type} file {part.path}: window start {start} s is negative")
    if end is not None and not end > 0:
        raise ValueError(f"{part.type} file {part.path}: window end {end} s is not after 0 s")
    if start is not None and end is not None and not start < end:
        raise ValueError(f"{part.type} file {part.path}: window start {start} s is not before its end {end} s")


@dataclass(frozen=True)
class VideoPart:
    """A video file; the adapter samples frames at ``fps`` and keeps at most ``max_frames``. With a window
    (``start_time`` / ``end_time``, seconds) only that stretch exists for the model: frames and, with
    ``use_audio``, the soundtrack are decoded inside it, and the fps / frame cap apply to the window (a question
    asked at time t of a stream sees the video up to t)."""

    path: str
    fps: float = 1.0
    max_frames: int = 64
    use_audio: bool = False
    start_time: float | None = None
    end_time: float | None = None
    type: Literal["video"] = "video"

    def __post_init__(self) -> None:
        _check_window(self)


@dataclass(frozen=True)
class AudioPart:
    """An audio file; adapters resample it to 16 kHz mono. A window (``start_time`` / ``end_time``, seconds)
    keeps only that stretch, as for :class:`VideoPart`."""

    path: str
    start_time: float | None = None
    end_time: float | None = None
    type: Literal["audio"] = "audio"

    def __post_init__(self) -> None:
        _check_window(self)


# Window fields are left out of a part's serialised form while unset, so that requests without windows keep
# the hashes (and cache entries) they had before windows existed.
WINDOW_FIELDS = ("start_time", "end_time")


Part = Union[TextPart, ImagePart, VideoPart, AudioPart]
PART_TYPES: dict[str, type] = {"text": TextPart, "image": ImagePart, "video": VideoPart, "audio": AudioPart}


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: tuple[Part, ...]

    @staticmethod
    def user(*parts: Part | str) -> "Message":
        return Message("user", tuple(TextPart(p) if isinstance(p, str) else p for p in parts))

    @staticmethod
    def system(text: str) -> "Message":
        return Message("system", (TextPart(text),))


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings. Greedy (``do_sample=False``) outputs are cacheable; sampled outputs are not."""

    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    until: tuple[str, ...] = ()
    seed: int | None = None


OutputKind = Literal["text", "audio", "image"]


@dataclass(frozen=True)
class Reference:
    """The gold answer in the form a good model would produce it. Only reference adapters (``oracle``) read it;
    it is excluded from the request hash."""

    text: str = ""
    audio: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class Request:
    task: str
    doc_id: str
    messages: tuple[Message, ...]
    generation: GenerationConfig = GenerationConfig()
    output: OutputKind = "text"
    choices: tuple[str, ...] = ()  # option letters for multiple choice (lets the random baseline pick one)
    reference: Reference | None = field(default=None, compare=False)

    def to_dict(self, with_reference: bool = False) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not with_reference:
            d.pop("reference")
        for message in d["messages"]:
            for part in message["content"]:
                for key in WINDOW_FIELDS:
                    if key in part and part[key] is None:
                        del part[key]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Request":
        msgs = tuple(
            Message(m["role"], tuple(PART_TYPES[p["type"]](**p) for p in m["content"])) for m in d["messages"]
        )
        gen = dict(d.get("generation") or {})
        gen["until"] = tuple(gen.get("until", ()))
        ref = d.get("reference")
        return Request(
            task=d["task"],
            doc_id=str(d["doc_id"]),
            messages=msgs,
            generation=GenerationConfig(**gen),
            output=d.get("output", "text"),
            choices=tuple(d.get("choices", ())),
            reference=Reference(**ref) if ref else None,
        )

    def hash(self) -> str:
        """Stable content hash: everything the model sees, nothing it does not (the reference is excluded)."""
        return stable_hash(self.to_dict())

    def text(self) -> str:
        """All text parts joined; handy for text-only adapters and logs."""
        return "\n".join(p.text for m in self.messages for p in m.content if isinstance(p, TextPart))

    def media(self) -> list[Part]:
        return [p for m in self.messages for p in m.content if not isinstance(p, TextPart)]


@dataclass
class Response:
    """What a model produced for one request. ``stats`` carries optional per-sample statistics
    (routing counts, token counts); ``error`` is set instead of outputs when the sample failed."""

    text: str = ""
    audio: str | None = None
    image: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A new dict of the fields; ``stats`` is the response's own (shared, not copied: it is only read when
        written out, and a deep copy of the routing counts of every sample was a hot spot of the run loop)."""
        return {"text": self.text, "audio": self.audio, "image": self.image, "stats": self.stats, "error": self.error}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Response":
        return Response(**{k: d.get(k) for k in ("text", "audio", "image", "error")} | {"stats": d.get("stats") or {}})


# --------------------------------------------------------------------------------------------------
# Model adapters


@runtime_checkable
class ModelAdapter(Protocol):
    """A model behind the harness. ``generate`` must return one Response per request, in order.

    An adapter may raise for a whole batch; the runner then retries the requests one by one so that a single
    bad sample cannot take the others down. Per-sample failures may also be returned as ``Response(error=...)``.
    An adapter with weights may also define ``load()``: the run calls it once before the first sample, so that a
    model that cannot load fails the run there (once) instead of failing every sample.
    """

    name: str

    def fingerprint(self) -> str:
        """Identifies weights + settings; part of every cache key."""
        ...

    def generate(self, requests: Sequence[Request]) -> list[Response]: ...


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` after ``context``: plain strings, no chat template, as in lm-eval."""

    context: str
    continuation: str


@runtime_checkable
class LikelihoodAdapter(ModelAdapter, Protocol):
    """An adapter that can also score text (optional; tasks with ``scoring: likelihood`` need it)."""

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[tuple[float, bool]]:
        """Per request, in order: ``(log P(continuation | context), whether greedy decoding yields it)``."""
        ...


# --------------------------------------------------------------------------------------------------
# Errors


class HarnessError(Exception):
    """A problem with the user's input or environment, complete in its message: the runner records it against
    one sample; the command line prints it as one line (exit 2). Its other kinds are in :mod:`harness.errors`."""


class MediaError(HarnessError):
    """A media file is missing or cannot be decoded. The message names the file (and sample when known)."""


class DocumentError(HarnessError):
    """A dataset row is malformed."""


class ModelUnavailable(HarnessError):
    """The model cannot answer at all (its endpoint is down, its key is unset): not one sample's error but the
    run's, which stops with this message instead of failing every remaining sample. ``responses`` holds the
    batch's answers that did arrive (None for the others); the runner keeps them, so a rerun asks only for the
    rest."""

    def __init__(self, message: str, responses: Sequence["Response | None"] = ()):
        super().__init__(message)
        self.responses = list(responses)


# --------------------------------------------------------------------------------------------------
# Hashing


def stable_hash(obj: Any, n: int = 16) -> str:
    """sha256 of canonical JSON (sorted keys, no whitespace), truncated to ``n`` hex chars."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]

"""Small helpers shared by the task plugins."""

from __future__ import annotations

from typing import Any, Mapping

from harness.api import DocumentError

LETTERS = "ABCDEFGHIJ"


def media_field(doc: Mapping[str, Any], key: str, task: str) -> str:
    """The relative media path a row names under ``key``: a plain string (our fixtures, local JSONL) or a
    hub ``Image``/``Audio``/``Video`` feature read with ``decode=False`` (``{"path": ..., "bytes": ...}``)."""
    value = doc.get(key)
    if isinstance(value, Mapping):
        value = value.get("path")
    if not isinstance(value, str) or not value:
        raise DocumentError(f"task {task}: row has no media path in field {key!r}")
    return value


def spec_media(doc: Mapping[str, Any], spec: Mapping[str, Any], task: str) -> str:
    """The relative media path a YAML media spec names for a row: its ``field`` column, or its ``path``
    template filled from the row's columns."""
    if "field" in spec:
        return media_field(doc, spec["field"], task)
    try:
        return spec["path"].format(**doc)
    except KeyError as e:
        raise DocumentError(f"task {task}: row lacks field {e} of the media path") from None


def clock_seconds(value: Any) -> float:
    """Seconds from a clock string ("HH:MM:SS", "MM:SS" or "SS", each field a number: the last field is
    seconds, each earlier one 60 times the next) or a plain number (seconds already)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    fields = str(value).strip().split(":")
    try:
        return sum(float(x) * 60 ** i for i, x in enumerate(reversed(fields)))
    except ValueError:
        raise DocumentError(f"time {value!r} is not HH:MM:SS, MM:SS or seconds") from None


def present(value: Any) -> bool:
    """False for the empty cells of hub tables: None, NaN and the string "nan" (MMBench stores all three)."""
    if value is None:
        return False
    if isinstance(value, float) and value != value:
        return False
    return str(value).strip().lower() not in ("", "nan")


def audio_parts(task: Any, doc: Mapping[str, Any], key: str | None) -> list[Any]:
    """The row's audio clip as the one media part (none when ``key`` is unset: text-only variants)."""
    from harness.api import AudioPart

    return [AudioPart(task.media_path(media_field(doc, key, task.name)))] if key else []


def embedded_image_path(value: Any, task: str) -> str:
    """A path for an image a row carries inline (MME-RealWorld's base64 ``bytes`` column, or a hub ``Image``
    read with ``decode=False`` whose ``path`` is empty): the bytes are written once to a content-addressed
    file in the user cache (``$XDG_CACHE_HOME/unimoe/media``), since requests carry media as paths."""
    import base64
    import binascii

    from harness.media import stored_bytes

    raw = value.get("bytes") if isinstance(value, Mapping) else value
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
    except (binascii.Error, TypeError, ValueError) as e:
        raise DocumentError(f"task {task}: row has no decodable embedded image ({e})") from None
    return str(stored_bytes(data, ".img"))


def numbered(rows: Any, key: str) -> Any:
    """Rows of a split whose rows carry no identifier (TinyStories, MultiGen-20M), each given ``key`` = its
    position in the split, the index the reference scripts name outputs by; error placeholders pass through."""
    for index, row in enumerate(rows):
        yield {**row, key: str(index)} if isinstance(row, Mapping) else row

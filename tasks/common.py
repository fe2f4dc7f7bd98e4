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

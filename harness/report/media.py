"""Media for a self-contained page: small JPEG thumbnails, video key frames, short audio clips as data URLs.

Every file is read once and stored once however many samples show it; a byte budget keeps the page small
(past it, a sample shows the file's path instead of its thumbnail). A file that cannot be decoded shows
a one-line reason, never stops the report.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.api import AudioPart, HarnessError, ImagePart, VideoPart

THUMB_PX = 160
KEY_FRAMES = 4
AUDIO_SECONDS = 15.0
AUDIO_RATE = 8_000


@dataclass
class MediaStore:
    """Data URLs by id; ``budget`` bytes in all."""

    budget: int = 12 << 20
    used: int = 0
    items: dict[str, dict[str, str]] = field(default_factory=dict)
    _ids: dict[tuple, str] = field(default_factory=dict)

    def add(self, part: Any) -> str | None:
        """An id for the part's thumbnail (shared by identical parts), or None for a part with no media."""
        key = _key(part)
        if key is None:
            return None
        if key in self._ids:
            return self._ids[key]
        media_id = f"m{len(self._ids)}"
        self._ids[key] = media_id
        kind, path = key[0], str(key[1])
        entry = {"kind": kind, "path": path}
        if self.used >= self.budget:
            entry["note"] = "not embedded (the report's media budget is spent)"
        else:
            try:
                entry["url"] = thumbnail_url(part)
                self.used += len(entry["url"])
            except (HarnessError, OSError, ValueError) as e:
                entry["note"] = f"cannot show: {e}"
        self.items[media_id] = entry
        return media_id


def _key(part: Any) -> tuple | None:
    if isinstance(part, ImagePart):
        return ("image", part.path)
    if isinstance(part, VideoPart):
        return ("video", part.path, part.start_time, part.end_time)
    if isinstance(part, AudioPart):
        return ("audio", part.path, part.start_time, part.end_time)
    return None


def thumbnail_url(part: Any) -> str:
    from harness.media import load_audio, load_image, load_video_frames

    if isinstance(part, ImagePart):
        return _jpeg(np.asarray(load_image(part.path)))
    if isinstance(part, VideoPart):
        frames, _ = load_video_frames(part.path, fps=1.0, max_frames=KEY_FRAMES, start_time=part.start_time,
                                      end_time=part.end_time)
        return _jpeg(np.concatenate([_fit(f) for f in frames], axis=1))
    samples = load_audio(part.path, sample_rate=AUDIO_RATE, start_time=part.start_time, end_time=part.end_time)
    return _wav(samples[: int(AUDIO_SECONDS * AUDIO_RATE)])


def _fit(frame: np.ndarray, height: int = THUMB_PX * 3 // 4) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(frame)
    width = max(1, round(image.width * height / image.height))
    return np.asarray(image.resize((width, height)))


def _jpeg(pixels: np.ndarray) -> str:
    from PIL import Image

    image = Image.fromarray(pixels)
    image.thumbnail((THUMB_PX * KEY_FRAMES, THUMB_PX))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _wav(samples: np.ndarray) -> str:
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1, 1), AUDIO_RATE, format="WAV", subtype="PCM_U8")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()

"""Cheap checks that a request's media files exist and look decodable, before any model time is spent.

The adapter still decodes (and may still fail); this catches missing and corrupt files, and time windows
that do not fit the file, for every model, including the reference adapters that never open media, and
names the sample and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.api import MediaError, Request


def check_media(request: Request) -> None:
    for part in request.media():
        path = Path(part.path)
        where = f"sample {request.task}/{request.doc_id}: {part.type} file {path}"
        if not path.is_file():
            raise MediaError(f"{where} does not exist")
        if path.stat().st_size == 0:
            raise MediaError(f"{where} is empty")
        try:
            _PROBES[part.type](path)
            if getattr(part, "start_time", None) is not None or getattr(part, "end_time", None) is not None:
                _check_window(part, f"sample {request.task}/{request.doc_id}")
        except MediaError:
            raise
        except Exception as e:
            raise MediaError(f"{where} cannot be decoded ({type(e).__name__}: {e})") from e


def _check_window(part: Any, sample: str) -> None:
    """The part's time window must lie inside the file (the end against its duration, see media.window)."""
    from harness.media import media_duration, window

    try:
        duration = media_duration(part.path, part.type)
    except MediaError as e:
        raise MediaError(f"{sample}: {e}") from e
    window(duration, part.start_time, part.end_time, f"{sample}: {part.type} file {part.path}")


def _probe_image(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()


def _probe_av(path: Path, kind: str) -> None:
    import av

    with av.open(str(path)) as container:
        streams = container.streams.video if kind == "video" else container.streams.audio
        if not streams:
            raise MediaError(f"{path} has no {kind} stream")
        next(container.decode(streams[0]))  # decode one frame: a truncated file fails here


def _probe_audio(path: Path) -> None:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except RuntimeError:
        _probe_av(path, "audio")  # mp3/aac/m4a and audio inside containers
        return
    if info.frames == 0:
        raise MediaError(f"{path} holds no audio frames")


_PROBES = {
    "image": _probe_image,
    "video": lambda p: _probe_av(p, "video"),
    "audio": _probe_audio,
}

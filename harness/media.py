"""Decoding the media that requests name by path: images, video frames and audio, for model adapters.

Tasks never decode media; they put paths in a :class:`~harness.api.Request` and the adapter calls these
loaders, so decoding happens once, lazily, in the process that needs the pixels or samples. Every failure
raises :class:`~harness.api.MediaError` naming the file; the runner adds the sample id.

Video follows the released Uni-MoE-2 reader (``uni_moe/vision_utils.py``): it takes ``duration * fps``
frames but never more than the cap, spread uniformly over the whole clip, so a long video is covered end
to end at a lower rate rather than cut short. We sample the centre of each of the ``n`` equal segments
(``t_k = (k + 0.5) * duration / n``), which is exactly "one frame per second, mid-second" under the cap
and avoids the first and last frames that the released code has to special-case as often corrupt.
Model-specific rounding (Uni-MoE's minimum of 8 frames and even frame counts) stays in the adapter.

A *window* (``start_time`` / ``end_time`` on a video or audio part) restricts everything to that stretch of
the file: frames are sampled over the window as if it were the whole clip (no frame shown before the start or
from the end on can appear), and audio is cut to exactly the window's length. Streaming benchmarks use it to
show a model the video only up to the moment a question is asked. :func:`window` validates it against the
file's duration, allowing :data:`WINDOW_SLACK_S` of overshoot for whole-second timestamps that round up.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import math
from collections import deque
from concurrent.futures import Future
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Hashable, Iterator, TypeVar

import numpy as np

from harness.api import MediaError

SAMPLE_RATE = 16_000  # every audio encoder in the Uni-MoE family (Whisper-style) expects 16 kHz mono

# Whole-second annotations (StreamingBench's "HH:MM:SS") may round a clip's last moment up past its measured
# duration; a window may end this far beyond the duration and is then clamped to it. Further is an error.
WINDOW_SLACK_S = 1.0

# When the next wanted frame is this far past the last decoded one, seek instead of decoding forward:
# seeking lands on a keyframe and costs one GOP, decoding forward costs every frame in between.
_SEEK_AHEAD_S = 4.0
# Decode order runs ahead of display order by a few frames (B-frames); no frame shown before a packet's time
# comes this long after it in the stream. Only speed depends on it: a frame found missing is decoded after all.
_REORDER_SLACK_S = 1.0


# --------------------------------------------------------------------------------------------------
# Decoded ahead of time (harness.prefetch)

Loader = TypeVar("Loader", bound=Callable[..., Any])
_LOADERS: dict[str, Callable[..., Any]] = {}
# Decodings started ahead of the loader call that will want them, by load key; each is taken by one call.
_AHEAD: dict[Hashable, deque[Future]] = {}


def load_key(loader: str, *args: Any, **kwargs: Any) -> Hashable:
    """What identifies one decoding: the loader and every argument it will run with (defaults filled in, paths
    as strings), so a prefetcher's call and the adapter's own call agree however each spells its arguments."""
    bound = inspect.signature(_LOADERS[loader]).bind(*args, **kwargs)
    bound.apply_defaults()
    return (loader, *((k, str(v) if isinstance(v, Path) else v) for k, v in bound.arguments.items()))


def offer(key: Hashable, decoding: Future) -> None:
    """Make a decoding started elsewhere (a worker process) the answer to the next loader call with ``key``."""
    _AHEAD.setdefault(key, deque()).append(decoding)


def withdraw(key: Hashable, decoding: Future) -> None:
    """Forget an offered decoding if no loader call took it (bounded memory)."""
    waiting = _AHEAD.get(key)
    if waiting and decoding in waiting:
        waiting.remove(decoding)
        decoding.cancel()
        if not waiting:
            del _AHEAD[key]


def decode(loader: str, *args: Any, **kwargs: Any) -> Any:
    """Run the named loader here (what a prefetch worker does)."""
    return _LOADERS[loader](*args, **kwargs)


def _prefetchable(fn: Loader) -> Loader:
    """A loader that first takes a decoding offered for exactly its arguments, else decodes itself."""
    _LOADERS[fn.__name__] = fn

    @functools.wraps(fn)
    def load(*args: Any, **kwargs: Any) -> Any:
        if _AHEAD:
            key = load_key(fn.__name__, *args, **kwargs)
            waiting = _AHEAD.get(key)
            if waiting:
                decoding = waiting.popleft()
                if not waiting:
                    del _AHEAD[key]
                if not decoding.cancelled():
                    try:
                        return decoding.result()
                    except MediaError:
                        raise  # the file's own failure, found by the worker
                    except Exception:
                        pass  # the worker's failure (e.g. it died): decode here instead
        return fn(*args, **kwargs)

    return load  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# Images


@_prefetchable
def load_image(path: str | Path) -> "Image.Image":  # noqa: F821  (PIL is imported lazily)
    """An RGB PIL image, fully read so that the file is closed on return."""
    from PIL import Image

    path = _existing(path, "image")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")  # convert() loads the pixels
    except Exception as e:
        raise MediaError(f"image file {path} cannot be decoded ({type(e).__name__}: {e})") from e


def stored_bytes(data: bytes, suffix: str = "") -> Path:
    """``data`` as a content-addressed file in the user cache (``$XDG_CACHE_HOME/unimoe/media``), written once
    and atomically: requests and responses carry media as paths, but some media arrive as bytes (images
    inlined in a dataset row, a baseline's generated output)."""
    import hashlib
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unimoe" / "media"
    path = base / f"{hashlib.sha256(data).hexdigest()}{suffix}"
    if not path.is_file():
        base.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def image_array(image: Any) -> np.ndarray:
    """A uint8 array from an image path (decoded to RGB), a PIL image (as RGB) or a uint8 array (grey or RGB,
    kept as it is): the one entry point for metrics that take images in any of these forms."""
    from PIL import Image

    if isinstance(image, (str, Path)):
        return np.asarray(load_image(image))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image arrays must be uint8 (0..255), got {array.dtype}")
    return array


# --------------------------------------------------------------------------------------------------
# Video frames


def sample_times(duration: float, fps: float, max_frames: int) -> np.ndarray:
    """Segment-centre timestamps (seconds): ``duration * fps`` of them, at most ``max_frames``, at least one."""
    if fps <= 0 or max_frames < 1:
        raise ValueError(f"need fps > 0 and max_frames >= 1, got fps={fps}, max_frames={max_frames}")
    n = min(max(int(math.floor(duration * fps + 1e-6)), 1), max_frames)
    return (np.arange(n) + 0.5) * (duration / n)


def window(duration: float, start_time: float | None, end_time: float | None, where: str) -> tuple[float, float]:
    """The window ``[start, end)`` in seconds, validated against a file of ``duration`` seconds (``where``
    names the file, and the sample when known, in the error). Unset ends default to the file's ends."""
    start = 0.0 if start_time is None else float(start_time)
    end = float(duration) if end_time is None else float(end_time)
    if start < 0:
        raise MediaError(f"{where}: window start {start:g} s is negative")
    if end > duration + WINDOW_SLACK_S:
        raise MediaError(f"{where}: window end {end:g} s is beyond the file's duration of {duration:.3f} s")
    end = min(end, float(duration))
    if not start < end:
        raise MediaError(f"{where}: window start {start:g} s is not before its end {end:g} s "
                         f"(duration {duration:.3f} s)")
    return start, end


def media_duration(path: str | Path, kind: str) -> float:
    """Seconds of a video (its video stream) or an audio file, from headers only (no decoding)."""
    path = _existing(path, kind)
    if kind == "audio":
        import soundfile as sf

        try:
            info = sf.info(str(path))
            return info.frames / info.samplerate
        except RuntimeError:
            pass  # not a soundfile format: ask the container
    import av

    try:
        with av.open(str(path)) as container:
            if kind == "video" and container.streams.video:
                return _video_duration(container, container.streams.video[0])
            if container.streams.audio:
                stream = container.streams.audio[0]
                if stream.duration and stream.time_base:
                    return float(stream.duration * stream.time_base)
            if container.duration:
                return container.duration / av.time_base
    except Exception as e:
        raise MediaError(f"{kind} file {path} cannot be read ({type(e).__name__}: {e})") from e
    raise MediaError(f"{kind} file {path}: duration unknown")


@_prefetchable
def load_video_frames(path: str | Path, fps: float = 1.0, max_frames: int = 64,
                      start_time: float | None = None, end_time: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``uint8 [N, H, W, 3]`` and their presentation times in seconds ``float64 [N]``.

    Each frame is the one on screen at its sample time (the last frame whose timestamp is not after it).
    With a window the samples cover ``[start_time, end_time)`` only (see :func:`window`).
    """
    import av

    path = _existing(path, "video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"video file {path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start, end = window(_video_duration(container, stream), start_time, end_time, f"video file {path}")
            frames, times = _frames_at(container, stream, start + sample_times(end - start, fps, max_frames), end)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"video file {path} cannot be decoded ({type(e).__name__}: {e})") from e
    if not frames:
        raise MediaError(f"video file {path} has no decodable frames")
    if len({f.shape for f in frames}) > 1:
        raise MediaError(f"video file {path} changes frame size mid-stream; not supported")
    return np.stack(frames), np.asarray(times, dtype=np.float64)


def _video_duration(container: Any, stream: Any) -> float:
    """Seconds, from the stream header, else the container header, else the last packet's end."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        import av

        return container.duration / av.time_base
    end = 0.0
    for packet in container.demux(stream):  # no decoding: cheap even for long files
        if packet.pts is not None and packet.time_base:
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    container.seek(0)
    return end


def _frames_at(container: Any, stream: Any, times: np.ndarray, end: float) -> tuple[list[np.ndarray], list[float]]:
    time_base: Fraction = stream.time_base
    start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0

    def seconds(pts: int) -> float:
        return float(pts * time_base) - start

    def seek(t: float) -> None:  # to the keyframe at or before t
        container.seek(int((t + start) / time_base), stream=stream, backward=True)

    # Decoding runs forward from the start when no gap between wanted frames calls for a seek: only then can a
    # demux pass over the same stretch say in advance which frames will be on screen.
    forward = len(times) > 0 and times[0] <= _SEEK_AHEAD_S and bool(np.all(np.diff(times) <= _SEEK_AHEAD_S))
    on_screen = _on_screen(container, stream, times, seconds) if forward else None
    frames, stamps, shown = _pick_frames(container, stream, times, end, seconds, seek, on_screen)
    if on_screen is not None and shown != on_screen[:len(shown)]:
        # a frame the packets promised did not decode (a damaged packet, a codec that renumbers its frames):
        # one of the skipped frames may be the one on screen, so decode them all
        container.seek(0)
        frames, stamps, _ = _pick_frames(container, stream, times, end, seconds, seek, None)
    return frames, stamps


def _on_screen(container: Any, stream: Any, times: np.ndarray, seconds: Callable[[int], float]) -> list[int] | None:
    """The pts of the frame on screen at each of ``times`` (the last frame not after it, else the first frame),
    read from the packets: a demux pass without decoding (4 ms for a 30 s clip) that lets decoding skip the
    non-reference frames nobody will see, about half of an H.264 stream's B-frames. None when a packet has no pts
    (nothing is skipped then)."""
    pts = []
    for packet in container.demux(stream):
        if packet.size:
            if packet.pts is None:
                pts = []
                break
            pts.append(packet.pts)
            if seconds(packet.pts) > times[-1] + _REORDER_SLACK_S:
                break  # later packets hold later frames (decode order lags display order by a few frames)
    container.seek(0)
    if not pts:
        return None
    ordered = sorted(set(pts))
    stamps = [seconds(p) for p in ordered]
    return [ordered[max(bisect.bisect_right(stamps, t) - 1, 0)] for t in times]


def _pick_frames(container: Any, stream: Any, times: np.ndarray, end: float, seconds: Callable[[int], float],
                 seek: Callable[[float], None], on_screen: list[int] | None
                 ) -> tuple[list[np.ndarray], list[float], list[int | None]]:
    """For each time, the frame on screen then (decoding forward, or seeking when the next time is far ahead);
    with ``on_screen``, only those of the non-reference frames are decoded."""
    keep = None if on_screen is None else set(on_screen)

    def frame_time(frame: Any) -> float:
        return seconds(frame.pts) if frame.pts is not None else float(frame.time or 0.0)

    frames: list[np.ndarray] = []
    stamps: list[float] = []
    picked: list[int | None] = []
    decoded: Iterator[Any] | None = None
    shown = pending = None  # shown: latest frame at or before t; pending: first frame after t
    for t in times:
        if decoded is None:
            if t > _SEEK_AHEAD_S:  # a window that starts late: seek rather than decode the prefix
                seek(t)
            decoded = _decode(container, stream, keep)
        elif pending is not None and t - frame_time(pending) > _SEEK_AHEAD_S:
            seek(t)
            decoded = _decode(container, stream, keep)
            shown = pending = None
        while True:
            if pending is None:
                pending = next(decoded, None)
                if pending is None:  # end of stream: keep showing the last frame
                    break
            if frame_time(pending) > t:
                break
            shown, pending = pending, None
        chosen = shown if shown is not None else pending  # a seek may land just after t
        if chosen is None or frame_time(chosen) >= end:  # never a frame from the window's end on
            break
        frames.append(chosen.to_ndarray(format="rgb24"))
        stamps.append(frame_time(chosen))
        picked.append(chosen.pts)
    return frames, stamps, picked


def _decode(container: Any, stream: Any, keep: set[int] | None) -> Iterator[Any]:
    """The stream's frames in presentation order; with ``keep``, the decoder drops the non-reference frames whose
    pts is not in it (FFmpeg reads the setting per packet, frame-threaded decoders included)."""
    context = stream.codec_context
    try:
        for packet in container.demux(stream):
            if keep is not None:
                context.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in keep else "NONREF"
            yield from packet.decode()
    finally:
        context.skip_frame = "DEFAULT"


# --------------------------------------------------------------------------------------------------
# Audio


@_prefetchable
def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE,
               start_time: float | None = None, end_time: float | None = None) -> np.ndarray:
    """Mono float32 samples at ``sample_rate``. WAV/FLAC/OGG through soundfile; anything else (mp3, aac,
    a container's audio track) through PyAV. With a window, exactly ``round((end - start) * sample_rate)``
    samples of ``[start_time, end_time)`` (see :func:`window`)."""
    import soundfile as sf

    path = _existing(path, "audio")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
    except sf.LibsndfileError:
        mono, rate = _decode_audio_stream(path, "audio")
    except Exception as e:
        raise MediaError(f"audio file {path} cannot be decoded ({type(e).__name__}: {e})") from e
    if start_time is not None or end_time is not None:
        bounds = window(mono.size / rate, start_time, end_time, f"audio file {path}")
        return _finish(_cut(mono, rate, *bounds), rate, sample_rate, path, "audio", bounds)
    return _finish(mono, rate, sample_rate, path, "audio")


@_prefetchable
def load_video_audio(path: str | Path, sample_rate: int = SAMPLE_RATE,
                     start_time: float | None = None, end_time: float | None = None) -> np.ndarray:
    """A video's own soundtrack, mono float32 at ``sample_rate`` (for audio-visual tasks). A window is in the
    video's time and validated against the video's duration; where the track is shorter than the window
    (soundtracks often stop a few milliseconds early) the rest is silence, so the length is exactly the
    window's."""
    path = _existing(path, "video")
    mono, rate = _decode_audio_stream(path, "video")
    if start_time is not None or end_time is not None:
        bounds = window(media_duration(path, "video"), start_time, end_time, f"video file {path}")
        return _finish(_cut(mono, rate, *bounds), rate, sample_rate, path, "video", bounds)
    return _finish(mono, rate, sample_rate, path, "video")


def has_audio_stream(path: str | Path) -> bool:
    """Whether a video file carries a soundtrack (a video without one is shown without audio, as the released
    evaluation wrapper does, instead of failing the sample)."""
    import av

    path = _existing(path, "video")
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except Exception as e:
        raise MediaError(f"video file {path} cannot be opened ({type(e).__name__}: {e})") from e


def _cut(mono: np.ndarray, rate: int, start: float, end: float) -> np.ndarray:
    """Samples ``[start, end)`` at the source rate, zero-padded where the signal stops before ``end``."""
    first, last = int(round(start * rate)), int(round(end * rate))
    piece = mono[first:last]
    return np.pad(piece, (0, last - first - piece.size)) if piece.size < last - first else piece


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``, Kaiser-windowed anti-aliasing filter)."""
    if orig_rate == target_rate:
        return samples
    from scipy.signal import resample_poly

    g = math.gcd(int(orig_rate), int(target_rate))
    return resample_poly(samples, int(target_rate) // g, int(orig_rate) // g)


def _decode_audio_stream(path: Path, kind: str) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError(f"{kind} file {path} has no audio stream")
            stream = container.streams.audio[0]
            # Planar float keeps channels apart ([channels, n] per frame); we average them ourselves.
            to_planar = av.AudioResampler(format="fltp")
            chunks = [
                out.to_ndarray() for frame in container.decode(stream) for out in to_planar.resample(frame)
            ]
            chunks += [out.to_ndarray() for out in to_planar.resample(None)]  # flush
            rate = stream.rate or stream.codec_context.sample_rate
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"{kind} file {path}: audio cannot be decoded ({type(e).__name__}: {e})") from e
    if not chunks:
        raise MediaError(f"{kind} file {path}: audio stream holds no samples")
    return np.concatenate(chunks, axis=1).mean(axis=0), int(rate)


def _finish(mono: np.ndarray, rate: int, target: int, path: Path, kind: str,
            bounds: tuple[float, float] | None = None) -> np.ndarray:
    if mono.size == 0:
        raise MediaError(f"{kind} file {path} holds no audio samples")
    out = resample(mono, rate, target)
    if bounds is not None:  # resampling rounds the length by a sample or so; a window's length is exact
        n = int(round((bounds[1] - bounds[0]) * target))
        out = np.pad(out[:n], (0, max(0, n - min(out.size, n))))
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------------------------------


def _existing(path: str | Path, kind: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{kind} file {path} does not exist")
    if path.stat().st_size == 0:
        raise MediaError(f"{kind} file {path} is empty")
    return path

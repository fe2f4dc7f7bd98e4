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
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from harness.api import MediaError

SAMPLE_RATE = 16_000  # every audio encoder in the Uni-MoE family (Whisper-style) expects 16 kHz mono

# When the next wanted frame is this far past the last decoded one, seek instead of decoding forward:
# seeking lands on a keyframe and costs one GOP, decoding forward costs every frame in between.
_SEEK_AHEAD_S = 4.0


# --------------------------------------------------------------------------------------------------
# Images


def load_image(path: str | Path) -> "Image.Image":  # noqa: F821  (PIL is imported lazily)
    """An RGB PIL image, fully read so that the file is closed on return."""
    from PIL import Image

    path = _existing(path, "image")
    try:
        with Image.open(path) as im:
            return im.convert("RGB")  # convert() loads the pixels
    except Exception as e:
        raise MediaError(f"image file {path} cannot be decoded ({type(e).__name__}: {e})") from e


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


def load_video_frames(path: str | Path, fps: float = 1.0, max_frames: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``uint8 [N, H, W, 3]`` and their presentation times in seconds ``float64 [N]``.

    Each frame is the one on screen at its sample time (the last frame whose timestamp is not after it).
    """
    import av

    path = _existing(path, "video")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaError(f"video file {path} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            duration = _video_duration(container, stream)
            frames, times = _frames_at(container, stream, sample_times(duration, fps, max_frames))
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


def _frames_at(container: Any, stream: Any, times: np.ndarray) -> tuple[list[np.ndarray], list[float]]:
    time_base: Fraction = stream.time_base
    start = float(stream.start_time * time_base) if stream.start_time is not None else 0.0

    def frame_time(frame: Any) -> float:
        return float(frame.pts * time_base) - start if frame.pts is not None else float(frame.time or 0.0)

    frames: list[np.ndarray] = []
    stamps: list[float] = []
    decoded: Iterator[Any] | None = None
    shown = pending = None  # shown: latest frame at or before t; pending: first frame after t
    for t in times:
        if decoded is None:
            decoded = container.decode(stream)
        elif pending is not None and t - frame_time(pending) > _SEEK_AHEAD_S:
            container.seek(int((t + start) / time_base), stream=stream, backward=True)
            decoded = container.decode(stream)
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
        if chosen is None:
            break
        frames.append(chosen.to_ndarray(format="rgb24"))
        stamps.append(frame_time(chosen))
    return frames, stamps


# --------------------------------------------------------------------------------------------------
# Audio


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples at ``sample_rate``. WAV/FLAC/OGG through soundfile; anything else (mp3, aac,
    a container's audio track) through PyAV."""
    import soundfile as sf

    path = _existing(path, "audio")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        mono = data.mean(axis=1)
    except sf.LibsndfileError:
        mono, rate = _decode_audio_stream(path, "audio")
    except Exception as e:
        raise MediaError(f"audio file {path} cannot be decoded ({type(e).__name__}: {e})") from e
    return _finish(mono, rate, sample_rate, path, "audio")


def load_video_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A video's own soundtrack, mono float32 at ``sample_rate`` (for audio-visual tasks)."""
    path = _existing(path, "video")
    mono, rate = _decode_audio_stream(path, "video")
    return _finish(mono, rate, sample_rate, path, "video")


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


def _finish(mono: np.ndarray, rate: int, target: int, path: Path, kind: str) -> np.ndarray:
    if mono.size == 0:
        raise MediaError(f"{kind} file {path} holds no audio samples")
    return np.ascontiguousarray(resample(mono, rate, target), dtype=np.float32)


# --------------------------------------------------------------------------------------------------


def _existing(path: str | Path, kind: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{kind} file {path} does not exist")
    if path.stat().st_size == 0:
        raise MediaError(f"{kind} file {path} is empty")
    return path

"""Media loading: the frame on screen at each sampled second, 16 kHz mono audio, and errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from harness.api import MediaError
from harness.media import load_audio, load_image, load_video_audio, load_video_frames, sample_times
from tasks.fixtures.writers import photo, write_aac, write_png, write_video, write_wav

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
FPS = 10


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [photo(name, (64, 48)) for name in PHOTOS]


@pytest.fixture(scope="module")
def slideshow(tmp_path_factory: pytest.TempPathFactory, photos: list[np.ndarray]) -> Path:
    """12 s at 10 fps: second ``s`` shows photo ``s % 4``; a keyframe every second so that seeks land near."""
    frames = np.stack([photos[second % len(photos)] for second in range(12) for _ in range(FPS)])
    return write_video(tmp_path_factory.mktemp("video") / "slideshow.mp4", frames, FPS, gop=FPS)


def nearest_photo(frame: np.ndarray, photos: list[np.ndarray]) -> int:
    return int(np.argmin([np.abs(frame.astype(int) - p.astype(int)).mean() for p in photos]))


def test_one_fps_returns_the_photo_of_each_second(slideshow: Path, photos: list[np.ndarray]) -> None:
    frames, times = load_video_frames(slideshow, fps=1.0, max_frames=64)
    assert frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    assert [nearest_photo(f, photos) for f in frames] == [s % 4 for s in range(12)]
    np.testing.assert_allclose(times, np.arange(12) + 0.5, atol=1 / FPS)


def test_frame_cap_spreads_frames_over_the_whole_clip(slideshow: Path, photos: list[np.ndarray]) -> None:
    # Two frames from 12 s: segment centres 3 s and 9 s (far apart, so the second is reached by seeking).
    frames, times = load_video_frames(slideshow, fps=1.0, max_frames=2)
    assert [nearest_photo(f, photos) for f in frames] == [3 % 4, 9 % 4]
    np.testing.assert_allclose(times, [3.0, 9.0], atol=1 / FPS)


def test_sample_times_follow_fps_until_the_cap() -> None:
    np.testing.assert_allclose(sample_times(4.0, 1.0, 64), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(sample_times(4.0, 2.0, 64), np.arange(8) * 0.5 + 0.25)
    np.testing.assert_allclose(sample_times(100.0, 1.0, 4), [12.5, 37.5, 62.5, 87.5])
    assert len(sample_times(0.3, 1.0, 64)) == 1  # a clip shorter than one period still gives a frame
    with pytest.raises(ValueError):
        sample_times(4.0, 0.0, 8)


def test_resampling_48k_to_16k_keeps_duration_and_energy(tmp_path: Path) -> None:
    rate = 48_000
    t = np.arange(2 * rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone], axis=1)
    audio = load_audio(write_wav(tmp_path / "tone.wav", stereo, rate))
    assert audio.dtype == np.float32 and audio.shape == (32_000,)
    rms = np.sqrt(np.mean(audio[1000:-1000] ** 2))
    assert rms == pytest.approx(0.5 / np.sqrt(2), rel=0.01)  # a 440 Hz tone passes the anti-alias filter


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    rate = 16_000
    left = np.full(rate, 0.5)
    audio = load_audio(write_wav(tmp_path / "lr.wav", np.stack([left, -left], axis=1), rate))
    assert np.abs(audio).max() < 1e-3  # opposite channels cancel


def test_aac_goes_through_pyav(tmp_path: Path) -> None:
    rate = 48_000
    t = np.arange(rate) / rate
    audio = load_audio(write_aac(tmp_path / "tone.m4a", 0.5 * np.sin(2 * np.pi * 440 * t), rate))
    assert abs(len(audio) - 16_000) < 400  # AAC adds encoder priming samples
    assert np.sqrt(np.mean(audio[2000:-2000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)


def test_video_without_audio_track_names_the_file(slideshow: Path) -> None:
    with pytest.raises(MediaError, match="slideshow.mp4.*no audio stream"):
        load_video_audio(slideshow)


def test_video_audio_track(tmp_path: Path, photos: list[np.ndarray]) -> None:
    import av

    path = tmp_path / "av.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=16_000)
        audio.layout = "mono"
        for i in range(FPS):
            container.mux(video.encode(av.VideoFrame.from_ndarray(photos[0], format="rgb24")))
        samples = (0.3 * np.sin(2 * np.pi * 300 * np.arange(16_000) / 16_000)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(samples[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16_000, 0
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
        container.mux(video.encode(None))
    track = load_video_audio(path)
    assert abs(len(track) - 16_000) < 400
    assert np.sqrt(np.mean(track[2000:-2000] ** 2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_image_is_rgb(tmp_path: Path) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    image = load_image(write_png(tmp_path / "logo.png", rgba))
    assert image.mode == "RGB" and image.size == (8, 8)


@pytest.mark.parametrize("loader, name", [
    (load_image, "missing.png"), (lambda p: load_video_frames(p), "missing.mp4"),
    (load_audio, "missing.wav"), (load_video_audio, "missing.mp4"),
])
def test_missing_file_names_the_file(tmp_path: Path, loader, name: str) -> None:
    with pytest.raises(MediaError, match=f"{name}.*does not exist"):
        loader(tmp_path / name)


@pytest.mark.parametrize("loader, name", [
    (load_image, "corrupt.png"), (lambda p: load_video_frames(p), "corrupt.mp4"),
    (load_audio, "corrupt.wav"), (load_video_audio, "corrupt.mp4"),
])
def test_corrupt_file_names_the_file(tmp_path: Path, loader, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x00\x01 not really media " * 64)
    with pytest.raises(MediaError, match=name):
        loader(path)


def test_truncated_video_names_the_file(tmp_path: Path, slideshow: Path) -> None:
    path = tmp_path / "truncated.mp4"
    path.write_bytes(slideshow.read_bytes()[:600])  # the header survives, the frames do not
    with pytest.raises(MediaError, match="truncated.mp4"):
        load_video_frames(path)


@pytest.fixture(scope="module")
def moving(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s at 24 fps of a moving gradient, H.264 with B-frames (the encoder's defaults, as real videos have):
    every frame differs from its neighbours, so picking a neighbour of the right frame shows."""
    yy, xx = np.mgrid[0:48, 0:64]
    frames = np.stack([np.stack([(xx + 5 * i) % 256, (yy + 3 * i) % 256, (xx + yy + 7 * i) % 256], axis=-1)
                       for i in range(8 * 24)]).astype(np.uint8)
    return write_video(tmp_path_factory.mktemp("video") / "moving.mp4", frames, 24)


def _decoding(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the frames the decoder hands back."""
    import harness.media as media

    decode, count = media._decode, []

    def counted(*args):
        for frame in decode(*args):
            count.append(1)
            yield frame

    monkeypatch.setattr(media, "_decode", counted)
    return count


@pytest.mark.parametrize("window,skips", [
    (dict(fps=1.0), True), (dict(fps=0.4), True), (dict(fps=3.0), True),
    (dict(fps=24.0, max_frames=400), False),  # every frame is on screen once: nothing to skip
    (dict(fps=2.0, start_time=1.3, end_time=6.9), True),
    (dict(fps=0.5, start_time=5.0), False),  # starts with a seek: nothing known in advance, nothing skipped
])
def test_skipping_the_frames_nobody_sees_changes_no_frame(moving: Path, monkeypatch: pytest.MonkeyPatch,
                                                         window: dict, skips: bool) -> None:
    """The frames on screen at the sample times are read from the packets, and the non-reference frames among
    the others are not decoded: the same frames and times as decoding every frame."""
    import harness.media as media

    count = _decoding(monkeypatch)
    frames, times = load_video_frames(moving, **window)
    decoded = len(count)
    monkeypatch.setattr(media, "_on_screen", lambda *args: None)  # decode every frame
    count.clear()
    every_frame, every_time = load_video_frames(moving, **window)
    assert np.array_equal(frames, every_frame) and np.array_equal(times, every_time)
    assert (decoded < 0.8 * len(count)) == skips  # the B-frames nobody sees were skipped


def test_frames_the_packets_promised_but_did_not_decode_fall_back_to_every_frame(
        moving: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged packet or a codec that renumbers its frames breaks the packets' promise: the frames are then
    decoded in full, never a neighbour of the frame on screen."""
    import harness.media as media

    on_screen = media._on_screen
    monkeypatch.setattr(media, "_on_screen", lambda *args: None)
    expected = load_video_frames(moving, fps=1.0)
    monkeypatch.setattr(media, "_on_screen", lambda *args: [pts + 1 for pts in on_screen(*args)])  # wrong pts
    frames, times = load_video_frames(moving, fps=1.0)
    assert np.array_equal(frames, expected[0]) and np.array_equal(times, expected[1])

"""Time windows on video/audio parts: only the window's frames and samples reach the model, sampling applies
to the window, the window is part of the request hash, and bad windows fail naming the sample and file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import AudioPart, MediaError, Message, Request, VideoPart
from harness.media import load_audio, load_video_audio, load_video_frames, media_duration
from harness.preflight import check_media
from tasks.fixtures.writers import write_video, write_video_with_audio, write_wav

FPS = 10
SECONDS = 12


def grey(second: int) -> int:
    return 10 + 20 * second  # one flat grey level per second: 10, 30, ..., 230


def second_of(frame: np.ndarray) -> int:
    return int(round((float(frame.mean()) - 10) / 20))


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s at 10 fps, second ``s`` a flat grey ``grey(s)``; a keyframe every second so that seeks land near."""
    frames = np.stack([np.full((32, 32, 3), grey(s), np.uint8) for s in range(SECONDS) for _ in range(FPS)])
    return write_video(tmp_path_factory.mktemp("video") / "clock.mp4", frames, FPS, gop=FPS)


def test_window_frames_come_from_the_window_only(clock: Path) -> None:
    frames, times = load_video_frames(clock, fps=1.0, max_frames=64, start_time=3.0, end_time=7.0)
    assert [second_of(f) for f in frames] == [3, 4, 5, 6]  # fps applies to the 4 s window: 4 frames
    np.testing.assert_allclose(times, [3.5, 4.5, 5.5, 6.5], atol=1 / FPS)


def test_every_frame_of_the_window_and_none_beyond(clock: Path) -> None:
    frames, times = load_video_frames(clock, fps=FPS, max_frames=1000, start_time=3.0, end_time=7.0)
    assert len(frames) == 40
    assert {second_of(f) for f in frames} == {3, 4, 5, 6}
    assert times.min() >= 3.0 - 1e-6 and times.max() < 7.0


def test_frame_cap_spreads_over_the_window(clock: Path) -> None:
    frames, times = load_video_frames(clock, fps=1.0, max_frames=2, start_time=0.0, end_time=8.0)
    assert [second_of(f) for f in frames] == [2, 6]  # segment centres of [0, 8): 2 s and 6 s
    np.testing.assert_allclose(times, [2.0, 6.0], atol=1 / FPS)


def test_late_window_is_reached_by_seeking(clock: Path) -> None:
    frames, _ = load_video_frames(clock, fps=2.0, max_frames=64, start_time=9.0, end_time=11.0)
    assert [second_of(f) for f in frames] == [9, 9, 10, 10]


def test_prefix_window_is_what_a_streaming_question_sees(clock: Path) -> None:
    # end_time only: the video up to the question's timestamp, sampled at 1 fps from the start
    frames, _ = load_video_frames(clock, fps=1.0, max_frames=64, end_time=5.0)
    assert [second_of(f) for f in frames] == [0, 1, 2, 3, 4]
    whole, _ = load_video_frames(clock, fps=1.0, max_frames=64)
    assert len(whole) == SECONDS  # no window: unchanged behaviour


def test_window_end_rounding_up_past_the_duration_is_clamped(clock: Path) -> None:
    frames, times = load_video_frames(clock, fps=1.0, max_frames=64, start_time=10.0, end_time=12.6)
    assert [second_of(f) for f in frames] == [10, 11] and times.max() < SECONDS


def test_window_end_beyond_the_duration_names_the_file(clock: Path) -> None:
    with pytest.raises(MediaError, match=r"clock\.mp4.*window end 15 s is beyond the file's duration of 12\.000 s"):
        load_video_frames(clock, end_time=15.0)


def test_window_start_after_the_duration_names_the_file(clock: Path) -> None:
    with pytest.raises(MediaError, match=r"clock\.mp4.*window start 12\.5 s is not before its end"):
        load_video_frames(clock, start_time=12.5, end_time=13.0)


@pytest.mark.parametrize("kind", [VideoPart, AudioPart])
@pytest.mark.parametrize("start, end, message", [
    (5.0, 5.0, "window start 5.0 s is not before its end 5.0 s"),
    (6.0, 2.0, "window start 6.0 s is not before its end 2.0 s"),
    (-1.0, None, "window start -1.0 s is negative"),
    (None, 0.0, "window end 0.0 s is not after 0 s"),
])
def test_inverted_or_negative_windows_are_refused_naming_the_file(kind, start, end, message) -> None:
    with pytest.raises(ValueError, match=f"clip.mp4: {message}"):
        kind("clip.mp4", start_time=start, end_time=end)


# --------------------------------------------------------------------------------------------------
# audio


def steps(rate: int, seconds: int) -> np.ndarray:
    """A 440 Hz tone whose amplitude is 0.1 * (s + 1) in second ``s``."""
    t = np.arange(rate * seconds) / rate
    return (0.1 * (np.floor(t) + 1) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_audio_window_has_the_window_length(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "steps.wav", steps(48_000, 5), 48_000)
    for start, end in [(1.25, 3.5), (0.0, 5.0), (None, 2.0), (4.0, None), (0.3333, 1.7777)]:
        audio = load_audio(wav, start_time=start, end_time=end)
        expected = int(round(((end if end is not None else 5.0) - (start or 0.0)) * 16_000))
        assert audio.shape == (expected,) and audio.dtype == np.float32


def test_audio_window_holds_only_its_own_seconds(tmp_path: Path) -> None:
    rate = 16_000
    signal = steps(rate, 5)
    signal[3 * rate:] = 1.0  # a loud DC step after 3 s: it must not leak into a window ending at 3 s
    audio = load_audio(write_wav(tmp_path / "steps.wav", signal, rate), start_time=1.0, end_time=3.0)
    np.testing.assert_allclose(audio, signal[rate:3 * rate], atol=1e-4)  # same rate: the samples as stored
    assert np.abs(audio).max() < 0.31


def test_audio_window_beyond_the_file_names_it(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "short.wav", steps(16_000, 2), 16_000)
    assert media_duration(wav, "audio") == pytest.approx(2.0)
    with pytest.raises(MediaError, match=r"short\.wav: window end 9 s is beyond"):
        load_audio(wav, end_time=9.0)


def test_video_soundtrack_window(tmp_path: Path) -> None:
    rate = 16_000
    sound = np.zeros(4 * rate, np.float32)
    sound[int(2.5 * rate):] = 0.5 * np.sin(2 * np.pi * 300 * np.arange(int(1.5 * rate)) / rate)  # only after 2.5 s
    frames = np.zeros((4 * FPS, 32, 32, 3), np.uint8)
    clip = write_video_with_audio(tmp_path / "av.mp4", frames, FPS, sound, rate)
    early = load_video_audio(clip, start_time=0.5, end_time=2.0)
    assert early.shape == (24_000,) and np.abs(early).max() < 0.02  # silence: the tone comes after the window
    late = load_video_audio(clip, start_time=3.0, end_time=4.0)
    assert late.shape == (16_000,)  # where the AAC track stops early the window is padded to its length
    assert np.sqrt(np.mean(late[1000:12_000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    with pytest.raises(MediaError, match=r"av\.mp4: window end 6 s is beyond"):
        load_video_audio(clip, end_time=6.0)


# --------------------------------------------------------------------------------------------------
# requests: hash, serialisation, preflight


def request(*parts) -> Request:
    return Request(task="t", doc_id="q1", messages=(Message.user(*parts, "question"),))


def test_window_is_part_of_the_request_hash_and_round_trips() -> None:
    plain, early, late = (request(VideoPart("v.mp4", end_time=t)) for t in (None, 10.0, 20.0))
    assert len({plain.hash(), early.hash(), late.hash()}) == 3
    assert request(VideoPart("v.mp4", start_time=0.0, end_time=10.0)).hash() != early.hash()
    assert Request.from_dict(late.to_dict()) == late
    assert Request.from_dict(late.to_dict()).messages[0].content[0].end_time == 20.0
    assert request(AudioPart("a.wav", start_time=1.0)).hash() != request(AudioPart("a.wav")).hash()


def test_requests_without_windows_keep_their_serialised_form() -> None:
    """Unset windows are not serialised, so hashes (and cached answers) from before windows stay valid."""
    part = request(VideoPart("v.mp4", fps=2.0, use_audio=True)).to_dict()["messages"][0]["content"][0]
    assert part == {"path": "v.mp4", "fps": 2.0, "max_frames": 64, "use_audio": True, "type": "video"}
    assert request(AudioPart("a.wav")).to_dict()["messages"][0]["content"][0] == {"path": "a.wav", "type": "audio"}


def test_preflight_names_sample_and_file_for_a_window_past_the_end(clock: Path) -> None:
    check_media(request(VideoPart(str(clock), end_time=12.0)))  # fits
    with pytest.raises(MediaError, match=r"^sample t/q1: video file .*clock\.mp4: window end 30 s is beyond"):
        check_media(request(VideoPart(str(clock), end_time=30.0)))


def test_unimoe_adapter_decodes_the_window(clock: Path, tmp_path: Path) -> None:
    """The adapter hands the window to the loaders: the model never sees frames or sound outside it."""
    from harness.models.unimoe import UniMoEAdapter

    wav = write_wav(tmp_path / "steps.wav", steps(16_000, 3), 16_000)
    adapter = UniMoEAdapter.__new__(UniMoEAdapter)  # _conversation decodes media only; no weights needed
    adapter.layout = "inline"
    convo = adapter._conversation(request(VideoPart(str(clock), end_time=5.0), AudioPart(str(wav), start_time=1.0)))
    video, audio = convo[0]["content"][0], convo[0]["content"][1]
    assert [second_of(f) for f in video.frames] == [0, 1, 2, 3, 4]
    assert audio.samples.shape == (32_000,)

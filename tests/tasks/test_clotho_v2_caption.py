"""Clotho v2 captioning: prompt, audio requests, five references per clip, CIDEr ordering, and generated
sounds whose captions are true of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import AudioPart, Response
from harness.media import load_audio
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle


@pytest.fixture(scope="module")
def task():
    return load_task("clotho_v2_caption")


def test_prompt_snapshot_and_audio_part(task) -> None:
    request = task.build_request(sample_docs(task)[0])
    assert request.doc_id == "steady_beep.wav"
    assert request.text() == "Describe the audio in one sentence."
    (audio,) = request.media()
    assert isinstance(audio, AudioPart) and audio.path.endswith("clotho_v2_caption/sample/audio/steady_beep.wav")


def test_five_references_per_clip(task) -> None:
    for doc in sample_docs(task):
        refs = task.target(doc)
        assert len(refs) == 5 and len(set(refs)) == 5


def test_cider_prefers_a_right_caption_to_a_wrong_one(task) -> None:
    right = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))["cider"].value
    wrong = task.aggregate(answer_all(task, lambda doc: Response(text="a dog barks at a passing car")))["cider"].value
    swapped_docs = sample_docs(task)
    swapped = task.aggregate([
        task.process(doc, Response(text=task.target(swapped_docs[(i + 1) % len(swapped_docs)])[0]))
        for i, doc in enumerate(swapped_docs)
    ])["cider"].value
    # The right captions beat both another clip's captions and an unrelated sentence by far. (Between the
    # two wrong answers CIDEr has no fixed order on a four-clip corpus: its IDF weights are corpus statistics.)
    assert right > 10 * max(swapped, wrong) and min(swapped, wrong) >= 0.0


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("clotho_v2_caption", tmp_path) == {"clotho_v2_caption": []}


# ---- the captions are true of the generated sounds


def _peak_hz(samples: np.ndarray, rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def _clip(task, name: str) -> np.ndarray:
    return load_audio(Path(task.media_root) / "audio" / name)


def test_steady_beep_holds_440_hz(task) -> None:
    audio = _clip(task, "steady_beep.wav")
    assert [round(_peak_hz(part)) for part in np.array_split(audio, 3)] == [440, 440, 440]


def test_whistle_rises(task) -> None:
    peaks = [_peak_hz(part) for part in np.array_split(_clip(task, "rising_whistle.wav"), 6)]
    assert np.all(np.diff(peaks) > 100)


def test_alarm_alternates_two_pitches(task) -> None:
    peaks = [round(_peak_hz(part), -1) for part in np.array_split(_clip(task, "two_tone_alarm.wav"), 12)]
    assert set(peaks) == {660, 880} and peaks[:2] == [880, 660]


def test_static_comes_in_three_bursts(task) -> None:
    energy = np.sqrt(np.mean(_clip(task, "static_bursts.wav").reshape(-1, 800) ** 2, axis=1))  # 50 ms frames
    loud = energy > 0.05
    assert int(np.sum(np.diff(loud.astype(int)) == 1) + loud[0]) == 3

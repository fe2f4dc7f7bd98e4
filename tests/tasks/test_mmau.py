"""MMAU (speech, sound, music): one plugin and fixture filtered by ``task``; the lmms-eval prompt; letters
mapped back to choice TEXT and compared lower-cased; shorter choice lists; sounds true of their questions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import AudioPart, Response
from harness.media import load_audio
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

SUBSETS = {"mmau_speech": ("speech", "audio_speech", 65.00), "mmau_sound": ("sound", "audio_speech", 68.06),
           "mmau_music": ("music", "music", 56.4)}


@pytest.mark.parametrize("name", SUBSETS)
def test_each_task_keeps_its_subset(name: str) -> None:
    task = load_task(name)
    subset, group, paper = SUBSETS[name]
    docs = sample_docs(task)
    assert len(docs) == 3 and {d["task"] for d in docs} == {subset}
    assert (task.config.group, task.config.paper_score, task.config.dataset.split) == (group, paper, "test_mini")


def test_prompt_snapshot_and_audio() -> None:
    task = load_task("mmau_speech")
    request = task.build_request(sample_docs(task)[0])
    assert request.doc_id == "mmau-speech-1"
    assert request.text() == (
        "What does the speaker ask the listener to do?\nA. Open the door\nB. Close the window\n"
        "C. Turn on the heater\nD. Leave the room\nAnswer with the option's letter from the given choices directly."
    )
    (audio,) = request.media()
    assert isinstance(audio, AudioPart) and audio.path.endswith("mmau/sample/audio/mmau-speech-1.wav")
    assert task.config.generation.max_new_tokens == 128


def _doc(task, doc_id: str) -> dict:
    return next(d for d in sample_docs(task) if d["id"] == doc_id)


@pytest.mark.parametrize("name, doc_id, response, correct", [
    ("mmau_speech", "mmau-speech-1", "B", True),
    ("mmau_speech", "mmau-speech-1", "(B) Close the window.", True),
    ("mmau_speech", "mmau-speech-1", "A or B? I think B", True),  # several: the last " X "
    ("mmau_speech", "mmau-speech-1", "Close the window", False),  # text alone: no letter -> random letter (not B here)
    ("mmau_speech", "mmau-speech-3", "C", True),  # three choices
    ("mmau_speech", "mmau-speech-3", "D", False),  # past the last choice: '' (lmms-eval would crash)
    ("mmau_sound", "mmau-sound-3", "C", True),  # gold text stored lower-case: compared lower-cased
    ("mmau_music", "mmau-music-1", "B.", True),  # two choices
])
def test_letter_to_text_scoring(name: str, doc_id: str, response: str, correct: bool) -> None:
    task = load_task(name)
    sample = task.process(_doc(task, doc_id), Response(text=response))
    assert sample.items["accuracy"] == float(correct), sample.prediction


@pytest.mark.parametrize("name", SUBSETS)
def test_oracle_wrong_breakdown_and_validate(name: str, tmp_path: Path) -> None:
    task = load_task(name)
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="(A)" if task.lettered(doc)["A"].lower() != doc["answer"].lower()
                                                  else "(B)"))
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)
    assert set(task.breakdown(right)["difficulty"].values()) == {100.0}
    assert validate_with_oracle(name, tmp_path) == {name: []}


# ---- the sounds are true of their questions


def _clip(doc_id: str) -> np.ndarray:
    task = load_task("mmau_sound")
    return load_audio(Path(task.media_root) / "audio" / f"{doc_id}.wav")


def _peak_hz(x: np.ndarray, rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def _bursts(x: np.ndarray, frame: int = 160) -> list[tuple[int, int]]:
    on = np.sqrt(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1)) > 0.05
    edges = np.flatnonzero(np.diff(np.r_[0, on.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2]))


def test_three_beeps_and_a_sound_in_the_second_half_only() -> None:
    assert len(_bursts(_clip("mmau-sound-1"))) == 3
    (start, end), = _bursts(_clip("mmau-sound-3"))
    assert start * 160 >= len(_clip("mmau-sound-3")) // 2


def test_sweep_rises() -> None:
    assert np.all(np.diff([_peak_hz(p) for p in np.array_split(_clip("mmau-sound-2"), 5)]) > 100)


def test_melody_ascends_chord_is_c_major_and_beat_is_120_bpm() -> None:
    melody = _clip("mmau-music-1")
    assert np.all(np.diff([_peak_hz(p) for p in np.array_split(melody, 8)]) > 0)
    chord = _clip("mmau-music-3")
    spectrum = np.abs(np.fft.rfft(chord))
    freqs = np.fft.rfftfreq(len(chord), 1 / 16_000)
    top3 = sorted(round(f) for f in freqs[np.argsort(spectrum)[-3:]])
    assert top3 == [262, 330, 392]  # C4 E4 G4
    onsets = [s for s, _ in _bursts(_clip("mmau-music-2"))]
    assert np.allclose(np.diff(onsets) * 160 / 16_000, 0.5, atol=0.02)  # 0.5 s apart: 120 BPM

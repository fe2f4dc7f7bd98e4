"""Audio captioning on the shared ``clotho_caption`` plugin: Clotho v1 (v2's table and fixture), AudioCaps
(one csv row per caption, gathered per clip) and MusicCaps (one caption per clip, AudioSet eval subset
only). CIDEr with every reference of a clip; generated sounds whose captions are true of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import AudioPart, Response
from harness.media import load_audio
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

TASKS = {  # task -> (prompt, max_new_tokens, doc ids, references per clip)
    "clotho_v1_caption": ("Describe the audio in one sentence.", 64,
                          ["steady_beep.wav", "static_bursts.wav", "rising_whistle.wav", "two_tone_alarm.wav"], 5),
    "audiocaps": ("Describe the audio in one sentence.", 64, ["knockAAAAAA", "humBBBBBBBB", "fallCCCCCCC"], 5),
    "musiccaps": ("Describe the music in detail.", 256, ["mcArpeggio1", "mcDrumBeat1", "mcDroneFift"], 1),
}


def cider(task, answer) -> float:
    return task.aggregate(answer_all(task, answer))["cider"].value


@pytest.mark.parametrize("name", TASKS)
def test_requests_and_references(name: str) -> None:
    prompt, max_new_tokens, ids, n_refs = TASKS[name]
    task = load_task(name)
    docs = sample_docs(task)
    requests = [task.build_request(doc) for doc in docs]
    assert [r.doc_id for r in requests] == ids
    for request, doc in zip(requests, docs):
        assert request.text() == prompt and request.generation.max_new_tokens == max_new_tokens
        (audio,) = request.media()
        assert isinstance(audio, AudioPart) and Path(audio.path).is_file()
        refs = task.target(doc)
        assert len(refs) == n_refs == len(set(refs)) and request.reference.text == refs[0]


@pytest.mark.parametrize("name", TASKS)
def test_cider_prefers_the_right_caption(name: str) -> None:
    task = load_task(name)
    docs = sample_docs(task)
    right = cider(task, lambda doc: oracle_response(task, doc))
    unrelated = cider(task, lambda doc: Response(text="a dog barks at a passing car"))
    swapped = task.aggregate([task.process(doc, Response(text=task.target(docs[(i + 1) % len(docs)])[0]))
                              for i, doc in enumerate(docs)])["cider"].value
    assert right > 5 * max(unrelated, swapped) and min(unrelated, swapped) >= 0.0


@pytest.mark.parametrize("name", TASKS)
def test_validate_passes(name: str, tmp_path: Path) -> None:
    assert validate_with_oracle(name, tmp_path) == {name: []}


def test_clotho_v1_reads_v2_table_and_scores_like_it() -> None:
    v1, v2 = load_task("clotho_v1_caption"), load_task("clotho_v2_caption")
    answer = lambda doc: Response(text="a steady electronic tone beeps")  # noqa: E731
    assert cider(v1, answer) == cider(v2, answer) > 0


def test_audiocaps_gathers_interleaved_caption_rows_per_clip() -> None:
    task = load_task("audiocaps")
    rows = [line for line in (Path(task.media_root) / "docs.jsonl").read_text().splitlines() if line]
    assert len(rows) == 15  # one row per caption, clips interleaved
    docs = sample_docs(task)
    knock = docs[0]
    assert knock["caption"][0] == "Someone knocks on a door three times" and len(knock["caption"]) == 5
    assert knock["audiocap_id"] == 100_000 and knock["start_time"] == 30
    # CIDEr weighs each clip's five references, not just the first
    by_fifth = cider(task, lambda doc: Response(text=task.target(doc)[4]))
    assert by_fifth > 5 * cider(task, lambda doc: Response(text="a dog barks at a passing car"))


def test_musiccaps_keeps_only_the_audioset_eval_rows() -> None:
    task = load_task("musiccaps")
    table = (Path(task.media_root) / "docs.jsonl").read_text()
    assert '"mcTrainOnly1"' in table and not (Path(task.media_root) / "audio" / "mcTrainOnly1.wav").exists()
    assert all(doc["is_audioset_eval"] is True for doc in sample_docs(task))
    assert "mcTrainOnly1" not in [doc["ytid"] for doc in sample_docs(task)]


# ---- the captions are true of the generated audio


def _peak_hz(samples: np.ndarray, rate: int = 16_000) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def _onsets(samples: np.ndarray, threshold: float, frame: int = 160) -> int:
    loud = np.sqrt(np.mean(samples[: len(samples) // frame * frame].reshape(-1, frame) ** 2, axis=1)) > threshold
    return int(np.sum(np.diff(loud.astype(int)) == 1) + loud[0])


def _clip(name: str, ytid: str) -> np.ndarray:
    return load_audio(Path(load_task(name).media_root) / "audio" / f"{ytid}.wav")


def test_audiocaps_sounds() -> None:
    assert _onsets(_clip("audiocaps", "knockAAAAAA"), 0.05) == 3
    assert [round(_peak_hz(p)) for p in np.array_split(_clip("audiocaps", "humBBBBBBBB"), 4)] == [100] * 4
    assert np.all(np.diff([_peak_hz(p) for p in np.array_split(_clip("audiocaps", "fallCCCCCCC"), 5)]) < -100)


def test_musiccaps_music() -> None:
    notes = [_peak_hz(p) for p in np.array_split(_clip("musiccaps", "mcArpeggio1"), 12)]
    assert [round(f) for f in notes[:4]] == [round(f) for f in notes[4:8]] and np.all(np.diff(notes[:4]) > 0)
    drums = _clip("musiccaps", "mcDrumBeat1")
    assert _onsets(drums, 0.1, frame=800) == 12  # 120 bpm for 3 s: six kicks, six off-beat snares
    beats = [drums[int(b * 16_000): int(b * 16_000) + 1600] for b in np.arange(0, 3.0, 0.5)]
    assert [round(_peak_hz(np.pad(b, (0, 14_400)))) for b in beats] == [60] * 6  # the kick is a 60 Hz thump
    assert [round(_peak_hz(p)) for p in np.array_split(_clip("musiccaps", "mcDroneFift"), 3)] == [110] * 3

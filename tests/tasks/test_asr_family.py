"""The ASR family on the shared ``librispeech`` plugin: LibriSpeech (short and long), FLEURS, MLS, Common
Voice, VoxPopuli (English corpus WER) and AISHELL-1/2, FLEURS-zh, Common Voice zh (Chinese corpus CER).
Each set's YAML names its columns; these tests pin prompts, ids, references, the normalisers' handling of
each corpus' transcript style, corpus-level aggregation, and long recordings through the media path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.api import AudioPart, Response
from harness.media import load_audio
from harness.metrics.asr_zh import normalize_chinese
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

PROMPT = "Please recognize the speech and only output the recognized content:"
LIBRI = "sense_and_sensibility_01_austen_64kb-"

# task -> (metric, max_new_tokens, doc ids of the sample in order)
TASKS = {
    "librispeech_test_other": ("wer", 256, [LIBRI + u for u in ("0870", "0880", "0890", "0920", "0930")]),
    "librispeech_test_clean_long": ("wer", 8192, ["austen_01_concat_a", "austen_01_concat_b"]),
    "librispeech_test_other_long": ("wer", 8192, ["austen_01_concat_a", "austen_01_concat_b"]),
    "fleurs_en": ("wer", 256, ["fleurs_en_001_0", "fleurs_en_001_1", "fleurs_en_002_2"]),
    "mls_en": ("wer", 256, ["10001_2001_000000", "10001_2001_000001"]),
    "cv15_en": ("wer", 256, ["common_voice_en_100", "common_voice_en_101", "common_voice_en_102"]),
    "voxpopuli_en": ("wer", 256, ["20180101-0900-PLENARY-1-en_20180101-09:00:00_0",
                                  "20180101-0900-PLENARY-2-en_20180101-09:00:01_1"]),
    "aishell1_test": ("cer_zh", 256, ["BAC009S0901W0001", "BAC009S0901W0002", "BAC009S0902W0001"]),
    "aishell2_ios": ("cer_zh", 256, ["IT0011W0001", "IT0011W0002", "IT0012W0001"]),
    "aishell2_android": ("cer_zh", 256, ["AT0011W0001", "AT0011W0002", "AT0012W0001"]),
    "fleurs_zh": ("cer_zh", 256, ["fleurs_zh_001_0", "fleurs_zh_002_1", "fleurs_zh_003_2"]),
    "cv15_zh": ("cer_zh", 256, ["common_voice_zh-CN_101", "common_voice_zh-CN_102", "common_voice_zh-CN_103"]),
}
CHINESE = [t for t, (m, _, _) in TASKS.items() if m == "cer_zh"]


def score(task, answer) -> float:
    return task.aggregate(answer_all(task, answer))[task.config.primary_metric].value


@pytest.mark.parametrize("name", TASKS)
def test_request_prompt_audio_and_budget(name: str) -> None:
    metric, max_new_tokens, ids = TASKS[name]
    task = load_task(name)
    assert task.config.plugin == "librispeech" and task.config.metrics == (metric,)
    requests = [task.build_request(doc) for doc in sample_docs(task)]
    assert [r.doc_id for r in requests] == ids
    for request in requests:
        assert request.text() == PROMPT
        (audio,) = request.media()
        assert isinstance(audio, AudioPart) and Path(audio.path).is_file()
        assert request.generation.max_new_tokens == max_new_tokens


@pytest.mark.parametrize("name", TASKS)
def test_oracle_is_perfect_and_silence_loses_every_reference_token(name: str) -> None:
    task = load_task(name)
    assert score(task, lambda doc: oracle_response(task, doc)) == 0.0
    silent = answer_all(task, lambda doc: Response(text=""))
    assert all(s.parse_error == "empty response" for s in silent)
    assert task.aggregate(silent)[task.config.primary_metric].value == pytest.approx(100.0)  # all deletions


@pytest.mark.parametrize("name", TASKS)
def test_validate_passes(name: str, tmp_path: Path) -> None:
    assert validate_with_oracle(name, tmp_path) == {name: []}


# ---- English: each corpus' transcript style against the protocol's normaliser


def test_cv15_en_mister_and_punctuation_are_normalised_away() -> None:
    task = load_task("cv15_en")
    docs = sample_docs(task)
    assert docs[0]["gt"].startswith("And Mr. John Dashwood")  # Common Voice keeps case and punctuation
    spoken = lambda doc: Response(text=doc["gt"].replace("Mr.", "mister").replace(".", "").upper())  # noqa: E731
    assert score(task, spoken) == 0.0


def test_fleurs_en_raw_transcription_scores_as_the_normalised_one() -> None:
    task = load_task("fleurs_en")
    docs = sample_docs(task)
    assert task.target(docs[0]) == "he was not an ill disposed young man" != docs[0]["raw_transcription"]
    assert score(task, lambda doc: Response(text=doc["raw_transcription"])) == 0.0  # "ill-disposed," too


def test_fleurs_rows_share_a_sentence_id_but_not_a_doc_id() -> None:
    task = load_task("fleurs_en")
    samples = answer_all(task, lambda doc: oracle_response(task, doc))
    assert [s.cluster for s in samples] == ["1", "1", "2"]  # two speakers read sentence 1
    assert len({s.doc_id for s in samples}) == 3


def test_voxpopuli_scores_normalized_text_even_where_raw_text_is_empty() -> None:
    task = load_task("voxpopuli_en")
    docs = sample_docs(task)
    assert docs[1]["raw_text"] == "" and task.target(docs[1]) == "he might even have been made amiable himself"
    doc = {**docs[0], "audio": {"path": docs[0]["audio"], "bytes": None}}  # a hub Audio(decode=False) cell
    assert task.build_request(doc).doc_id == docs[0]["audio_id"]


def test_wer_is_pooled_over_the_corpus_not_averaged_per_recording() -> None:
    task = load_task("librispeech_test_clean_long")
    long_doc, short_doc = sample_docs(task)
    words = [len(d["transcript"].split()) for d in (long_doc, short_doc)]
    wrong_two = " ".join(long_doc["transcript"].split()[2:])  # two deletions in the long recording only
    samples = [task.process(long_doc, Response(text=wrong_two)),
               task.process(short_doc, Response(text=short_doc["transcript"]))]
    wer = task.aggregate(samples)["wer"].value
    assert wer == pytest.approx(100 * 2 / sum(words))
    assert wer != pytest.approx(100 * (2 / words[0]) / 2)


# ---- long recordings: the harness loads them whole and the model's 30 s windows cover them


def test_long_recording_reaches_the_model_whole_in_30_second_windows() -> None:
    from unimoe.encoders import AudioSpec
    from unimoe.processor import audio_chunks

    task = load_task("librispeech_test_clean_long")
    spec = AudioSpec()
    lengths = []
    for doc in sample_docs(task):
        (part,) = task.build_request(doc).media()
        samples = load_audio(part.path)
        chunks = audio_chunks(samples, spec)
        assert np.array_equal(np.concatenate(chunks), samples)  # nothing dropped, nothing repeated
        lengths.append((len(samples) / 16_000, len(chunks)))
    (long_s, long_n), (short_s, short_n) = lengths
    assert 36.5 < long_s < 37.5 and long_n == 2  # seven utterances, 37.1 s: one full window and a remainder
    assert 12.0 < short_s < 12.7 and short_n == 1
    assert spec.max_chunks * spec.chunk_samples / 16_000 >= 600  # 10 min: room for the ~3.6 min hub recordings


def test_long_transcript_is_its_utterances_in_order() -> None:
    short = {d["audio"].rsplit("-", 1)[1][:4]: d["gt"] for d in sample_docs(load_task("librispeech_test_clean"))}
    long_doc = sample_docs(load_task("librispeech_test_other_long"))[0]
    order = ("0870", "0880", "0890", "0920", "0930", "0890", "0870")
    assert long_doc["transcript"] == " ".join(short[u] for u in order)


# ---- Chinese: character error rate over cn_tn-style normalised text


def test_aishell1_word_segmentation_spaces_are_not_characters() -> None:
    task = load_task("aishell1_test")
    docs = sample_docs(task)
    assert " " in docs[0]["text"]
    assert score(task, lambda doc: Response(text=doc["text"].replace(" ", ""))) == 0.0
    # Arabic numerals are read out: "3本书" is "三本书"
    assert task.process(docs[2], Response(text="他买了3本书。")).items["cer_zh"] == (0, 6)


def test_fleurs_zh_numbers_in_the_reference_are_read_out_too() -> None:
    task = load_task("fleurs_zh")
    doc = sample_docs(task)[0]
    assert doc["transcription"] == "这座桥建于1990年"
    assert task.process(doc, Response(text="这座桥建于一九九零年。")).items["cer_zh"] == (0, 10)


def test_cv15_zh_full_width_punctuation_is_ignored_and_one_wrong_character_counts_once() -> None:
    task = load_task("cv15_zh")
    docs = sample_docs(task)
    assert score(task, lambda doc: Response(text=doc["gt"].rstrip("。？！").replace("，", " "))) == 0.0
    total = sum(len(normalize_chinese(d["gt"])) for d in docs)
    one_wrong = lambda doc: Response(text=doc["gt"].replace("茶", "水"))  # noqa: E731
    assert score(task, one_wrong) == pytest.approx(100 / total)


def _syllables(samples: np.ndarray) -> int:
    loud = np.sqrt(np.mean(samples[: len(samples) // 160 * 160].reshape(-1, 160) ** 2, axis=1)) > 0.02  # 10 ms
    return int(np.sum(np.diff(loud.astype(int)) == 1) + loud[0])


@pytest.mark.parametrize("name", CHINESE)
def test_chinese_fixture_audio_has_one_syllable_per_character(name: str) -> None:
    task = load_task(name)
    for doc in sample_docs(task):
        (part,) = task.build_request(doc).media()
        assert _syllables(load_audio(part.path)) == len(normalize_chinese(task.target(doc)))

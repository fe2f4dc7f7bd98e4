"""Open-answer audio QA: ClothoAQA (single word, exact match ignoring case/punctuation, clustered by clip),
MELD (emotion label match), and spoken QA (existence matching) for Llama Questions and spoken WebQuestions."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import AudioPart, Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

TASKS = {"clotho_aqa": ("exact_match", 61.83), "meld": ("accuracy", 40.4),
         "llama_questions": ("existence_match", 75.33), "web_questions_spoken": ("existence_match", 45.13)}


def test_clotho_aqa_prompt_ids_and_clusters() -> None:
    task = load_task("clotho_aqa")
    docs = sample_docs(task)
    request = task.build_request(docs[0])
    assert request.text() == "Is there a beeping sound?\nAnswer the question using a single word only. "
    (audio,) = request.media()
    assert isinstance(audio, AudioPart) and audio.path.endswith("clotho_aqa/sample/audio/three_beeps.wav")
    assert task.config.generation.max_new_tokens == 8
    ids = [task.doc_id(d) for d in docs]
    assert len(set(ids)) == len(ids) and all(i.startswith(("three_beeps-", "low_hum-")) for i in ids)
    assert [task.doc_id(d) for d in reversed(docs)] == ids[::-1]  # ids do not depend on row order
    samples = answer_all(task, lambda doc: oracle_response(task, doc))
    assert [s.cluster for s in samples] == ["three_beeps"] * 3 + ["low_hum"] * 2


@pytest.mark.parametrize("response, correct", [
    ("yes", True), ("Yes.", True), (" YES! ", True),  # case and punctuation ignored
    ("yes, there is", False),  # exact match: extra words fail
    ("no", False),
])
def test_clotho_aqa_exact_match(response: str, correct: bool) -> None:
    task = load_task("clotho_aqa")
    assert task.process(sample_docs(task)[0], Response(text=response)).items["exact_match"] == float(correct)


@pytest.mark.parametrize("response, correct", [
    ("joy", True), ("Joy.", True), ("The speaker sounds full of joy.", True),
    ("neutral", False), ("happy", False),  # not one of the seven labels: no match
])
def test_meld_label_match(response: str, correct: bool) -> None:
    task = load_task("meld")
    doc = next(d for d in sample_docs(task) if d["Emotion"] == "joy")
    assert task.doc_id(doc) == "2"
    assert task.build_request(doc).media()[0].path.endswith("meld/sample/audio/dia0_utt1.mp4")
    assert task.process(doc, Response(text=response)).items["accuracy"] == float(correct)


def test_meld_prompt_and_breakdown() -> None:
    task = load_task("meld")
    docs = sample_docs(task)
    assert task.build_request(docs[0]).text() == (
        "What emotion does the speaker express? Choose one of: neutral, joy, sadness, anger, surprise, fear, "
        "disgust. Answer with the emotion only.")
    samples = [task.process(d, Response(text="neutral")) for d in docs]
    assert task.breakdown(samples)["Emotion"] == {"anger": 0.0, "joy": 0.0, "neutral": 100.0, "sadness": 0.0}


@pytest.mark.parametrize("name, doc_index, response, correct", [
    ("llama_questions", 0, "The capital of France is Paris.", True),
    ("llama_questions", 0, "PARIS", True),  # case-insensitive
    ("llama_questions", 0, "It is Lyon.", False),
    ("llama_questions", 1, "A spider has eight legs.", True),
    ("llama_questions", 1, "A spider has 8 legs.", False),  # existence matching is literal: "8" is not "eight"
    ("web_questions_spoken", 0, "They speak Portuguese.", True),  # any of several gold answers
    ("web_questions_spoken", 1, "Shakespeare wrote it.", False),  # gold is "William Shakespeare"
    ("web_questions_spoken", 1, "It was written by William Shakespeare.", True),
])
def test_existence_matching(name: str, doc_index: int, response: str, correct: bool) -> None:
    task = load_task(name)
    doc = sample_docs(task)[doc_index]
    assert task.process(doc, Response(text=response)).items["existence_match"] == float(correct)


def test_spoken_question_is_the_audio() -> None:
    for name in ("llama_questions", "web_questions_spoken"):
        task = load_task(name)
        request = task.build_request(sample_docs(task)[0])
        assert request.text() == "Answer the question in the audio."
        (audio,) = request.media()
        assert isinstance(audio, AudioPart) and Path(audio.path).is_file()
        assert sample_docs(task)[0]["question"] not in request.text()  # the question is only spoken


@pytest.mark.parametrize("name", TASKS)
def test_oracle_wrong_and_validate(name: str, tmp_path: Path) -> None:
    task = load_task(name)
    metric, paper = TASKS[name]
    assert task.config.primary_metric == metric and task.config.paper_score == paper
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="fear"))  # no sample gold is or contains "fear"
    assert task.aggregate(right)[metric].value == pytest.approx(100.0)
    assert task.aggregate(wrong)[metric].value == pytest.approx(0.0)
    assert validate_with_oracle(name, tmp_path) == {name: []}

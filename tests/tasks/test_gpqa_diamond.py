"""GPQA Diamond: (A)-(D) prompt, a per-question seeded shuffle that no other row can disturb, and scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Response
from tasks.gpqa_diamond import clean
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

PROMPT_0001 = (
    "Question: A particle in a one-dimensional infinite square well of width L is in its ground state. The width "
    "is suddenly doubled to 2L. What is the probability of finding the particle in the ground state of the new "
    "well?\nChoices:\n(A) 1/4\n(B) 8/(3 pi^2)\n(C) 32/(9 pi^2)\n(D) 1/2\nAnswer:"
)


@pytest.fixture(scope="module")
def task():
    return load_task("gpqa_diamond")


def test_prompt_snapshot(task) -> None:
    request = task.build_request(sample_docs(task)[0])
    assert request.doc_id == "recFixture0001"
    assert request.text() == PROMPT_0001
    assert request.choices == ("A", "B", "C", "D") and request.media() == []


def test_target_letter_points_at_the_correct_answer(task) -> None:
    for doc in sample_docs(task):
        choices, letter = task.shuffled(doc)
        assert sorted(choices) == sorted(clean(doc[k]) for k in ("Correct Answer", "Incorrect Answer 1",
                                                                  "Incorrect Answer 2", "Incorrect Answer 3"))
        assert choices["ABCD".index(letter)] == clean(doc["Correct Answer"])
        assert f"({letter}) {clean(doc['Correct Answer'])}\n" in task.prompt_text(doc)


def test_shuffle_depends_only_on_the_question_and_the_shuffle_seed(task) -> None:
    docs = sample_docs(task)
    orders = [task.shuffled(d)[0] for d in docs]
    assert [task.shuffled(d)[0] for d in reversed(docs)] == orders[::-1]  # no shared RNG state
    assert [load_task("gpqa_diamond").shuffled(d)[0] for d in docs] == orders  # stable across instances
    reseeded = load_task("gpqa_diamond", options={"shuffle_seed": 1})
    assert [reseeded.shuffled(d)[0] for d in docs] != orders


def test_clean_matches_the_lm_eval_preprocessing() -> None:
    assert clean("  Paris [title] France [1] is a city  ") == "Paris. France is a city"


@pytest.mark.parametrize("response, correct", [
    ("The answer is (C).", True),
    ("(C)", True),
    ("I would pick (A), not (C).", False),  # flexible extract: the first (X)
])
def test_flexible_extraction(task, response: str, correct: bool) -> None:
    doc = sample_docs(task)[0]  # correct letter: C
    assert task.target(doc) == "C"
    sample = task.process(doc, Response(text=response))
    assert sample.items["accuracy"] == float(correct)


def test_oracle_and_wrong_answers(task) -> None:
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="(A)" if task.target(doc) != "A" else "(B)"))
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("gpqa_diamond", tmp_path) == {"gpqa_diamond": []}

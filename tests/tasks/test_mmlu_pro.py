"""MMLU-Pro, zero-shot direct answer: prompt, A-J letters (and shorter option lists), the custom-extract rule,
micro accuracy and the per-category breakdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

PROMPT_70001 = (
    'The following is a multiple choice question about math. Answer directly, without explanation, in the form '
    '"The answer is (X)" where X is the letter of the correct option.\n\nQuestion:\nWhat is the remainder when '
    "2^10 is divided by 7?\nOptions:\nA. 0\nB. 3\nC. 5\nD. 6\nE. 1\nF. 4\nG. 2\nH. 7\nI. 9\nJ. 8\nAnswer:"
)


@pytest.fixture(scope="module")
def task():
    return load_task("mmlu_pro")


def test_prompt_snapshot_zero_shot(task) -> None:
    request = task.build_request(sample_docs(task)[0])
    assert request.doc_id == "70001"
    assert request.text() == PROMPT_70001
    assert "step by step" not in request.text() and request.text().count("Question:") == 1  # no exemplars
    assert request.choices == tuple("ABCDEFGHIJ") and request.media() == []
    assert task.config.generation.max_new_tokens == 32


def test_short_option_lists_get_only_their_letters(task) -> None:
    doc = next(d for d in sample_docs(task) if len(d["options"]) == 4)
    assert task.build_request(doc).choices == ("A", "B", "C", "D")
    assert "\nD. The 20th century\nAnswer:" in task.prompt_text(doc)


def test_target_is_the_answer_letter_matching_answer_index(task) -> None:
    for doc in sample_docs(task):
        assert task.target(doc) == "ABCDEFGHIJ"[doc["answer_index"]]


@pytest.mark.parametrize("response, correct", [
    ("The answer is (G).", True),
    ("the answer is G", True),
    ("G", False),  # a bare letter is no "answer is (X)": parse error, scored wrong (custom-extract)
    ("The answer is (E).", False),
])
def test_custom_extract(task, response: str, correct: bool) -> None:
    doc = sample_docs(task)[0]  # gold G
    sample = task.process(doc, Response(text=response))
    assert sample.items["accuracy"] == float(correct)
    assert (sample.parse_error is not None) == (response == "G")


def test_oracle_wrong_and_category_breakdown(task) -> None:
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="The answer is (B)."))  # no sample gold is B
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)
    docs = sample_docs(task)
    half = [task.process(d, oracle_response(task, d) if d["category"] in ("math", "physics") else Response(text="x"))
            for d in docs]
    assert task.aggregate(half)["accuracy"].value == pytest.approx(40.0)  # micro: 2 of 5
    assert task.breakdown(half)["category"] == {"computer science": 0.0, "economics": 0.0, "history": 0.0,
                                                "math": 100.0, "physics": 100.0}


def test_validate_passes(tmp_path: Path) -> None:
    assert validate_with_oracle("mmlu_pro", tmp_path) == {"mmlu_pro": []}

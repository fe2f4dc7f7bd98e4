"""LogicVista, direct-answer variant: the prompt, the label-set reader (wrappings, separators, cues, digits,
the reference's lone lower-case letter and its "ZZZZZ" for no label), set match for multi-letter golds, the
gold-less row counted wrong, the oracle at 100 and a wrong model at 0, the skill breakdown, and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Response
from harness.extract.base import ExtractContext, get_rule
from tests.tasks.helpers import (assert_oracle_best_and_wrong_worst, answer_all, doc_by_id, load_task,
                                 oracle_response, validate_with_oracle)


@pytest.fixture(scope="module")
def task():
    return load_task("logicvista")


def test_prompt_is_the_question_and_the_direct_answer_instruction(task) -> None:
    request = task.build_request(doc_by_id(task, "v1_3"))
    assert request.text() == ("Between which two consecutive months did the share price rise the most? Select from "
                              "A, B, C and D. (A) Jan-Feb (B) Mar-Apr (C) Apr-May (D) Feb-Mar\n"
                              "Answer with the option's letter from the given choices directly.")
    assert [Path(m.path).name for m in request.media()] == ["v1_3.png"]
    assert request.choices == ("A", "B", "C", "D") and task.config.generation.max_new_tokens == 32
    assert task.build_request(doc_by_id(task, "v1_0")).choices == ()  # no "(A)" list in that question


def read(reply: str, gold: str = "A") -> str | None:
    return get_rule("logicvista_choices")(reply, ExtractContext(doc={"answer": gold}))


@pytest.mark.parametrize("reply, labels", [
    ("C", "C"), (" (C)\n", "C"), ("C.", "C"), ("[B]", "B"), ("D) the fourth figure", "D"), ("b", "B"),
    ("A, C", "A, C"), ("C, A", "A, C"), ("A and C.", "A, C"), ("(A) & (C)", "A, C"), ("A/C", "A, C"),
    ("AC", "A, C"), ("B; D", "B, D"),
    ("The answer is C.", "C"), ("Answer: B, D", "B, D"), ("The correct options are A and C", "A, C"),
    ("I think the answer is B because A is wrong.", "B"),
    ("C, because the dot moves right.", "C"), ("B because A is wrong", "B"),
    ("**B**", "B"), ("The answer is **B**.", "B"), ("**Answer:** C", "C"), ('"B"', "B"), ("Option B", "B"),
    ("choice (C)", "C"), ("The correct option is D.", "D"), ("C. Option A is wrong", "C"),
    ("Options A and C are green, so the answer is: A, C", "A, C"), ("I cannot answer this", None),
    ("A square moves one place each time.", "A"),  # a reply opening with a label-like word reads as it
    ("I cannot tell from the image.", None), ("", None), ("None of them", None), ("AA", None), ("E", "E"),
    ("The answer is Z.", None), ("he", None),
])
def test_label_reader(reply: str, labels: str | None) -> None:
    assert read(reply) == labels


@pytest.mark.parametrize("reply, labels", [("3", "3"), ("The answer is 3.", "3"), ("(2)", "2"), ("1 and 3", "1, 3"),
                                           ("C", None), ("12", None)])
def test_numbered_options_read_digits_when_the_gold_is_one(reply: str, labels: str | None) -> None:
    assert read(reply, gold="3") == labels


@pytest.mark.parametrize("reply, score", [("A, C", 1.0), ("C and A", 1.0), ("A", 0.0), ("A, B, C", 0.0),
                                          ("C", 0.0), ("no idea", 0.0)])
def test_multi_letter_gold_needs_exactly_its_set(task, reply: str, score: float) -> None:
    sample = task.process(doc_by_id(task, "v1_1"), Response(text=reply))
    assert sample.target == "A, C" and sample.items == {"accuracy": score}


def test_a_row_stored_without_an_answer_is_scored_wrong_not_dropped(task) -> None:
    row = {**doc_by_id(task, "v1_0"), "answer": ""}
    sample = task.process(row, Response(text="C"))
    assert sample.error is None and sample.target == "" and sample.items == {"accuracy": 0.0}


def test_an_unreadable_reply_is_a_parse_error_scored_wrong(task) -> None:
    sample = task.process(doc_by_id(task, "v1_4"), Response(text="The smallest one."))
    assert sample.prediction is None and sample.parse_error and sample.items == {"accuracy": 0.0}


def test_oracle_best_and_wrong_model_worst() -> None:
    assert_oracle_best_and_wrong_worst("logicvista", lambda task, doc: Response(text="H"))


def test_breakdown_by_reasoning_skill(task) -> None:
    samples = answer_all(task, lambda doc: oracle_response(task, doc) if doc["id"] != "v1_2" else Response(text="1"))
    assert task.aggregate(samples)["accuracy"].value == pytest.approx(80.0)
    assert task.breakdown(samples)["reasoning_skill"] == {"deductive": 0.0, "inductive": 100.0, "mechanical": 100.0,
                                                          "numerical": 100.0}


def test_validate_with_oracle(tmp_path: Path) -> None:
    assert validate_with_oracle("logicvista", tmp_path) == {"logicvista": []}

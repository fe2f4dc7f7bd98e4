"""MathVista testmini: the query of each lmms-eval prompt variant, the rule/judge extraction paths (with the
protocol's extractor prompt), the type-aware normalisation and its lmms-eval 0.5.x float quirk."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Response
from harness.extract.base import ExtractContext, get_rule
from harness.extract.mathvista import normalize_mathvista
from harness.judges.base import Verdict
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle


@pytest.fixture(scope="module")
def task():
    return load_task("mathvista_testmini")


def variant(shot_type: str):
    base = load_task("mathvista_testmini")
    return load_task("mathvista_testmini", options={**base.config.options, "shot_type": shot_type})


def doc(task, pid: str) -> dict:
    return next(d for d in sample_docs(task) if d["pid"] == pid)


PROMPTS = {
    ("format-prompt", "1"): "What shape is drawn on the left?\nA. circle\nB. square\nC. triangle\nD. hexagon\n"
                            "Answer with the option's letter from the given choices directly.",
    ("format-prompt", "3"): "What is the length of the red bar? (Unit: cm)\nAnswer the question using a single "
                            "floating-point number with one decimal place.",
    ("step-by-step", "2"): "Question: How many circles are there?\nHint: Please answer the question requiring an "
                           "integer answer and provide the final value, e.g., 1, 2, 3, at the end.",
    ("solution", "4"): "Question: Is the square larger than each circle?\nChoices:\n(A) Yes\n(B) No\nHint: Please "
                       "answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.\n"
                       "Solution:",  # the stripped query loses the cue's trailing space
}


@pytest.mark.parametrize("shot_type, pid", list(PROMPTS))
def test_prompt_snapshots(shot_type: str, pid: str) -> None:
    t = variant(shot_type)
    request = t.build_request(doc(t, pid))
    assert request.text() == PROMPTS[(shot_type, pid)]
    assert [Path(m.path).name for m in request.media()] == [doc(t, pid)["decoded_image"].split("/")[-1]]


def test_default_variant_and_generation(task) -> None:
    assert task.config.options["shot_type"] == "format-prompt"
    assert task.config.generation.max_new_tokens == 16384
    assert task.build_request(doc(task, "1")).choices == ("A", "B", "C", "D")


@pytest.mark.parametrize("pid, response, extracted", [
    ("1", "square", "square"),  # a response equal to a choice
    ("1", "B", None),  # a letter needs the GPT extractor (quick_extract is off)
    ("2", " 3 ", "3"),
    ("2", "3.0", None),  # int() refuses it: to the extractor
    ("3", "2.5", "2.5"),
    ("3", "2.50", "2.5"),  # str(float())
    ("3", "", ""),  # empty: "" without asking anyone
])
def test_rule_part_of_extraction(task, pid: str, response: str, extracted) -> None:
    assert get_rule("mathvista")(response, ExtractContext(doc=doc(task, pid))) == extracted


def test_normalisation_follows_the_reference() -> None:
    choices = ["circle", "square", "triangle"]
    assert normalize_mathvista("(b) square", choices, "multi_choice", "text", None) == "square"
    assert normalize_mathvista("C", choices, "multi_choice", "text", None) == "triangle"
    assert normalize_mathvista("squares", choices, "multi_choice", "text", None) == "square"  # nearest
    assert normalize_mathvista("", choices, "multi_choice", "text", None) == "circle"  # "" -> first shortest
    assert normalize_mathvista("3.7", None, "free_form", "integer", None) == "3"
    assert normalize_mathvista("three", None, "free_form", "integer", None) is None
    assert normalize_mathvista("2.46", None, "free_form", "float", 1.0, precision_as_stored=False) == "2.5"
    assert normalize_mathvista("2.46", None, "free_form", "float", 1.0) is None  # round(x, 1.0) fails
    assert normalize_mathvista("[1, 2]", None, "free_form", "list", None) == "[1, 2]"


class FakeExtractor:
    def __init__(self, reply: str | None):
        self.reply, self.calls = reply, []

    def ask(self, using=None, **fields):
        self.calls.append((using, fields))
        return Verdict(self.reply) if self.reply is not None else Verdict(error="HTTP 500")


def test_without_a_judge_unreadable_answers_are_marked_not_scored(task) -> None:
    sample = task.process(doc(task, "1"), Response(text="The answer is B."))
    assert sample.error and "needs the LLM answer extractor" in sample.error
    assert sample.fields["answer_source"] == "needs_judge" and sample.items == {}


def test_judge_extracts_with_the_protocol_prompt(task) -> None:
    judged = load_task("mathvista_testmini")
    judged.judge = FakeExtractor("B")
    row = doc(judged, "1")
    sample = judged.process(row, Response(text="  The answer is B.\n"))
    (using, fields), = judged.judge.calls
    assert using == "mathvista_extract" and fields == {"query": row["query"], "response": "The answer is B."}
    assert sample.fields["answer_source"] == "judge" and sample.prediction == "B"
    assert sample.items == {"mathvista_acc_lmms05": 1.0, "mathvista_acc": 1.0}
    judged.judge = FakeExtractor(None)  # failed after retries: "" as the reference -> the shortest choice
    failed = judged.process(row, Response(text="The answer is B."))
    assert failed.fields["answer_source"] == "judge_failed" and failed.items["mathvista_acc"] == 0.0
    assert failed.parse_error


def test_rule_answers_never_reach_the_judge(task) -> None:
    judged = load_task("mathvista_testmini")
    judged.judge = FakeExtractor("9")
    assert judged.process(doc(judged, "2"), Response(text="3")).items["mathvista_acc"] == 1.0
    assert judged.judge.calls == []


def test_oracle_and_the_float_quirk(task) -> None:
    right = answer_all(task, lambda d: oracle_response(task, d))
    metrics = task.aggregate(right)
    assert metrics["mathvista_acc"].value == pytest.approx(100.0)
    assert metrics["mathvista_acc_lmms05"].value == pytest.approx(75.0)  # the float question cannot match
    assert task.breakdown(right)["answer_type"] == {"float": 0.0, "integer": 100.0, "text": 100.0}
    wrong = {"1": "hexagon", "2": "7", "3": "9.9", "4": "No"}
    assert task.aggregate(answer_all(task, lambda d: Response(text=wrong[d["pid"]])))["mathvista_acc"].value == 0.0


def test_validate_with_oracle(tmp_path: Path) -> None:
    assert validate_with_oracle("mathvista_testmini", tmp_path) == {"mathvista_testmini": []}


def test_extractor_prompt_renders_the_reference_layout() -> None:
    from harness.judges.llm import PROMPTS

    text = PROMPTS["mathvista_extract"].render(query="Q?", response="R.")
    assert text.startswith("Please read the following example. Then extract the answer from the model response "
                           "and type it at the end of the prompt.\n\nHint: Please answer the question requiring an "
                           "integer answer")
    assert text.endswith("Model response: The correct answer is (B) 8/11.\n\nExtracted answer: B\n\nQ?\n\nR.\n\n"
                         "Extracted answer: ")
    assert "Question: What fraction of the shape is blue?\nChoices:\n(A) 3/11\n" in text

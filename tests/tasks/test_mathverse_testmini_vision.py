"""MathVerse testmini (vision versions): query_wo prompts, the lmms-eval 0.5.x binary judge (prompt text,
parser quirk, failure -> 0), no silent scores without a judge, the exact pre-check, oracle and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Response
from harness.judges.base import Verdict
from harness.judges.llm import PROMPTS
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle


@pytest.fixture(scope="module")
def task():
    return load_task("mathverse_testmini_vision")


def doc(task, index: str) -> dict:
    return next(d for d in sample_docs(task) if d["sample_index"] == index)


def test_prompts_are_the_rows_query_wo(task) -> None:
    request = task.build_request(doc(task, "4"))
    assert request.text() == ("Please directly answer the question and provide the correct option letter, e.g., A, B, "
                              "C, D.\nQuestion: As shown in the figure, then the degree of angle C is ()\nChoices:\n"
                              "A:60°\nB:70°\nC:80°\nD:90°")
    assert [Path(m.path).name for m in request.media()] == ["1_dominant.png"]
    only = task.build_request(doc(task, "10"))
    assert only.text() == ("According to the question shown in the image, please directly answer the question and "
                           "provide the final value, e.g., 1, 2.5, 300.")
    assert task.config.generation.max_new_tokens == 1024 and request.choices == ()


def test_no_image_when_the_row_has_none(task) -> None:
    assert list(task.build_request({**doc(task, "3"), "image": ""}).media()) == []


class FakeJudge:
    def __init__(self, reply: str | None):
        self.reply, self.calls = reply, []

    def ask(self, using=None, **fields):
        self.calls.append((using, fields))
        if self.reply is None:
            return Verdict(error="HTTP 500")
        return Verdict(PROMPTS[using].parse(self.reply), raw=self.reply)


def test_without_a_judge_samples_need_it_and_are_not_scored(task) -> None:
    sample = task.process(doc(task, "3"), Response(text="The answer is B."))
    assert sample.error and "needs the LLM judge (mathverse_binary)" in sample.error
    assert sample.items == {} and sample.fields["answer_source"] == "needs_judge"


@pytest.mark.parametrize("reply, verdict", [("1", 1), ("0", 0), ("Score: 1", 1), ("10", 1), ("No.", 0), ("", 0)])
def test_judge_verdicts_as_the_reference_parses_them(reply: str, verdict: int) -> None:
    judged = load_task("mathverse_testmini_vision")
    judged.judge = FakeJudge(reply)
    row = doc(judged, "5")
    sample = judged.process(row, Response(text="  Angle C is 70°, so B.\n"))
    (using, fields), = judged.judge.calls
    assert using == "mathverse_binary"
    assert fields == {"question": row["question_for_eval"], "answer": "B", "prediction": "Angle C is 70°, so B."}
    assert sample.items == {"judged_binary": float(verdict)} and sample.fields["answer_source"] == "judge"


def test_failed_judge_scores_zero_and_says_so(task) -> None:
    judged = load_task("mathverse_testmini_vision")
    judged.judge = FakeJudge(None)
    sample = judged.process(doc(judged, "9"), Response(text="The area is 12 square units."))
    assert sample.items == {"judged_binary": 0.0} and sample.parse_error
    assert sample.fields["answer_source"] == "judge_failed"


def test_exact_prefilter_and_its_switch(task) -> None:
    judged = load_task("mathverse_testmini_vision")
    judged.judge = FakeJudge("0")
    assert judged.process(doc(judged, "9"), Response(text=" 12\n")).items == {"judged_binary": 1.0}
    assert judged.judge.calls == []
    strict = load_task("mathverse_testmini_vision", options={**task.config.options, "exact_prefilter": False})
    strict.judge = FakeJudge("0")
    assert strict.process(doc(strict, "9"), Response(text="12")).items == {"judged_binary": 0.0}
    assert len(strict.judge.calls) == 1


def test_oracle_best_wrong_worst_breakdowns_and_clusters(task) -> None:
    right = answer_all(task, lambda d: oracle_response(task, d))
    metrics = task.aggregate(right)
    assert metrics["judged_binary"].value == pytest.approx(100.0) and metrics["judged_binary"].n == 5
    assert task.breakdown(right)["problem_version"] == {"Vision Dominant": 100.0, "Vision Intensive": 100.0,
                                                        "Vision Only": 100.0}
    assert {s.cluster for s in right} == {"1", "2"}
    judged = load_task("mathverse_testmini_vision")
    judged.judge = FakeJudge("0")
    wrong = answer_all(judged, lambda d: Response(text="I cannot tell."))
    assert judged.aggregate(wrong)["judged_binary"].value == 0.0 and all(s.error is None for s in wrong)


def test_validate_with_oracle(tmp_path: Path) -> None:
    assert validate_with_oracle("mathverse_testmini_vision", tmp_path) == {"mathverse_testmini_vision": []}


def test_judge_prompt_is_the_reference_binary_prompt() -> None:
    text = PROMPTS["mathverse_binary"].render(question="Q?", answer="B", prediction="P")
    assert text.startswith("You are a strict evaluator assessing answer correctness. You must output 1 for fully "
                           "correct answers and 0 for any other case.\n\n# Input\nQuestion:\n```\nQ?\n```\n"
                           "Ground Truth Answer:\n```\nB\n```\nModel Prediction:\n```\nP\n```\n\n# Evaluation Rules\n")
    assert ("- For questions requiring units, both value and unit must be correct\n\n# Strict Output format\n"
            "1 or 0") in text
    assert text.endswith("1 or 0")

"""MathVision test: the lmms-eval 0.5.x prompt (no separator after the instruction; "Choices:" block and the
letter instruction only for multiple choice), rule + mathvision_acc scoring, oracle and validate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.api import Response
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

INSTRUCTION = 'Please solve the problem step by step and put your answer in one "\\boxed{}".'

# latex2sympy2 is installed with --no-deps (see pyproject.toml); without it these comparisons cannot run.
needs_latex2sympy = pytest.mark.skipif(importlib.util.find_spec("latex2sympy2") is None,
                                       reason="needs `pip install --no-deps latex2sympy2==1.9.1`")


@pytest.fixture(scope="module")
def task():
    return load_task("mathvision_test")


def doc(task, qid: str) -> dict:
    return next(d for d in sample_docs(task) if d["id"] == qid)


PROMPTS = {
    "1": INSTRUCTION + "Which of the shapes is shaded?\n<image1>\nChoices: A. circle\nB. square\nC. triangle\n"
                       "D. pentagon\nE. star\nAnswer the question with the option's letter from the given choices "
                       "directly.",
    "2": INSTRUCTION + "How many circles are there in the picture?\n<image1>",
}


@pytest.mark.parametrize("qid", list(PROMPTS))
def test_prompt_snapshots(task, qid: str) -> None:
    request = task.build_request(doc(task, qid))
    assert request.text() == PROMPTS[qid]
    assert [Path(m.path).name for m in request.media()] == [f"{qid}.png"]
    assert request.choices == (("A", "B", "C", "D", "E") if qid == "1" else ())


def test_config(task) -> None:
    cfg = task.config
    assert cfg.generation.max_new_tokens == 16384 and cfg.paper_score == 36.61
    assert (cfg.dataset.hub_id, cfg.dataset.split, cfg.group) == ("MathLLMs/MathVision", "test", "image")


@needs_latex2sympy
@pytest.mark.parametrize("qid, response, right", [
    ("1", "The shaded one is the square, so the answer is B.", True),
    ("1", "\\boxed{square}", True),  # the gold letter's option text counts
    ("1", "\\boxed{A}", False),
    ("2", "I count them: \\boxed{3}", True),
    ("2", "The answer is 3.0", True),  # values compared at 2 decimals
    ("3", "One quarter: \\boxed{0.25}", True),  # vs gold \frac{1}{4}
    ("3", "The final answer is 1/4", True),
    ("3", "\\boxed{\\frac{1}{3}}", False),
    ("4", "P = \\boxed{(2, 3)}", True),
    ("4", "\\boxed{(3,2)}", False),
])
def test_scoring(task, qid: str, response: str, right: bool) -> None:
    sample = task.process(doc(task, qid), Response(text=response))
    assert sample.error is None
    assert sample.items == {"mathvision_acc": float(right)}


@needs_latex2sympy
def test_oracle_best_wrong_worst_and_breakdowns(task) -> None:
    right = answer_all(task, lambda d: oracle_response(task, d))
    assert task.aggregate(right)["mathvision_acc"].value == pytest.approx(100.0)
    assert task.breakdown(right)["subject"]["counting"] == pytest.approx(100.0)
    assert set(task.breakdown(right)["level"]) == {"1", "2", "3"}
    wrong = {"1": "\\boxed{C}", "2": "\\boxed{4}", "3": "\\boxed{0.5}", "4": "\\boxed{(0,0)}"}
    samples = answer_all(task, lambda d: Response(text=wrong[d["id"]]))
    assert task.aggregate(samples)["mathvision_acc"].value == 0.0


@needs_latex2sympy
def test_validate_with_oracle(tmp_path: Path) -> None:
    assert validate_with_oracle("mathvision_test", tmp_path) == {"mathvision_test": []}

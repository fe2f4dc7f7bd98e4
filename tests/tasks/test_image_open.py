"""Image open-answer family on the image_mcq plugin (GQA, DocVQA, ChartQA): exact protocol prompts, media
found by key (GQA), the paper-era scoring quirks, oracle/wrong-model scores, breakdowns and unscored rows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.api import Response
from tests.tasks.helpers import (
    answer_all, doc_by_id as doc, load_task, oracle_response, sample_docs, validate_with_oracle,
)

TASKS = ["gqa", "docvqa_test", "chartqa"]


@pytest.fixture(scope="module")
def tasks():
    return {name: load_task(name) for name in TASKS}



PROMPTS = {
    ("gqa", "20968379"): "What animal is this?\nAnswer the question using a single word or phrase.",
    ("docvqa_test", "49153"): "What is the invoice number?\nAnswer the question using a single word or phrase.",
    ("chartqa", "0"): "What is the value of the tallest bar?\nAnswer the question with a single word.",
}


@pytest.mark.parametrize("name, doc_id", list(PROMPTS))
def test_prompt_snapshots(tasks, name: str, doc_id: str) -> None:
    request = tasks[name].build_request(doc(tasks[name], doc_id))
    assert request.text() == PROMPTS[(name, doc_id)]
    assert request.choices == ()
    assert len(list(request.media())) == 1


def test_generation_lengths_follow_each_protocol(tasks) -> None:
    assert {n: t.config.generation.max_new_tokens for n, t in tasks.items()} == \
        {"gqa": 16, "docvqa_test": 32, "chartqa": 16}


def test_gqa_image_is_found_by_its_image_id(tasks) -> None:
    task = tasks["gqa"]
    row = doc(task, "20968380")
    assert "image" not in json.loads((Path(task.media_root) / "docs.jsonl").read_text().splitlines()[1])
    (image,) = task.build_request(row).media()
    assert Path(image.path).name == "n161313.jpg"
    assert [task.process(d, oracle_response(task, d)).cluster for d in sample_docs(task)][:2] == ["n161313"] * 2


def test_gqa_hub_images_are_joined_on_id(tasks, monkeypatch) -> None:
    task = load_task("gqa")
    task.data = "full"
    monkeypatch.setattr(type(task), "_hub_images", lambda self: {"n1": {"bytes": b"x", "path": None}})
    assert task._keyed_image({"imageId": "n1"}) == {"bytes": b"x", "path": None}


# ---- scoring quirks, through each task


@pytest.mark.parametrize("name, doc_id, response, score", [
    ("gqa", "20968380", "Yes.", 1.0),  # case and punctuation ignored
    ("gqa", "20968380", "  yes\n", 1.0),  # the wrapper strips its output
    ("gqa", "20968380", "Yes, there is.", 0.0),  # exact match, not containment
    ("gqa", "201640614", "cof-fee", 1.0),  # punctuation is deleted, not replaced by a space
    ("docvqa_test", "49153", "No. 4711", 1.0),  # the best of the accepted answers
    ("docvqa_test", "49153", "4712", pytest.approx(0.75)),
    ("docvqa_test", "49154", "MARCH 3, 1998", 1.0),
    ("docvqa_test", "57349", "Reynolds", pytest.approx(1 - 6 / 14)),  # partial credit
    ("docvqa_test", "57349", "Budget review", 0.0),  # similarity under 0.5
    ("chartqa", "2", "70", 1.0),  # within 5% of 72
    ("chartqa", "2", "68", 0.0),
    ("chartqa", "1", "south", 1.0),
    ("chartqa", "3", "0.0", 0.0),  # a zero gold is compared as a string
    ("chartqa", "3", "0", 1.0),
])
def test_scoring_quirks(tasks, name: str, doc_id: str, response: str, score) -> None:
    task = tasks[name]
    sample = task.process(doc(task, doc_id), Response(text=response))
    assert sample.items[task.config.primary_metric] == score


@pytest.mark.parametrize("name", TASKS)
def test_oracle_scores_best_and_a_wrong_model_worst(tasks, name: str) -> None:
    task = tasks[name]
    metric = task.config.primary_metric
    right = answer_all(task, lambda d: oracle_response(task, d))
    assert task.aggregate(right)[metric].value == pytest.approx(100.0)
    wrong = answer_all(task, lambda d: Response(text="zebra crossing"))
    assert task.aggregate(wrong)[metric].value == 0.0


def test_chartqa_reports_the_overall_mean_and_each_split(tasks) -> None:
    task = tasks["chartqa"]
    golds = {"0": "42", "1": "wrong", "2": "72", "3": "0"}  # 1 of 2 human, 2 of 2 augmented
    samples = answer_all(task, lambda d: Response(text=golds[task.doc_id(d)]))
    assert task.aggregate(samples)["relaxed_accuracy"].value == pytest.approx(75.0)
    assert task.breakdown(samples)["type"] == {"augmented_test": 100.0, "human_test": 50.0}


def test_docvqa_default_split_is_validation_and_test_rows_stay_unscored(tasks) -> None:
    task = tasks["docvqa_test"]
    assert task.config.dataset.split == "validation"
    hidden = {**doc(task, "49153"), "answers": None}  # a test-split row
    request = task.build_request(hidden)  # still asked, so that its prediction can go to the RRC server
    assert request.reference.text == ""
    sample = task.process(hidden, Response(text="4711"))
    assert sample.error and "not scored" in sample.error and sample.response.text == "4711"
    assert sample.items == {}


@pytest.mark.parametrize("name", TASKS)
def test_validate_with_oracle(name: str, tmp_path: Path) -> None:
    assert validate_with_oracle(name, tmp_path) == {name: []}


def test_tasks_are_in_the_image_group() -> None:
    from harness.catalog import load_entry

    assert set(TASKS) <= set(load_entry("image").tasks)


def test_raw_answers_leave_letter_answers_alone() -> None:
    task = load_task("ai2d")
    assert dataclasses.asdict(task.config)["options"]["answer"] == "index"
    assert task.target(sample_docs(task)[0]) in "ABCD"

"""Helpers for the exemplar-task tests: load a task with its sample fixture, answer it, score it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from harness.api import Response
from harness.catalog import build_task, load_entry
from harness.task import Sample, Task


def load_task(name: str, **overrides: Any) -> Task:
    """A task on its sample fixture; ``overrides`` replace config fields (e.g. ``judge=...``)."""
    return build_task(dataclasses.replace(load_entry(name), **overrides), data="sample")


def sample_docs(task: Task) -> list[dict[str, Any]]:
    return list(task.docs())


def doc_by_id(task: Task, doc_id: str) -> dict[str, Any]:
    """The sample document whose id (the task's ``doc_id``) is ``doc_id``."""
    return next(d for d in sample_docs(task) if task.doc_id(d) == doc_id)


def answer_all(task: Task, answer: Callable[[dict[str, Any]], Response]) -> list[Sample]:
    """Score one response per sample doc, as the runner would after inference."""
    return [task.process_response(doc, answer(doc)) for doc in sample_docs(task)]


def oracle_response(task: Task, doc: dict[str, Any]) -> Response:
    ref = task.build_request(doc).reference
    return Response(text=ref.text, audio=ref.audio, image=ref.image)


def validate_with_oracle(name: str, tmp_path: Path) -> dict[str, list[str]]:
    """The coordinator's ``validate`` check: the oracle over the sample, every metric at its best."""
    from harness.evaluate import evaluate, validation_problems
    from harness.models.reference import OracleModel

    summary = evaluate(name, OracleModel(), data="sample", cache=False, output_dir=tmp_path,
                       rebuild_leaderboards=False)
    return validation_problems(summary)


def assert_oracle_best_and_wrong_worst(name: str, wrong: Callable[[Task, dict[str, Any]], Response],
                                       best: float = 100.0, worst: float = 0.0) -> None:
    """The task's primary metric at ``best`` for the oracle and at ``worst`` for ``wrong``'s answers."""
    import pytest

    task = load_task(name)
    primary = task.config.primary_metric
    right = task.aggregate(answer_all(task, lambda doc: oracle_response(task, doc)))
    bad = task.aggregate(answer_all(task, lambda doc: wrong(task, doc)))
    assert right[primary].value == pytest.approx(best)
    assert bad[primary].value == pytest.approx(worst)

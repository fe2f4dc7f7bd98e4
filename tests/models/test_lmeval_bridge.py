"""The lm-eval bridge both ways gives the same per-sample outputs: `harness run task=lmeval` against
`lm_eval --model unimoe_harness`, on a generate_until and a multiple_choice task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="the lm-eval bridge needs `pip install lm-eval` (bench extra)")

from harness.cli import main
from harness.evaluate import evaluate
from tests.models.lmeval_tasks import write_tasks

TASKS = ("bridge_qa", "bridge_arc")


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory):
    return write_tasks(tmp_path_factory.mktemp("lmeval_tasks"))


def harness_run(tmp_path: Path, task_dir: Path, task: str, model: list[str] | object) -> tuple[dict, dict]:
    """Our runner on an lm-eval task: from the command line (model overrides) or with an adapter object."""
    if isinstance(model, list):
        assert main(["run", "task=lmeval", f"task.name={task}", f"task.options.include_path={task_dir}",
                     "task.options.include_defaults=false", *model, "batch_size=2", f"output_dir={tmp_path}",
                     "progress=false"]) == 0
        (run,) = (tmp_path / "runs").iterdir()
    else:
        config = {"name": task, "group": "lmeval", "plugin": "lmeval",
                  "options": {"include_path": str(task_dir), "include_defaults": False}}
        run = evaluate(config, model, batch_size=2, output_dir=tmp_path, rebuild_leaderboards=False).run_dir
    results = json.loads((run / "results.json").read_text())["tasks"][task]
    samples = [json.loads(line) for line in (run / "samples" / f"{task}.jsonl").read_text().splitlines()]
    return results, {s["doc_id"]: s for s in samples}


def lm_eval_run(task_dir: Path, model: str | object) -> dict:
    """lm-eval's evaluator with our adapters: ``model_args`` for unimoe_harness, or an adapter object."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from harness.lmeval.model import HarnessLM

    kwargs = {"model": "unimoe_harness", "model_args": model} if isinstance(model, str) else {
        "model": HarnessLM.wrapping(model, batch_size=2)}
    return lm_eval.simple_evaluate(**kwargs, tasks=list(TASKS), batch_size=2, log_samples=True,
                                   task_manager=TaskManager(include_path=str(task_dir), include_defaults=False))


def assert_same_outputs(tmp_path, task_dir, ours_model, their_model):
    theirs = lm_eval_run(task_dir, their_model)
    for task in TASKS:
        ours, samples = harness_run(tmp_path / task, task_dir, task, ours_model)
        assert ours["n_errors"] == 0 and len(samples) == 5
        for record in theirs["samples"][task]:
            sample = samples[str(record["doc_id"])]
            if task == "bridge_qa":
                assert sample["response"]["text"] == record["resps"][0][0]
            else:
                lls = [r[0][0] for r in record["resps"]]
                assert sample["response"]["stats"]["loglikelihoods"] == pytest.approx(lls, abs=1e-4)
        for key, metric in ours["metrics"].items():
            assert metric["value"] == pytest.approx(theirs["results"][task][key])


def test_unimoe_tiny_gives_identical_outputs_both_ways(tmp_path, task_dir):
    """Both command-line spellings: `harness run task=lmeval ...` and `--model_args model=unimoe_tiny`."""
    assert_same_outputs(tmp_path, task_dir, ["model=unimoe_tiny"], "model=unimoe_tiny")


@pytest.mark.slow
def test_smollm2_gives_identical_outputs_both_ways(tmp_path, task_dir, smollm2):
    """SmolLM2 through model=hf, loaded once and handed to both sides."""
    assert_same_outputs(tmp_path, task_dir, smollm2, smollm2)


@pytest.mark.slow
def test_lm_eval_command_line_runs_our_adapters(tmp_path, task_dir):
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "harness.lmeval.cli", "--model", "unimoe_harness", "--model_args",
                    "model=random", "--tasks", "bridge_qa", "--include_path", str(task_dir), "--limit", "2",
                    "--output_path", str(out)], check=True, capture_output=True, text=True, timeout=300)
    (results,) = out.rglob("results_*.json")
    assert json.loads(results.read_text())["results"]["bridge_qa"]["sample_len"] == 2

"""Issue 11, class 3: honest run status. ``complete`` only when every task produced metrics; a model that cannot
load fails the run once, before any sample, with a nonzero exit; a run whose process died becomes ``aborted``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import run_status
from harness.api import Response
from harness.evaluate import evaluate
from tests.cli_probe import REPO, assert_untouched, assert_user_error, harness, snapshot, start_harness

CHECKPOINT = REPO / "unimoe" / "weights" / "unimoe_tiny"


def _statuses(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*/status.json"))]


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> Path:
    """An output folder with a finished run that failures must leave as they are."""
    out = tmp_path_factory.mktemp("results")
    assert harness("run", "task=gpqa_diamond", "model=random", f"output_dir={out}", "progress=false",
                   "cache=false").returncode == 0
    return out


def _broken_checkpoint(tmp_path: Path, how: str) -> Path:
    ckpt = tmp_path / f"ckpt-{how}"
    if how == "absent":
        return ckpt
    shutil.copytree(CHECKPOINT, ckpt)
    weights = next(ckpt.glob("*.safetensors"))
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[:4096])
    elif how == "garbage":
        weights.write_bytes(b"not a safetensors file")
    elif how == "config":
        (ckpt / "config.json").write_text("{")
    return ckpt


@pytest.mark.parametrize("how", ["truncated", "garbage", "config", "absent"])
def test_a_checkpoint_that_cannot_load_fails_the_run_once_before_any_sample(existing, tmp_path, how):
    ckpt = _broken_checkpoint(tmp_path, how)
    before, earlier = snapshot(existing), {s["run_id"] for s in _statuses(existing)}
    proc = harness("run", "task=omniworld_text", "model=unimoe_tiny", f"model.args.checkpoint={ckpt}",
                   f"output_dir={existing}", "progress=false")
    assert_user_error(proc, "model unimoe_tiny cannot load")
    assert_untouched(before, existing, allow_new=True)
    (failed,) = [s for s in _statuses(existing) if s["run_id"] not in earlier]
    assert failed["status"] == "failed" and "cannot load" in failed["reason"]
    run = existing / "runs" / failed["run_id"]
    results = json.loads((run / "results.json").read_text())
    assert results["status"] == "failed" and results["tasks"] == {}
    assert not (run / "samples").exists()  # failed once, before the first sample


def test_a_task_whose_data_is_absent_fails_the_run(tmp_path):
    empty = tmp_path / "benchmark"
    empty.mkdir()
    proc = harness("run", "task=gpqa_diamond", "model=random", "data=full", f"data_dir={empty}",
                   f"output_dir={tmp_path}", "progress=false")
    assert proc.returncode == 1 and "FAILED" in proc.stdout and "Traceback" not in proc.stderr
    (status,) = _statuses(tmp_path)
    assert status["status"] == "failed" and "gpqa_diamond" in status["reason"]
    assert json.loads((tmp_path / "runs" / status["run_id"] / "results.json").read_text())["status"] == "failed"
    assert not (tmp_path / "leaderboards" / "full").exists()


def test_a_judge_that_fails_every_call_fails_the_task(tmp_path):
    proc = harness("run", "task=mathvista_testmini", "model=random", "judge=gpt4o_mathvista",
                   "judge.base_url=http://127.0.0.1:9/v1", "judge.policy.retries=0", "judge.policy.backoff_s=0",
                   f"output_dir={tmp_path}", "progress=false", env={"OPENAI_API_KEY": "test-not-a-key"})
    assert proc.returncode == 1, proc.stderr
    (status,) = _statuses(tmp_path)
    assert status["status"] == "failed" and "the judge failed on every call" in status["reason"]
    assert "Connection" in status["reason"] and "127.0.0.1:9" in status["reason"]  # the refused endpoint, named


class BrokenModel:
    """Every call raises: a model that fails every sample."""

    name = "broken"

    def fingerprint(self) -> str:
        return "broken"

    def generate(self, requests):
        raise RuntimeError("CUDA error: device-side assert")


class FirstFailsModel(BrokenModel):
    """Fails the first request it sees and answers the rest."""

    name = "first-fails"

    def __init__(self):
        self.calls = 0

    def generate(self, requests):
        self.calls += len(requests)
        return [Response(error="no answer") if self.calls == 1 else Response(text="A") for _ in requests]


def test_a_task_where_every_sample_failed_is_failed_not_complete(tmp_path):
    summary = evaluate("gpqa_diamond", BrokenModel(), output_dir=tmp_path, cache=False)
    assert summary.results["status"] == "failed" and summary.exit_code == 1
    assert "every sample failed" in summary.results["tasks"]["gpqa_diamond"]["fatal"]
    partial = evaluate("gpqa_diamond", FirstFailsModel(), output_dir=tmp_path, cache=False)
    assert partial.results["status"] == "complete" and partial.exit_code == 0  # per-sample errors stay per sample
    assert partial.results["tasks"]["gpqa_diamond"]["n_errors"] == 1


def test_a_run_killed_mid_way_is_marked_aborted_by_the_next_command(tmp_path):
    proc = start_harness("run", "task=omniworld_text", "model=unimoe_tiny", f"output_dir={tmp_path}",
                         "progress=false")
    try:
        deadline = time.monotonic() + 120
        while not _statuses(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _statuses(tmp_path)[0]["status"] == "running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert _statuses(tmp_path)[0]["status"] == "running"  # nobody has looked yet
    proc = harness("leaderboard", f"output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    (status,) = _statuses(tmp_path)
    assert status["status"] == "aborted" and "ended without finishing" in status["reason"]


def test_only_dead_processes_are_marked_aborted(tmp_path):
    runs = tmp_path / "runs"
    live = run_status.running("live")
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = live | {"run_id": "dead", "pid": int(finished.stdout)}
    reused = live | {"run_id": "reused", "process_start": "1"}  # our pid, but a different process started it
    elsewhere = dead | {"run_id": "elsewhere", "host": "another-host"}
    for status in (live, dead, reused, elsewhere):
        (runs / status["run_id"]).mkdir(parents=True)
        (runs / status["run_id"] / "status.json").write_text(json.dumps(status))
    (runs / "dead" / "results.json").write_text(json.dumps({"status": "running", "tasks": {}}))
    assert run_status.mark_dead_runs(runs) == ["dead", "reused"]
    assert json.loads((runs / "dead" / "results.json").read_text())["status"] == "aborted"
    assert json.loads((runs / "live" / "status.json").read_text())["pid"] == os.getpid()
    assert json.loads((runs / "elsewhere" / "status.json").read_text())["status"] == "running"


def test_scoring_predictions_that_match_no_sample_fails(tmp_path):
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text('{"doc_id": "not-in-the-task", "prediction": "A"}\n')
    proc = harness("score", "task=gpqa_diamond", f"predictions={predictions}", f"output_dir={tmp_path}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    (status,) = _statuses(tmp_path)
    assert status["status"] == "failed" and "no prediction for sample" in status["reason"]


def test_a_sweep_goes_on_past_a_checkpoint_that_cannot_load(tmp_path):
    broken = _broken_checkpoint(tmp_path, "garbage")
    proc = harness("run", "-m", "task=gpqa_diamond", "model=unimoe_tiny", "limit=1", "progress=false",
                   f"model.args.checkpoint={broken},{CHECKPOINT}", f"output_dir={tmp_path / 'out'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert "model unimoe_tiny cannot load" in error
    assert sorted(s["status"] for s in _statuses(tmp_path / "out")) == ["complete", "failed"]

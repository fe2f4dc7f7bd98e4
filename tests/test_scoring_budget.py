"""Scoring runs under a size and time budget: a pathological answer is that sample's problem, not the run's."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest

from harness.time_limit import TimeLimitExceeded, clock_stopped, time_limit
from tests.cli_probe import harness

needs_latex2sympy = pytest.mark.skipif(importlib.util.find_spec("latex2sympy2") is None,
                                       reason="needs `pip install --no-deps latex2sympy2==1.9.1`")
# 10!! is factorial(3628800) (a minute of one C call, uninterruptible); this binomial makes sympy itself
# compute a 3-million-digit number inside latex2sympy (interruptible, but minutes).
DOUBLE_FACTORIAL, HUGE_BINOMIAL = "\\boxed{10!!}", "\\boxed{\\binom{10000000}{5000000}}"


def _score(tmp_path: Path, answers: dict[str, str], *overrides: str):
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps({"doc_id": d, "prediction": a}) + "\n" for d, a in answers.items()))
    started = time.monotonic()
    proc = harness("score", "task=mathvision_test", f"predictions={predictions}", f"output_dir={tmp_path}",
                   *overrides)
    elapsed = time.monotonic() - started
    results = json.loads(next(tmp_path.glob("runs/*/results.json")).read_text())
    samples = {}
    for line in next(tmp_path.glob("runs/*/samples/*.jsonl")).read_text().splitlines():
        row = json.loads(line)
        samples[row["doc_id"]] = row
    return proc, results, samples, elapsed


@needs_latex2sympy
def test_a_pathological_mathvision_answer_is_refused_at_once(tmp_path: Path):
    proc, results, samples, elapsed = _score(tmp_path, {"1": "B", "2": DOUBLE_FACTORIAL, "3": "(B)", "4": "12"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert elapsed < 30  # the unbounded evaluation alone takes about a minute
    assert samples["2"]["error"] is None and samples["2"]["items"]["mathvision_acc"] == 0.0  # scored: not equal
    assert samples["1"]["items"]["mathvision_acc"] == 1.0
    assert results["tasks"]["mathvision_test"]["n_scored"] == 4


@needs_latex2sympy
def test_a_sample_over_the_scoring_time_limit_is_an_error_and_the_rest_is_scored(tmp_path: Path):
    proc, results, samples, elapsed = _score(tmp_path, {"1": "B", "2": HUGE_BINOMIAL, "3": "(B)", "4": "12"},
                                             "scoring_timeout_s=2")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert elapsed < 60
    assert "scoring sample 2 took longer than 2 s" in samples["2"]["error"]
    assert samples["1"]["error"] is None and samples["1"]["items"]["mathvision_acc"] == 1.0
    record = results["tasks"]["mathvision_test"]
    assert record["n_errors"] == 1 and record["n_scored"] == 3


def test_time_limit_interrupts_python_code_and_restores_the_previous_state():
    started = time.monotonic()
    with pytest.raises(TimeLimitExceeded, match="spin took longer than 0.2 s"):
        with time_limit(0.2, "spin"):
            while True:
                try:
                    pass
                except Exception:  # a broad handler in scoring code cannot swallow the timeout
                    pass
    assert time.monotonic() - started < 2
    with time_limit(None, "no limit"):
        time.sleep(0.01)
    with time_limit(0.3, "quick"):  # finishing in time leaves no timer behind (one would kill this process)
        pass
    time.sleep(0.4)


def test_judge_calls_and_model_loads_do_not_count():
    with time_limit(0.3, "scoring"):
        with clock_stopped():
            time.sleep(0.5)  # e.g. waiting on a judge endpoint
        time.sleep(0.1)


@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_a_bad_time_limit_is_refused_before_any_work(tmp_path: Path, value: str):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"doc_id": "1", "prediction": "B"}\n')
    proc = harness("score", "task=mathvision_test", f"predictions={predictions}", f"output_dir={tmp_path / 'out'}",
                   f"scoring_timeout_s={value}")
    assert proc.returncode != 0 and "scoring_timeout_s" in proc.stderr
    assert not (tmp_path / "out" / "runs").exists()

"""The engine: results, resume after SIGKILL, per-sample failures, concurrent runs, sharding, cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.evaluate import evaluate
from tests.harness_toys import ArithmeticModel, toy_task_config, write_toy_docs

REPO = Path(__file__).resolve().parent.parent


def run_toy(tmp_path: Path, model, n: int = 20, **kw):
    data = write_toy_docs(tmp_path / "data", n=n, extra_lines=kw.pop("extra_lines", ()))
    return evaluate(toy_task_config(), model, data="full", data_dir=str(data), output_dir=tmp_path / "results", **kw)


def test_results_files_and_schema(tmp_path):
    summary = run_toy(tmp_path, ArithmeticModel(wrong_on={"q0", "q1"}))
    res = json.loads((summary.run_dir / "results.json").read_text())
    rec = res["tasks"]["toy"]
    assert res["schema_version"] == 1 and res["status"] == "complete"
    assert rec["metrics"]["toy_exact"]["value"] == pytest.approx(90.0)
    assert rec["metrics"]["toy_exact"]["n"] == 20
    assert rec["n_errors"] == 0 and rec["paper_score"] == 50.0
    for key in ("task_hash", "prompt_hash", "extraction_rule", "data_source", "timing"):
        assert rec[key]
    assert res["environment"]["packages"]["numpy"]
    assert res["model"]["fingerprint"]
    lines = (summary.run_dir / "samples" / "toy.jsonl").read_text().splitlines()
    assert len(lines) == 20 and json.loads(lines[0])["doc_id"] == "q0"
    assert (summary.run_dir / "config.yaml").is_file()


def test_failures_are_recorded_and_the_run_goes_on(tmp_path):
    model = ArithmeticModel(fail_on={"q3"}, empty_on={"q5"})
    summary = run_toy(tmp_path, model, batch_size=4, extra_lines=["{not json", "[1, 2]", '{"a": 1}'])
    rec = summary.results["tasks"]["toy"]
    errors = {e["doc_id"]: e["error"] for e in rec["errors"]}
    assert "boom on q3" in errors["q3"]  # the model's exception, isolated from its batch-mates
    assert any("malformed row" in e and "docs.jsonl:21" in e for e in errors.values())
    assert any("no id field" in e for e in errors.values())
    assert rec["n_errors"] == 4
    assert rec["n_parse_errors"] == 1  # the empty response: scored (wrong) per protocol, and flagged
    assert rec["metrics"]["toy_exact"]["n"] == 19
    assert rec["metrics"]["toy_exact"]["value"] == pytest.approx(100 * 18 / 19)


def test_missing_and_corrupt_media_name_the_sample_and_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rows = [{"id": "a", "img": "bad.png", "answer": "1"}, {"id": "b", "img": "gone.png", "answer": "1"},
            {"id": "c", "img": "../../etc/passwd", "answer": "1"}]
    (data / "docs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = toy_task_config(prompt={"template": "1 + 0?", "images": ["img"]})
    summary = evaluate(cfg, ArithmeticModel(), data="full", data_dir=str(data), output_dir=tmp_path / "r")
    errors = {e["doc_id"]: e["error"] for e in summary.results["tasks"]["toy"]["errors"]}
    assert "sample toy/a" in errors["a"] and "bad.png" in errors["a"] and "cannot be decoded" in errors["a"]
    assert "gone.png" in errors["b"] and "does not exist" in errors["b"]
    assert "escapes the dataset root" in errors["c"]


def test_rerun_uses_the_cache(tmp_path):
    log = tmp_path / "calls.log"
    run_toy(tmp_path, ArithmeticModel(log_path=log))
    assert len(log.read_text().splitlines()) == 20
    summary = run_toy(tmp_path, ArithmeticModel(log_path=log))
    assert len(log.read_text().splitlines()) == 20  # no new calls
    assert summary.results["tasks"]["toy"]["n_cached"] == 20
    run_toy(tmp_path, ArithmeticModel(log_path=log), cache=False)
    assert len(log.read_text().splitlines()) == 40


def test_shards_partition_the_documents(tmp_path):
    ids = []
    for i in range(3):
        s = run_toy(tmp_path, ArithmeticModel(), shard=f"{i}/3")
        ids += [x.doc_id for x in s.outcomes[0].samples]
    assert sorted(ids) == sorted(f"q{i}" for i in range(20))


def test_limit_takes_the_first_documents(tmp_path):
    s = run_toy(tmp_path, ArithmeticModel(), limit=5)
    assert [x.doc_id for x in s.outcomes[0].samples] == [f"q{i}" for i in range(5)]
    s = run_toy(tmp_path, ArithmeticModel(), limit=0.5)
    assert len(s.outcomes[0].samples) == 10


SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from harness.evaluate import evaluate
    from tests.harness_toys import ArithmeticModel, toy_task_config, write_toy_docs
    tmp = Path({tmp!r})
    data = write_toy_docs(tmp / "data", n=40)
    evaluate(toy_task_config(), ArithmeticModel(log_path=tmp / "calls.log", sleep={sleep}, wrong_on={{"q7"}}),
             data="full", data_dir=str(data), output_dir=tmp / "results", batch_size=2, progress=False)
    """
)


def _spawn(tmp: Path, sleep: float) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", SCRIPT.format(repo=str(REPO), tmp=str(tmp), sleep=sleep)], env=env)


def test_sigkill_midway_then_rerun_resumes(tmp_path):
    proc = _spawn(tmp_path, sleep=0.05)
    log = tmp_path / "calls.log"
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 15):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(log.read_text().splitlines())
    assert 15 <= done_before < 40

    rerun = _spawn(tmp_path, sleep=0.0)
    assert rerun.wait(timeout=120) == 0
    calls = log.read_text().splitlines()
    second = calls[done_before:]
    # only unfinished samples were computed again (the batch in flight at the kill may be redone)
    assert len(second) <= 40 - done_before + 2
    assert set(second).isdisjoint(set(calls[: done_before - 2]))

    runs = sorted((tmp_path / "results" / "runs").glob("*/results.json"))
    finished = [json.loads(p.read_text()) for p in runs if json.loads(p.read_text())["status"] == "complete"]
    assert len(finished) == 1
    assert finished[0]["tasks"]["toy"]["metrics"]["toy_exact"]["value"] == pytest.approx(100 * 39 / 40)

    # and equals an uninterrupted run elsewhere
    clean = tmp_path / "clean"
    assert _spawn(clean, sleep=0.0).wait(timeout=120) == 0
    (clean_res,) = [json.loads(p.read_text()) for p in (clean / "results" / "runs").glob("*/results.json")]
    assert clean_res["tasks"]["toy"]["metrics"] == finished[0]["tasks"]["toy"]["metrics"]


def test_two_concurrent_runs_share_results_and_cache(tmp_path):
    procs = [_spawn(tmp_path, sleep=0.01) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    runs = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/results.json")]
    assert len(runs) == 2
    for r in runs:
        assert r["status"] == "complete"
        assert r["tasks"]["toy"]["metrics"]["toy_exact"]["value"] == pytest.approx(100 * 39 / 40)
    import sqlite3

    db = sqlite3.connect(tmp_path / "results" / "cache" / "responses.sqlite")
    assert db.execute("SELECT COUNT(*) FROM responses").fetchone()[0] == 40
    assert not list((tmp_path / "results" / "cache" / "wal").glob("*.jsonl"))
    board = tmp_path / "results" / "leaderboards" / "full" / "text.csv"
    assert board.read_text().splitlines()[0].startswith("model,toy")


def test_many_processes_open_a_fresh_cache_at_once(tmp_path):
    """Opening (and switching to WAL) is serialised: simultaneous starts never see 'database is locked'."""
    import subprocess
    import sys

    code = ("import sys, time; from harness.cache import ResponseCache\n"
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
            "ResponseCache(sys.argv[1]).close()\n")
    import time

    start = time.time() + 3.0
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "cache"), str(start)], stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in outcomes), [err for rc, err in outcomes if rc]


def test_a_run_keeps_its_set_up_out_of_the_garbage_collector_only_while_it_runs(tmp_path):
    """What exists once the model is loaded is frozen during the run (full collections then skip it) and
    unfrozen when the run ends, finished or failed, so a caller that drops the model gets it collected."""
    import gc

    class Watching(ArithmeticModel):
        frozen_during_run: list[int] = []

        def generate(self, requests):
            self.frozen_during_run.append(gc.get_freeze_count())
            return super().generate(requests)

    model = Watching()
    run_toy(tmp_path / "a", model, n=3)
    assert model.frozen_during_run and min(model.frozen_during_run) > 0
    assert gc.get_freeze_count() == 0

    class Crashing(ArithmeticModel):
        def generate(self, requests):
            raise KeyboardInterrupt  # a run that ends by an exception: still unfrozen

    with pytest.raises(KeyboardInterrupt):
        run_toy(tmp_path / "b", Crashing(), n=3)
    assert gc.get_freeze_count() == 0

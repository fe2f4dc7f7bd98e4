"""Leaderboards, `ablation` and `compare` count whole runs only: a shard or a limit never replaces the full run."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from harness.results import read_results, run_coverage
from tests.cli_probe import assert_untouched, assert_user_error, harness, snapshot


def _runs(root: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "runs").glob("*/results.json"))]


def _board(root: Path, kind: str, group: str) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO((root / "leaderboards" / kind / f"{group}.csv").read_text())))
    return {row["model"]: row for row in rows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A whole run of a 4-document task, then each of its four 1-document shards (one of them scores 100)."""
    root = tmp_path_factory.mktemp("whole")
    common = ["task=gpqa_diamond", "model=random", f"output_dir={root}", "progress=false"]
    assert harness("run", *common).returncode == 0
    sweep = harness("run", "-m", "shard=0/4,1/4,2/4,3/4", *common)
    assert sweep.returncode == 0, sweep.stderr
    return root


def test_every_results_file_records_its_coverage(runs: Path):
    recorded = {r["run_id"]: r["coverage"] for r in _runs(runs)}
    assert sorted(c["whole"] for c in recorded.values()) == [False] * 4 + [True]
    assert {c["reason"] for c in recorded.values() if not c["whole"]} == {f"shard {i}/4 only" for i in range(4)}
    for res in _runs(runs):
        assert all(rec["n_dataset"] == 4 for rec in res["tasks"].values())
        assert run_coverage(res).to_dict() == res["coverage"]  # the recorded verdict is the one rule's verdict


def test_a_shard_scoring_higher_never_enters_the_leaderboard(runs: Path):
    whole = next(r for r in _runs(runs) if r["coverage"]["whole"])["tasks"]["gpqa_diamond"]["metrics"]["accuracy"]
    shard_scores = [r["tasks"]["gpqa_diamond"]["metrics"]["accuracy"]["value"] for r in _runs(runs)
                    if not r["coverage"]["whole"]]
    assert max(shard_scores) > whole["value"]  # the probe is real: a partial run would have won
    proc = harness("leaderboard", f"output_dir={runs}")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert _board(runs, "sample", "text")["random"]["gpqa_diamond"].startswith(f"{whole['value']:.2f}")
    skipped = [line for line in proc.stderr.splitlines() if "not counted" in line]
    assert len(skipped) == 4 and all("shard" in line and "/4 only" in line for line in skipped)


def test_a_limited_run_is_left_out_and_a_merged_run_counts(runs: Path, tmp_path: Path):
    root = tmp_path / "out"
    limited = harness("run", "task=gpqa_diamond", "model=oracle", "limit=1", f"output_dir={root}", "progress=false")
    assert limited.returncode == 0 and "not a whole run (limit=1)" in limited.stderr
    assert not (root / "leaderboards" / "sample" / "text.csv").exists()  # no whole run yet: no table
    whole = next(r for r in _runs(runs) if r["coverage"]["whole"])
    merged = whole | {"run_id": "merged-run", "model": {"name": "merged-model"}, "merged_from": ["a", "b"],
                      "request": {"task": "gpqa_diamond", "shard": None, "limit": None},
                      "config": whole["config"] | {"shard": "0/2"}}
    (root / "runs" / "merged-run").mkdir()
    (root / "runs" / "merged-run" / "results.json").write_text(json.dumps(merged))
    proc = harness("leaderboard", f"output_dir={root}")
    assert proc.returncode == 0
    board = _board(root, "sample", "text")
    assert "merged-model" in board and "oracle" not in board
    assert "limit=1" in proc.stderr
    assert run_coverage(read_results(root / "runs" / "merged-run")).reason == "merged from 2 runs"


def test_coverage_rule():
    task = {"n_docs": 10, "n_dataset": 10}
    base = {"status": "complete", "config": {"shard": None, "limit": None}, "tasks": {"t": task}}
    assert run_coverage(base).whole
    assert not run_coverage(base | {"status": "failed"}).whole
    assert run_coverage(base | {"config": {"limit": 5}}).reason == "limit=5"
    assert run_coverage(base | {"tasks": {"t": {"n_docs": 3, "n_dataset": 10}}}).reason == "t: 3 of 10 documents"
    assert run_coverage(base | {"config": {}, "tasks": {"t": {"n_docs": 3}}}).whole  # older files: no n_dataset


def test_ablation_rows_are_whole_runs_only(runs: Path):
    proc = harness("ablation", f"runs={runs}")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| random")]
    assert len(rows) == 1
    assert sum("not a whole run" in line for line in proc.stderr.splitlines()) == 4


def test_compare_refuses_runs_over_different_documents(runs: Path):
    by_cover = {r["coverage"]["whole"]: r for r in _runs(runs)}
    whole, shard = (runs / "runs" / by_cover[flag]["run_id"] for flag in (True, False))
    before = snapshot(runs)
    proc = harness("compare", f"baseline={whole}", f"candidate={shard}")
    assert_user_error(proc, "cover different documents", "every document", "shard=")
    assert_untouched(before, runs)
    same = harness("compare", f"baseline={shard}", f"candidate={shard}")
    assert same.returncode == 0 and "is not a whole run (shard" in same.stdout

"""`compare` exit codes and directions; leaderboards keep sample runs out of full tables."""

from __future__ import annotations

import json
from pathlib import Path

from harness.cli import main
from harness.compare import compare
from harness.leaderboard import build_leaderboards


def results(tasks: dict, status: str = "complete", model: str = "m", data: str = "full") -> dict:
    recs = {}
    for name, (metric, value, hib, group) in tasks.items():
        recs[name] = {
            "group": group, "primary_metric": metric, "paper_score": 70.0, "data": data,
            "data_source": f"{data}:x", "scale": 100.0,
            "metrics": {metric: {"value": value, "stderr": 1.0, "n": 10, "higher_is_better": hib}},
        }
    return {"schema_version": 1, "run_id": f"run-{model}-{value}", "status": status, "model": {"name": model},
            "tasks": recs}


def test_compare_respects_direction_and_tolerance():
    base = results({"acc": ("accuracy", 70.0, True, "image"), "asr": ("wer", 5.0, False, "audio")})
    better = results({"acc": ("accuracy", 72.0, True, "image"), "asr": ("wer", 4.0, False, "audio")})
    worse = results({"acc": ("accuracy", 69.5, True, "image"), "asr": ("wer", 5.4, False, "audio")})
    assert not any(d.regressed for d in compare(base, better))
    deltas = {d.task: d for d in compare(base, worse)}
    assert deltas["acc"].regressed and deltas["asr"].regressed
    assert not any(d.regressed for d in compare(base, worse, tolerance=0.5))


def test_compare_cli_exit_status(tmp_path: Path, capsys):
    base, cand = tmp_path / "b.json", tmp_path / "c.json"
    base.write_text(json.dumps(results({"acc": ("accuracy", 70.0, True, "image")})))
    cand.write_text(json.dumps(results({"acc": ("accuracy", 60.0, True, "image")})))
    assert main(["compare", f"baseline={base}", f"candidate={cand}"]) == 1
    assert "REGRESSED" in capsys.readouterr().out
    assert main(["compare", f"baseline={base}", f"candidate={base}"]) == 0
    assert main(["compare", f"baseline={base}", f"candidate={cand}", "tolerance=10"]) == 0


def test_compare_flags_a_missing_task_and_notes_set_up_differences(tmp_path: Path, capsys):
    base = results({"acc": ("accuracy", 70.0, True, "image"), "asr": ("wer", 5.0, False, "audio")})
    cand = results({"acc": ("accuracy", 70.0, True, "image")})
    cand["tasks"]["acc"]["data_source"] = "other:x"
    deltas = {d.task: d for d in compare(base, cand)}
    assert deltas["asr"].regressed and not deltas["acc"].regressed
    paths = tmp_path / "b.json", tmp_path / "c.json"
    for path, res in zip(paths, (base, cand)):
        path.write_text(json.dumps(res))
    assert main(["compare", f"baseline={paths[0]}", f"candidate={paths[1]}"]) == 1
    out = capsys.readouterr().out
    assert "asr: missing from the candidate run" in out and "acc: data_source differs" in out


def _write_run(root: Path, res: dict) -> None:
    d = root / "runs" / res["run_id"]
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(res))


def test_leaderboards_best_run_paper_row_and_sample_separation(tmp_path: Path):
    _write_run(tmp_path, results({"vqa": ("accuracy", 50.0, True, "image")}, model="a") | {"run_id": "r1"})
    _write_run(tmp_path, results({"vqa": ("accuracy", 55.0, True, "image")}, model="a") | {"run_id": "r2"})
    _write_run(tmp_path, results({"vqa": ("accuracy", 90.0, True, "image")}, model="b", data="sample") | {"run_id": "r3"})
    _write_run(tmp_path, results({"vqa": ("accuracy", 99.0, True, "image")}, model="c", status="running") | {"run_id": "r4"})
    written = build_leaderboards(tmp_path)
    full = (tmp_path / "leaderboards" / "full" / "image.csv").read_text().splitlines()
    assert full[0] == "model,vqa"
    assert full[1].startswith("Uni-MoE-2.0-Omni (paper),70.00")
    assert full[2].startswith("a,55.00")  # best of the two runs
    assert len(full) == 3  # the sample run and the unfinished run are not in the full table
    sample = (tmp_path / "leaderboards" / "sample" / "image.md").read_text()
    assert "| b | 90.00" in sample and "sample data" in sample
    tex = (tmp_path / "leaderboards" / "full" / "image.tex").read_text()
    assert r"\toprule" in tex and "55.00" in tex
    assert any(p.suffix == ".md" for p in written)

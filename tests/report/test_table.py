"""`harness table`: emphasis in each metric's direction, reference rows, footnotes for partial runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.table import PAPER_MODEL, PEER_ROW, build_table, read_reported, to_csv, to_latex, to_markdown
from tests.report.conftest import harness


def result(model: str, scores: dict[str, float], *, data: str = "full", status: str = "complete",
           shard: str | None = None, limit: int | None = None, run_id: str = "") -> dict:
    groups = {"videomme": "video", "librispeech_test_clean": "audio_speech", "mmstar": "image"}
    metrics = {"videomme": ("accuracy", True), "librispeech_test_clean": ("wer", False), "mmstar": ("macro_accuracy", True)}
    return {
        "run_id": run_id or f"run-{model}-{data}", "status": status, "data": data, "model": {"name": model},
        "request": {"shard": shard, "limit": limit},
        "config": {"shard": shard, "limit": limit},
        "tasks": {t: {"group": groups[t], "primary_metric": metrics[t][0], "data": data,
                      "metrics": {metrics[t][0]: {"value": v, "higher_is_better": metrics[t][1]}}}
                  for t, v in scores.items()},
    }


RUNS = [
    result("ours", {"videomme": 60.0, "librispeech_test_clean": 2.0}),
    result("peer", {"videomme": 70.0, "librispeech_test_clean": 3.0}),
    result("third", {"videomme": 50.0, "librispeech_test_clean": 1.5}),
]


def test_best_bold_second_underlined_in_each_direction():
    table = build_table(RUNS)
    ranks = table.ranks()
    assert ranks[("peer", "videomme")] == 1 and ranks[("ours", "videomme")] == 2 and ("third", "videomme") not in ranks
    # WER: lower is better
    assert ranks[("third", "librispeech_test_clean")] == 1 and ranks[("ours", "librispeech_test_clean")] == 2
    md = to_markdown(table)
    assert "**70.00**" in md and "<u>60.00</u>" in md and "**1.50**" in md and "<u>2.00</u>" in md
    assert "↓" in md.splitlines()[0] and "↑" in md.splitlines()[0]
    tex = to_latex(table)
    assert r"\textbf{70.00}" in tex and r"\underline{60.00}" in tex and r"\textbf{1.50}" in tex
    assert r"\underline{2.00}" in tex and r"\textbf{3.00}" not in tex


def test_columns_grouped_by_modality_in_catalogue_order():
    table = build_table([result("a", {"librispeech_test_clean": 2.0, "videomme": 1.0, "mmstar": 3.0})])
    assert [c.group for c in table.columns] == ["image", "video", "audio_speech"]
    tex = to_latex(table)
    assert r"\multicolumn{1}{c}{image} & \multicolumn{1}{c}{video} & \multicolumn{1}{c}{audio speech}" in tex
    assert r"\cmidrule(lr){2-2}\cmidrule(lr){3-3}\cmidrule(lr){4-4}" in tex


def test_partial_runs_are_footnoted_and_never_beat_a_whole_run():
    runs = [result("ours", {"videomme": 60.0}),
            result("ours", {"videomme": 99.0}, shard="0/4", run_id="shard-run"),
            result("solo", {"videomme": 80.0}, limit=10, run_id="limited"),
            result("demo", {"videomme": 90.0}, data="sample", run_id="sampled"),
            result("dead", {"videomme": 95.0}, status="running", run_id="unfinished")]
    table = build_table(runs)
    assert table.rows["ours"]["videomme"].value == 60.0 and not table.rows["ours"]["videomme"].notes
    assert table.rows["solo"]["videomme"].notes == ("limit=10 (limited)",)
    assert table.rows["demo"]["videomme"].notes == ("sample data (sampled)",)
    assert table.rows["dead"]["videomme"].notes == ("status 'running', not 'complete' (unfinished)",)
    md = to_markdown(table)
    assert "80.00<sup>" in md and "limit=10 (limited)" in md
    short = result("short", {"videomme": 70.0}, run_id="short")
    short["tasks"]["videomme"] |= {"n_docs": 10, "n_dataset": 2700}
    assert build_table([short]).rows["short"]["videomme"].notes == ("videomme: 10 of 2700 documents (short)",)
    merged = result("merged", {"videomme": 61.0}, shard=None)
    merged["merged_from"] = ["a", "b"]
    assert not build_table([merged]).rows["merged"]["videomme"].notes


def test_reference_rows_paper_and_best_peer(tmp_path):
    catalogue = read_reported(Path(__file__).resolve().parents[2] / "configs" / "reported" / "unimoe2_omni_paper.csv")
    table = build_table(RUNS, reported=catalogue)
    assert list(table.rows)[:2] == [PAPER_MODEL, PEER_ROW] and table.reference_rows == [PAPER_MODEL, PEER_ROW]
    assert table.rows[PAPER_MODEL]["videomme"].value == 66.41
    assert table.rows[PEER_ROW]["videomme"].value == 62.6
    assert table.rows[PEER_ROW]["videomme"].notes == ("best reported peer: Ming-Lite-Omni-1.5",)
    assert table.rows[PEER_ROW]["librispeech_test_clean"].value == 1.34  # lower WER is the better peer
    extra = tmp_path / "mine.csv"
    extra.write_text("task,metric,model,value\nvideomme,accuracy,Qwen2.5-Omni (ours),64.3\n"
                     "videomme,other_metric,Ignored,99\n")
    table = build_table(RUNS, reported=[*catalogue, *read_reported(extra)])
    assert table.rows[PEER_ROW]["videomme"].value == 64.3, "a user's row joins the peers"
    assert all(c.value != 99 for r in table.rows.values() for c in r.values())


def test_csv_keeps_plain_numbers_and_notes():
    text = to_csv(build_table([*RUNS, result("demo", {"videomme": 1.0}, data="sample", run_id="s")]))
    lines = text.splitlines()
    assert lines[0] == "model,videomme,librispeech_test_clean,notes"
    assert lines[1] == "(group),video,audio_speech,"
    assert "demo,1.00,,videomme: sample data (s)" in lines


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX engine installed (pdflatex)")
def test_latex_compiles(tmp_path):
    catalogue = read_reported(Path(__file__).resolve().parents[2] / "configs" / "reported" / "unimoe2_omni_paper.csv")
    body = to_latex(build_table([*RUNS, result("d", {"videomme": 5.0}, data="sample")], reported=catalogue))
    (tmp_path / "t.tex").write_text("\\documentclass{article}\\usepackage{booktabs}\\begin{document}\n"
                                    + body + "\\end{document}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]


def test_command_line(tmp_path):
    runs = tmp_path / "runs"
    for i, res in enumerate(RUNS):
        (runs / f"r{i}").mkdir(parents=True)
        (runs / f"r{i}" / "results.json").write_text(json.dumps(res))
    (runs / "broken").mkdir()
    (runs / "broken" / "results.json").write_text("[]")
    done = harness("table", f"runs={tmp_path}", "format=latex", "tasks=videomme")
    assert done.returncode == 0, done.stderr
    assert r"\textbf{70.00}" in done.stdout and "librispeech" not in done.stdout
    assert "skipped" in done.stderr and "broken/results.json" in done.stderr
    bad = harness("table", f"runs={tmp_path}", "format=docx")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "format='docx'" in bad.stderr
    missing = harness("table", f"runs={tmp_path}", "reported=/nonexistent.csv")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr and "/nonexistent.csv" in missing.stderr

"""Malformed results files are skipped with a warning naming them; every JSON the harness writes is strict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from harness.errors import InputFileError
from harness.results import ResultsFileError, dumps_strict, read_results, write_json
from tests.cli_probe import assert_untouched, assert_user_error, harness, snapshot

MALFORMED = {
    "list": "[]",
    "null": "null",
    "truncated": '{"status": "complete", "model": {"na',
    "no_model": '{"status": "complete", "run_id": "x", "tasks": {}}',
    "tasks_list": '{"status": "complete", "model": {"name": "m"}, "tasks": []}',
    "task_not_object": '{"status": "complete", "model": {"name": "m"}, "tasks": {"t": 3}}',
    "binary": b"\xff\xfe\x00garbage",
}
JUNK_VALUES = {  # readable files whose task records are junk: no row, never a crash
    "value_string": {"group": "text", "primary_metric": "accuracy", "metrics": {"accuracy": {"value": "high"}}},
    "value_null": {"group": "text", "primary_metric": "accuracy", "metrics": {"accuracy": {"value": None}}},
    "no_metrics": {"group": "text", "primary_metric": "accuracy"},
}


def _plant(root: Path) -> dict[str, Path]:
    planted = {}
    for name, content in MALFORMED.items():
        path = root / "runs" / f"bad-{name}" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        planted[name] = path
    for name, rec in JUNK_VALUES.items():
        path = root / "runs" / f"junk-{name}" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"status": "complete", "model": {"name": f"junk-{name}"}, "tasks": {"t": rec}}))
    return planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("malformed")
    return root, _plant(root)


def test_run_and_its_leaderboard_rebuild_survive_malformed_files(planted):
    root, files = planted
    before = snapshot(root / "runs")
    proc = harness("run", "task=gpqa_diamond", "model=random", f"output_dir={root}", "progress=false")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == len(MALFORMED)
    for path in files.values():
        assert sum(str(path) in line for line in warnings) == 1
    board = (root / "leaderboards" / "sample" / "text.csv").read_text()
    assert "random," in board and "junk" not in board
    assert_untouched(before, root / "runs", allow_new=True)  # the bad files are left as they were


@pytest.mark.parametrize("command", ["leaderboard", "ablation"])
def test_commands_over_a_runs_folder_skip_malformed_files(planted, command):
    root, files = planted
    proc = harness(command, *([f"output_dir={root}"] if command == "leaderboard" else [f"runs={root}"]))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert sum(line.startswith("warning: skipped") for line in proc.stderr.splitlines()) == len(MALFORMED)


@pytest.mark.parametrize("name, fragment", [("list", "found list"), ("null", "found NoneType"),
                                            ("truncated", "not valid JSON"), ("no_model", "model.name"),
                                            ("tasks_list", "'tasks'"), ("binary", "not UTF-8")])
def test_compare_names_a_malformed_file_in_one_line(planted, name, fragment):
    root, files = planted
    proc = harness("compare", f"baseline={files[name]}", f"candidate={files[name]}")
    assert_user_error(proc, str(files[name]), fragment)


def test_read_results_checks_what_readers_need(tmp_path: Path):
    path = tmp_path / "r" / "results.json"
    path.parent.mkdir()
    path.write_text('{"model": {"name": "m"}, "tasks": {}}')
    assert read_results(path.parent)["run_id"] == "r"  # a folder is read as its results.json
    with pytest.raises(InputFileError, match="does not exist"):  # ResultsFileError's base: any unusable file
        read_results(tmp_path / "missing.json")
    path.write_text('{"tasks": {}}')
    with pytest.raises(ResultsFileError, match="no model name"):
        read_results(path)


def _strict(text: str):
    def refuse(constant: str):
        raise ValueError(f"bare {constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_strict_json_writes_null_and_records_why(tmp_path: Path):
    data = {"tasks": {"t": {"metrics": {"wer": {"value": math.nan, "stderr": math.inf}}}}, "xs": [1.0, -math.inf]}
    write_json(tmp_path / "r.json", data)
    back = _strict((tmp_path / "r.json").read_text())
    assert back["tasks"]["t"]["metrics"]["wer"] == {"value": None, "stderr": None}
    assert back["non_finite"] == {"tasks/t/metrics/wer/value": "NaN", "tasks/t/metrics/wer/stderr": "Infinity",
                                  "xs/1": "-Infinity"}
    assert math.isnan(data["tasks"]["t"]["metrics"]["wer"]["value"])  # the caller's data is not changed
    assert _strict(dumps_strict({"x": 1.5})) == {"x": 1.5}  # finite data: no note


def test_a_run_whose_metrics_are_nan_writes_strict_json_everywhere(tmp_path: Path):
    from harness.evaluate import evaluate
    from tests.harness_toys import ArithmeticModel, toy_task_config, write_toy_docs

    data = write_toy_docs(tmp_path / "data", n=3)
    model = ArithmeticModel(fail_on={"q0", "q1", "q2"})  # every sample fails: no value to aggregate
    summary = evaluate(toy_task_config(), model, data="full", data_dir=str(data), output_dir=tmp_path / "out")
    assert math.isnan(summary.results["tasks"]["toy"]["metrics"]["toy_exact"]["value"])
    written = [p for p in (tmp_path / "out").rglob("*") if p.suffix in (".json", ".jsonl")]
    assert any(p.name == "results.json" for p in written)
    for path in written:
        lines = [path.read_text()] if path.suffix == ".json" else path.read_text().splitlines()
        for line in lines:
            _strict(line)
    results = json.loads((summary.run_dir / "results.json").read_text())
    assert results["tasks"]["toy"]["metrics"]["toy_exact"]["value"] is None
    assert results["non_finite"]["tasks/toy/metrics/toy_exact/value"] == "NaN"

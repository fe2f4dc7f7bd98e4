"""Issue 11, class 2: the CLI's error boundary. Bad files given to any command name the file (and line) in one
line with exit 2; Ctrl-C exits 130 with a resume hint; a bug keeps its traceback."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import harness.cli as cli
from harness.cli import main
from tests.cli_probe import assert_untouched, assert_user_error, harness, snapshot, start_harness


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "task=gpqa_diamond", "model=random", f"output_dir={out}", "progress=false"]) == 0
    (run,) = (out / "runs").iterdir()
    return run


BAD_JSON = {
    "missing": None,
    "garbage": "{bad",
    "list": "[]",
    "null": "null",
    "no_tasks": '{"status": "complete"}',
    "binary": b"\xff\xfe\x00",
}


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.json"
    content = BAD_JSON[kind]
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return path


@pytest.mark.parametrize("kind", sorted(BAD_JSON))
def test_compare_names_the_bad_results_file(tmp_path, run_dir, kind):
    bad = _bad_file(tmp_path, kind)
    assert_user_error(harness("compare", f"baseline={run_dir}", f"candidate={bad}"), str(bad))


@pytest.mark.parametrize("kind", ["missing", "garbage", "list", "binary"])
def test_routing_names_the_bad_results_file(tmp_path, kind):
    bad = _bad_file(tmp_path, kind)
    assert_user_error(harness("routing", f"run={bad}"), str(bad))


def test_score_names_file_and_line_of_a_bad_prediction(tmp_path):
    predictions = tmp_path / "preds.jsonl"
    predictions.write_text('{"doc_id": "1", "prediction": "A"}\n\nnot json\n')
    assert_user_error(harness("score", "task=gpqa_diamond", f"predictions={predictions}", f"output_dir={tmp_path}"),
                      f"{predictions} line 3")
    predictions.write_text('{"doc_id": "1", "prediction": "A"}\n["a list"]\n')
    assert_user_error(harness("score", "task=gpqa_diamond", f"predictions={predictions}", f"output_dir={tmp_path}"),
                      f"{predictions} line 2", "expected a JSON object")
    predictions.write_text('{"prediction": "A"}\n')
    assert_user_error(harness("score", "task=gpqa_diamond", f"predictions={predictions}", f"output_dir={tmp_path}"),
                      f"{predictions} line 1: no doc_id")
    assert_user_error(harness("score", "task=gpqa_diamond", f"predictions={tmp_path / 'none.jsonl'}",
                              f"output_dir={tmp_path}"), "does not exist")
    assert not (tmp_path / "runs").exists()


def test_ablation_skips_an_unreadable_run_and_refuses_an_empty_folder(tmp_path, run_dir):
    assert_user_error(harness("ablation", f"runs={tmp_path / 'nothing'}"), "no runs/*/results.json")
    runs = tmp_path / "runs"
    (runs / "good").mkdir(parents=True)
    (runs / "good" / "results.json").write_bytes((run_dir / "results.json").read_bytes())
    (runs / "bad").mkdir()
    (runs / "bad" / "results.json").write_text("{torn")
    proc = harness("ablation", f"runs={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    assert "warning: skipped" in proc.stderr and str(runs / "bad" / "results.json") in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stdout.strip().splitlines()) == 3  # header, rule, one row


def test_leaderboard_refuses_a_file_as_output_dir(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    assert_user_error(harness("leaderboard", f"output_dir={target}"), "is a file")


def test_plain_commands_refuse_unknown_keys_and_bad_numbers(run_dir):
    assert_user_error(harness("compare", f"baselin={run_dir}"), "unknown key 'baselin'", "baseline")
    assert_user_error(harness("compare", "baseline"), "expected key=value")
    assert_user_error(harness("compare", f"baseline={run_dir}", f"candidate={run_dir}", "tolerance=abc"),
                      "tolerance='abc'")
    assert_user_error(harness("compare", f"baseline={run_dir}", f"candidate={run_dir}", "tolerance=-1"),
                      "tolerance='-1'")
    assert_user_error(harness("routing"), "routing needs run=")


def test_compare_of_good_files_still_works(run_dir):
    proc = harness("compare", f"baseline={run_dir}", f"candidate={run_dir / 'results.json'}")
    assert proc.returncode == 0 and "0 regression(s)" in proc.stdout, proc.stderr


def test_environment_errors_are_one_line(tmp_path, monkeypatch, capsys):
    import errno

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("harness.evaluate.write_text", full_disk)
    assert main(["run", "task=gpqa_diamond", "model=random", f"output_dir={tmp_path}", "progress=false"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot write ") and "No space left on device" in err[0]


def test_ctrl_c_in_process_exits_130_with_the_resume_hint(monkeypatch, capsys, tmp_path):
    def interrupted(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_run", interrupted)
    assert main(["run", "task=gpqa_diamond", f"output_dir={tmp_path}"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted; rerun the same command to resume"


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path):
    def buggy(cfg):
        return 1 / 0

    monkeypatch.setattr(cli, "_run", buggy)
    with pytest.raises(ZeroDivisionError):  # python -m harness then prints the traceback and exits 1
        main(["run", "task=gpqa_diamond", f"output_dir={tmp_path}"])
    monkeypatch.setattr("harness.listing.list_command", buggy)
    with pytest.raises(ZeroDivisionError):
        main(["list", "tasks"])


def _wait_for_status(out: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (out / "runs").glob("*/status.json"):
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the run never wrote its status")


def test_sigint_during_a_run_marks_it_aborted_and_exits_130(tmp_path):
    proc = start_harness("run", "task=omniworld_text", "model=unimoe_tiny", f"output_dir={tmp_path}",
                         "progress=false")
    try:
        assert _wait_for_status(tmp_path)["status"] == "running"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted; rerun the same command to resume"
    assert "Traceback" not in stderr
    (status,) = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/status.json")]
    assert status["status"] == "aborted" and "rerun" in status["reason"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the probe needs another user")
def test_a_read_only_output_dir_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_user_error(harness("run", "task=gpqa_diamond", f"output_dir={locked}", "progress=false"),
                          "Permission denied")
    finally:
        locked.chmod(0o755)


def test_an_output_dir_under_a_read_only_system_folder_is_one_line():
    assert_user_error(harness("run", "task=gpqa_diamond", "output_dir=/proc/harness-results", "progress=false"),
                      "cannot use /proc/harness-results")


@pytest.mark.parametrize("args,fragment", [(["list", "task"], "got 'task'"),
                                           (["list", "tasks", "extra"], "got 'tasks extra'")])
def test_list_refuses_what_it_cannot_list(args, fragment):
    assert_user_error(harness(*args), fragment)


def test_a_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    """A full disk mid-write: the error reaches the caller, the old file stays whole, no temp file is left."""
    import errno

    from harness import results

    target = tmp_path / "results.json"
    results.write_json(target, {"old": True})

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.os, "replace", full_disk)
    with pytest.raises(OSError, match="No space left"):
        results.write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]

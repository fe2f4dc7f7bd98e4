"""``harness run nproc=N``: the launcher's parsing, the environment each rank gets, and its refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.launch import World, launched_world, rank_env, split_nproc
from tests.run_outputs import REPO


def test_nproc_is_taken_out_of_the_arguments_every_rank_receives():
    assert split_nproc(["task=x", "nproc=4", "limit=2"]) == (4, ["task=x", "limit=2"])
    assert split_nproc(["task=x"]) == (1, ["task=x"])
    assert split_nproc(["+nproc=2"]) == (2, [])


@pytest.mark.parametrize("value", ["0", "-1", "two", "", "1.5"])
def test_a_bad_nproc_is_refused_naming_the_value(value):
    with pytest.raises(ConfigError, match=f"nproc must be a positive integer .*got {value!r}"):
        split_nproc([f"nproc={value}"])


def test_each_rank_gets_what_torchrun_would_announce_and_its_share_of_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    env = rank_env(1, 4, 29511, base={"PATH": "/bin"})
    assert launched_world(env) == World(rank=1, size=4, local_rank=1)
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], env["OMP_NUM_THREADS"]) == ("127.0.0.1", "29511", "2")
    assert env["PATH"] == "/bin"
    assert rank_env(0, 4, 1, base={"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"  # the user's choice stays


def test_nproc_under_torchrun_is_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun gives each rank
    monkeypatch.setenv("RANK", "1")
    assert main(["run", "task=omniworld_text", "model=random", "nproc=2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: nproc=N starts its own ranks; under torchrun leave it out (torchrun decides the ranks)")


def test_a_mistyped_nproc_exits_2_before_any_work(capsys):
    assert main(["run", "task=omniworld_text", "model=random", "nproc=2x"]) == 2
    assert "nproc must be a positive integer" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), ("nproc=2",)], ids=["one process", "nproc=2"])
def test_ctrl_c_stops_every_process_with_one_line_each_and_exit_130(tmp_path, extra):
    """The terminal signals the whole process group (launcher, ranks, media workers): every rank records an
    aborted run and says so in one line; no worker prints a traceback."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "harness", "run", "task=omniworld", "model=unimoe_tiny", "progress=false",
               *extra, f"output_dir={tmp_path}"]
    run = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("runs/*/samples/omniworld_audio*.jsonl")):
            assert time.monotonic() < deadline and run.poll() is None, "the run never reached its third task"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGINT)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130
    lines = stderr.strip().splitlines()
    assert lines and all(line == "interrupted; rerun the same command to resume" for line in lines), stderr
    assert len(lines) == (2 if extra else 1)
    (status,) = tmp_path.glob("runs/*/status.json")
    assert json.loads(status.read_text())["status"] == "aborted"

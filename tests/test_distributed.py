"""``torchrun -m harness run`` and ``harness run nproc=2``: two gloo ranks on the CPU give the single-process
run's results, and a rank killed mid-run fails the run on every rank, after which a rerun recomputes only what is
missing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.cache import ResponseCache
from harness.api import HarnessError
from harness.distributed import RankFailure, _await_store, device_for, gather_parts
from harness.launch import World, launched_world
from harness.runner import TaskOutcome
from tests.run_outputs import REPO, harness, metrics, only_run, predictions, results, torchrun

OMNIWORLD = ("run", "task=omniworld", "model=unimoe_tiny", "progress=false")
# two ranks started by torchrun, or by our own launcher: (arguments before ``-m harness``, arguments after)
LAUNCHES = {"torchrun": (torchrun(2), ()), "nproc": ((), ("nproc=2",))}


def test_launched_world_reads_what_torchrun_announces():
    assert launched_world({}) is None
    assert launched_world({"WORLD_SIZE": "1", "RANK": "0"}) is None
    assert launched_world({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == World(rank=3, size=4, local_rank=1)


def test_each_rank_takes_the_gpu_of_its_local_rank_or_the_cpu():
    assert device_for(World(rank=1, size=2, local_rank=1), gpus=0) == "cpu"
    assert device_for(World(rank=1, size=2, local_rank=1), gpus=2) == "cuda:1"
    # two nodes of 4 GPUs: global rank 6 is the third process on the second node
    second_node = launched_world({"WORLD_SIZE": "8", "RANK": "6", "LOCAL_RANK": "2"})
    assert device_for(second_node, gpus=4) == "cuda:2"
    with pytest.raises(HarnessError, match="rank 6 is local rank 2 .* only 2 GPU"):
        device_for(second_node, gpus=2)


@pytest.mark.slow
@pytest.mark.parametrize("launch", LAUNCHES)
def test_two_ranks_equal_one_process_on_the_full_omniworld(tmp_path, launch):
    launcher, extra = LAUNCHES[launch]
    one = harness(*OMNIWORLD, "data=full", f"output_dir={tmp_path / 'one'}")
    assert one.returncode == 0, one.stderr
    two = harness(*OMNIWORLD, *extra, "data=full", f"output_dir={tmp_path / 'two'}", launcher=launcher)
    assert two.returncode == 0, two.stderr
    single, parallel = only_run(tmp_path / "one"), only_run(tmp_path / "two")
    assert metrics(parallel) == metrics(single)
    assert len(predictions(single)) == 600
    assert predictions(parallel) == predictions(single)
    record = results(parallel)
    assert record["status"] == "complete" and record["distributed"] == {"world_size": 2}
    assert record["config"]["shard"] is None and record["config"]["limit"] is None
    assert sorted(p.name for p in (parallel / "samples").iterdir()) == sorted(
        p.name for p in (single / "samples").iterdir())  # the per-rank logs are folded into one per task


def _rank_process(launcher_pid: int, rank: int) -> int:
    """The pid of the worker that the launcher started as ``rank``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher_pid and f"RANK={rank}".encode() in env:
            return int(entry.name)
    raise LookupError(f"no rank {rank} under pid {launcher_pid}")


@pytest.mark.slow
@pytest.mark.parametrize("launch", LAUNCHES)
def test_a_killed_rank_fails_the_run_and_the_rerun_recomputes_only_what_is_missing(tmp_path, launch):
    launcher_args, extra = LAUNCHES[launch]
    reference = harness(*OMNIWORLD, f"output_dir={tmp_path / 'ref'}", "cache=false")
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "dist"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, *launcher_args, "-m", "harness", *OMNIWORLD, *extra, f"output_dir={out}"]
    launcher = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill rank 1 once it is into the second task
            if list(out.glob("runs/*/samples/omniworld_video.rank1.jsonl")):
                os.kill(_rank_process(launcher.pid, 1), signal.SIGKILL)
                break
            time.sleep(0.05)
        else:
            pytest.fail("rank 1 never reached the second task")
        _, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    if launch == "nproc":
        assert "rank 1 was killed by SIGKILL" in stderr and launcher.returncode == 128 + signal.SIGKILL, stderr
    assert "rank 0:" in stderr and "rerun the same command to resume" in stderr, stderr
    killed_run = only_run(out)
    killed = results(killed_run)
    assert killed["status"] == "failed" and "rank" in killed["status_reason"]  # honest status, with the reason

    with ResponseCache(out / "cache") as cache:  # what the killed run left (its write-ahead logs replayed)
        kept = cache._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    assert 0 < kept < 120

    rerun = harness(*OMNIWORLD, *extra, f"output_dir={out}", launcher=launcher_args)
    assert rerun.returncode == 0, rerun.stderr
    resumed = next(p.parent for p in out.glob("runs/*/results.json") if p.parent != killed_run)
    tasks = results(resumed)["tasks"].values()
    assert sum(t["n_cached"] for t in tasks) == kept
    assert sum(t["timing"]["samples_computed"] for t in tasks) == 120 - kept
    ref = only_run(tmp_path / "ref")
    assert metrics(resumed) == metrics(ref)
    assert predictions(resumed) == predictions(ref)


@pytest.mark.slow
def test_shards_run_under_torchrun_merge_into_the_whole_run(tmp_path):
    """``shard=i/n`` under torchrun: each launch evaluates its shard (split again between its ranks); the shard
    runs then merge into exactly the single-process run of the whole task."""
    task = ("run", "task=omniworld_text", "model=unimoe_tiny", "data=full", "progress=false")
    whole = harness(*task, f"output_dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr
    shard_dirs = []
    for i in range(2):
        shard = harness(*task, f"shard={i}/2", f"output_dir={tmp_path / f'shard{i}'}", launcher=torchrun(2))
        assert shard.returncode == 0, shard.stderr
        shard_dirs.append(only_run(tmp_path / f"shard{i}"))
        documents = {doc_id for _, doc_id in predictions(shard_dirs[-1])}
        assert len(documents) == results(shard_dirs[-1])["tasks"]["omniworld_text"]["n_docs"]
    first, second = ({doc_id for _, doc_id in predictions(d)} for d in shard_dirs)
    assert not first & second and first | second == {doc_id for _, doc_id in predictions(only_run(tmp_path / "whole"))}
    merged = harness("merge", f"runs={shard_dirs[0]},{shard_dirs[1]}", f"output_dir={tmp_path / 'merged'}")
    assert merged.returncode == 0, merged.stderr
    assert metrics(only_run(tmp_path / "merged")) == metrics(only_run(tmp_path / "whole"))
    assert predictions(only_run(tmp_path / "merged")) == predictions(only_run(tmp_path / "whole"))


STOP_SCRIPT = """
import os, signal, sys, time
from harness.distributed import _stop_deadline

signal.signal(signal.SIGTERM, lambda *_: None)  # a Python-level handler, as joined() installs
with _stop_deadline("rank 0: stopped by the launcher", 3.0):
    if sys.argv[1] != "quiet":
        os.kill(os.getpid(), signal.SIGTERM)
    if sys.argv[1] == "hangs":
        time.sleep(60)  # a clean stop that never finishes (the handler returns; the sleep resumes)
sys.exit(3)
"""


@pytest.mark.parametrize("case,status,line", [("hangs", 1, True), ("stops", 3, False), ("quiet", 3, False)])
def test_a_stop_that_hangs_exits_at_its_deadline_with_the_rank_line(case, status, line):
    """After SIGTERM a rank gets its grace period, then exits with its one line even if the clean stop never
    returns; a stop that finishes in time (or a run never stopped) keeps its own exit status."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", STOP_SCRIPT, case], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == status, proc.stderr
    assert ("rank 0: stopped by the launcher (the clean stop took over 3 s; exiting)" in proc.stderr) == line
    assert time.monotonic() - started < 30


def _listen_later(delay_s: float) -> tuple[socket.socket, threading.Thread]:
    """A TCP server that starts listening on a free port only after ``delay_s`` (as rank 0's store does)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    listening = threading.Thread(target=lambda: (time.sleep(delay_s), server.listen()), daemon=True)
    listening.start()
    return server, listening


def test_a_rank_connects_to_the_store_as_soon_as_rank_0_listens():
    """Not after the store client's retry back-off (0.5-1 s), which held both ranks on every other start."""
    server, listening = _listen_later(0.3)
    port = server.getsockname()[1]
    started = time.monotonic()
    _await_store({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}, timeout_s=30)
    waited = time.monotonic() - started
    listening.join()
    assert 0.25 <= waited < 5  # it waited for the listener, and returned once there was one
    server.settimeout(5)
    server.accept()[0].close()  # the probe's connection reached the listener
    server.close()


def test_the_store_wait_leaves_torchruns_agent_store_alone_and_gives_up_at_its_deadline():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))  # the port is taken, nothing listens on it
    port = str(server.getsockname()[1])
    started = time.monotonic()
    _await_store({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "TORCHELASTIC_USE_AGENT_STORE": "True"}, 30)
    _await_store({}, 30)  # no env:// rendezvous: nothing to wait for
    assert time.monotonic() - started < 1
    _await_store({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}, timeout_s=0.3)
    assert 0.3 <= time.monotonic() - started < 5  # init_process_group then reports the failure its own way
    server.close()


def test_ranks_that_evaluated_different_task_lists_are_refused_in_one_line(monkeypatch):
    import torch.distributed as dist

    def gather_object(obj, gathered, dst):  # rank 1 sent parts of one task where rank 0 has two
        gathered[0], gathered[1] = obj, obj[:1]

    monkeypatch.setattr(dist, "gather_object", gather_object)
    parts = [TaskOutcome(task=None, samples=[]), TaskOutcome(task=None, samples=[])]
    with pytest.raises(RankFailure, match=r"different numbers of tasks \(rank 0: 2, rank 1: 1\)"):
        gather_parts(parts, World(rank=0, size=2))
    monkeypatch.setattr(dist, "gather_object", lambda obj, gathered, dst: None)
    assert gather_parts(parts, World(rank=1, size=2)) is None  # only rank 0 receives the parts


def test_ranks_meet_once_after_all_their_tasks_then_rank_0_scores_each_task(tmp_path, monkeypatch):
    """One gather of every task's parts (waiting after each task would add up each task's imbalance), then
    rank 0 writes each task's samples in document order and scores it; the parts' own logs are folded away."""
    import harness.evaluate as evaluate_module

    gathered: list[list[str]] = []

    def gather(parts, world):  # rank 0's parts, and a second rank that happened to get no documents
        gathered.append([sorted(s.doc_id for s in part.samples) for part in parts])
        return [[part, TaskOutcome(task=None, samples=[])] for part in parts]

    monkeypatch.setattr(evaluate_module, "gather_parts", gather)
    monkeypatch.setattr(evaluate_module, "share_run_id", lambda world, run_id: run_id)
    half = evaluate_module.evaluate("omniworld", "oracle", output_dir=tmp_path / "half", num_workers=0, shard="0/2")
    rank_0 = evaluate_module.evaluate("omniworld", "oracle", output_dir=tmp_path / "ranks", num_workers=0,
                                      world=World(rank=0, size=2))
    assert len(gathered) == 1 and len(gathered[0]) == len(half.outcomes) == 6
    for alone, part, outcome in zip(half.outcomes, gathered[0], rank_0.outcomes):
        documents = [s.doc_id for s in alone.samples]  # rank 0 of 2 takes the documents of shard 0/2
        assert sorted(documents) == part and [s.doc_id for s in outcome.samples] == documents
        assert {k: v.to_dict() for k, v in outcome.metrics.items()} == {
            k: v.to_dict() for k, v in alone.metrics.items()}  # scored on rank 0, as one process scores
    samples = rank_0.run_dir / "samples"
    assert sorted(p.name for p in samples.iterdir()) == sorted(f"{o.task.name}.jsonl" for o in rank_0.outcomes)
    assert results(rank_0.run_dir)["status"] == "complete"

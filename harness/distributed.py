"""Data parallelism under ``torchrun``: every rank evaluates its part of each task, rank 0 scores the whole.

``torchrun --nproc-per-node N -m harness run ...`` (or ``harness run nproc=N``, :mod:`harness.launch`) starts N
copies of the same run. Each rank takes the selected documents whose index is congruent to its rank (after
``shard`` and ``limit``, so the union is exactly what one process would evaluate), calls its own model copy
(``cuda:LOCAL_RANK`` when CUDA is there, else the CPU), writes its responses to the shared cache and its samples to
``samples/<task>.rank<r>.jsonl`` as they finish. Once every rank has done its parts of every task, rank 0 gathers
all the samples in one collective over ``torch.distributed`` (gloo: ranks exchange only sample records, which live
on the CPU, so GPU runs need no NCCL communicator and its failure modes), puts each task's in document order, runs
its finalize and aggregate once and writes ``samples/<task>.jsonl`` and one ``results.json``: the same metrics
and predictions as a single process. Meeting once, rather than after every task, lets the tasks' imbalances
between ranks cancel instead of adding up (meeting after each of omniworld's 6 tasks, 2 ranks waited 0.5-1.8 s).

A rank that dies must not leave the others hanging: every collective has a timeout (``dist_timeout_s``, so also
the longest a rank that has done its share waits for the others), a peer's lost connection surfaces as an error
at the next collective, and ``torchrun`` stopping the survivors with SIGTERM is turned into
the same clean failure. Each rank then prints one line saying what happened and exits non-zero; the responses it
had finished are in the cache, so rerunning the same command recomputes only what is missing.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Mapping

from harness.api import HarnessError, ModelAdapter
from harness.cache import ResponseCache
from harness.cli import say
from harness.launch import World
from harness.prefetch import Prefetcher
from harness.routing_report import merge_counts
from harness.runner import (
    RunSettings,
    SampleLog,
    TaskOutcome,
    aggregate_outcome,
    evaluate_task,
    nothing_usable,
)
from harness.task import Task

DEFAULT_TIMEOUT_S = 1800.0  # the longest a rank may wait for another at a collective (their imbalance over a run)


class RankFailure(HarnessError):
    """Another rank died, timed out or was stopped: this rank cannot finish the run."""


RANK_FAILED = 1  # the exit status of a rank that could not finish the run
STOP_GRACE_S = 20.0  # after the launcher's SIGTERM, how long a rank may take to stop cleanly (launchers wait 30 s)


@contextmanager
def joined(world: World, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Join the (gloo) process group for the duration of a run, with a collective timeout, and with SIGTERM (how
    ``torchrun`` stops the survivors of a failed rank) raising :class:`RankFailure` so that caches are flushed
    and one clear line is printed; a stop that does not finish within :data:`STOP_GRACE_S` exits anyway
    (:func:`_stop_deadline`)."""
    import torch.distributed as dist

    message = (f"rank {world.rank}: stopped by the launcher (another rank failed); finished samples are cached, "
               f"rerun the same command to resume")

    def stopped(signum: int, frame: Any) -> None:
        raise RankFailure(message)

    with _stop_deadline(message, STOP_GRACE_S):  # it also covers leaving the process group
        if not world.is_main:
            _await_store(os.environ, timeout_s)
        dist.init_process_group("gloo", rank=world.rank, world_size=world.size,
                                timeout=dt.timedelta(seconds=timeout_s))
        previous = signal.signal(signal.SIGTERM, stopped)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)
            dist.destroy_process_group()


def _await_store(env: Mapping[str, str], timeout_s: float, poll_s: float = 0.005) -> None:
    """Wait until rank 0's rendezvous store accepts connections (``MASTER_ADDR``:``MASTER_PORT``).

    Rank 0 hosts the store when it is started by :mod:`harness.launch` or by torchrun without its agent's store.
    A rank whose store client connects before the server listens is sent into the client's retry back-off, which
    held both ranks 0.5-0.9 s on every other start of a 2-rank run; polling the port first costs milliseconds.
    Gives up silently at the deadline: ``init_process_group`` then reports the failure its own way."""
    if env.get("TORCHELASTIC_USE_AGENT_STORE") == "True" or not env.get("MASTER_PORT", "").isdigit():
        return  # torchrun's agent started the store before this rank; or no env:// rendezvous to wait for
    deadline = time.monotonic() + timeout_s
    address = (env.get("MASTER_ADDR", "127.0.0.1"), int(env["MASTER_PORT"]))
    while time.monotonic() < deadline:
        try:
            socket.create_connection(address, timeout=1.0).close()
            return
        except OSError:
            time.sleep(poll_s)


@contextmanager
def _stop_deadline(message: str, grace_s: float) -> Iterator[None]:
    """After a SIGTERM, give the clean stop ``grace_s`` seconds, then print ``message`` and exit with
    :data:`RANK_FAILED`, as a clean stop does.

    The clean stop runs in the main thread, which may be inside a call that never returns (a collective with a
    peer gone, a decoder pool whose worker died holding its queue); there the launcher's SIGKILL would end the
    rank without its line. The deadline is kept by a thread that learns of the signal from the interpreter's
    wakeup file descriptor, so it starts counting even while the main thread cannot run Python. Nothing is lost
    by exiting: samples and cache rows are written as they finish, and the cache replays its log on the rerun."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    over = threading.Event()

    def keep_deadline() -> None:
        while received := os.read(read_end, 64):  # b"" once the run closes the pipe
            if signal.SIGTERM in received:
                if over.wait(grace_s):  # the stop got out of the run in time
                    return
                say(f"{message} (the clean stop took over {grace_s:.0f} s; exiting)")
                os._exit(RANK_FAILED)

    keeper = threading.Thread(target=keep_deadline, name="stop-deadline", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        over.set()
        signal.set_wakeup_fd(previous)
        os.close(write_end)  # a keeper waiting for a signal reads end-of-file
        keeper.join()
        os.close(read_end)


@contextmanager
def _collective(world: World, what: str) -> Iterator[None]:
    """Turn a collective's failure (a peer's closed connection, a timeout) into one line naming this rank."""
    try:
        yield
    except RankFailure:
        raise
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise RankFailure(f"rank {world.rank}: {what} failed: another rank died or did not arrive within "
                          f"dist_timeout_s ({type(e).__name__}: {first_line}); finished samples are cached, rerun "
                          f"the same command to resume") from e


def device_for(world: World, gpus: int) -> str:
    """The device this rank's model goes on, given the ``gpus`` this node shows: the GPU numbered by its rank
    on this node (``LOCAL_RANK``: with several nodes the global rank counts past this node's GPUs), else
    the CPU. A node with fewer GPUs than ranks is refused rather than having two ranks share one silently."""
    if gpus <= 0:
        return "cpu"
    if world.local_rank >= gpus:
        raise HarnessError(f"rank {world.rank} is local rank {world.local_rank} on its node, which shows only "
                           f"{gpus} GPU(s): start at most {gpus} processes per node (--nproc-per-node)")
    return f"cuda:{world.local_rank}"


def visible_gpus() -> int:
    """How many CUDA devices this process sees (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def place_model(model_config: Mapping[str, Any], world: World) -> dict[str, Any]:
    """The model config with ``args.device`` set to this rank's device, for adapters that take a device and
    were not pinned to one (a config saying ``cuda`` means "this rank's GPU")."""
    from harness.models import MODELS

    factory = MODELS.get(model_config.get("adapter", model_config["name"]))
    args = dict(model_config.get("args") or {})
    if "device" not in inspect.signature(factory).parameters or args.get("device") not in (None, "cuda"):
        return dict(model_config)
    return {**model_config, "args": {**args, "device": device_for(world, visible_gpus())}}


def share_run_id(world: World, run_id: str) -> str:
    """Rank 0's run id, on every rank (all ranks write into one run directory)."""
    import torch.distributed as dist

    box = [run_id]
    with _collective(world, "agreeing on the run directory"):
        dist.broadcast_object_list(box, src=0)
    return box[0]


def evaluate_part(task: Task, model: ModelAdapter, settings: RunSettings, cache: ResponseCache | None,
                  samples_dir: Path, world: World, prefetcher: Prefetcher | None = None) -> TaskOutcome:
    """Evaluate this rank's part of ``task``; its samples go to ``samples/<task>.rank<r>.jsonl`` as they finish."""
    part_log = SampleLog(samples_dir / f"{task.name}.rank{world.rank}.jsonl")
    try:
        return evaluate_task(task, model, replace(settings, part=(world.rank, world.size)), cache, part_log,
                             prefetcher)
    finally:
        part_log.close()


def gather_parts(parts: list[TaskOutcome], world: World) -> list[list[TaskOutcome]] | None:
    """Every rank's parts, on rank 0, per task in run order (None on the other ranks).

    One collective once every rank has done its parts of every task: the ranks wait for each other once, where
    waiting after each task would add up every task's imbalance, and none waits while rank 0 scores (a judged
    task can take longer than the collective timeout)."""
    import torch.distributed as dist

    gathered: list[list[TaskOutcome]] | None = [[] for _ in range(world.size)] if world.is_main else None
    with _collective(world, "gathering every rank's samples"):
        dist.gather_object([_portable(part) for part in parts], gathered, dst=0)
    if gathered is None:
        return None
    if any(len(rank_parts) != len(parts) for rank_parts in gathered):
        counts = ", ".join(f"rank {r}: {len(rank_parts)}" for r, rank_parts in enumerate(gathered))
        raise RankFailure(f"the ranks evaluated different numbers of tasks ({counts}); they must run the same "
                          f"command")
    return [list(task_parts) for task_parts in zip(*gathered)]


def whole_task(task: Task, parts: list[TaskOutcome], settings: RunSettings, samples_dir: Path) -> TaskOutcome:
    """On rank 0, the whole task from every rank's part: finalized and aggregated once, its samples written to
    ``samples/<task>.jsonl`` in document order (replacing the parts' logs), as one process would."""
    whole = _combine(task, parts)
    log = SampleLog(samples_dir / f"{task.name}.jsonl")
    try:
        for sample in whole.samples:
            log.write(sample)
        if not settings.infer_only and whole.fatal is None:
            aggregate_outcome(whole, log)
    finally:
        log.close()
    whole.fatal = whole.fatal or nothing_usable(whole, None)
    for rank in range(len(parts)):  # every record is now in the task's own log
        (samples_dir / f"{task.name}.rank{rank}.jsonl").unlink(missing_ok=True)
    return whole


def _portable(outcome: TaskOutcome) -> TaskOutcome:
    """The outcome without its task object (each rank has its own; rank 0 keeps its own)."""
    return TaskOutcome(task=None, samples=outcome.samples, routing=outcome.routing,  # type: ignore[arg-type]
                       seconds=outcome.seconds, model_seconds=outcome.model_seconds,
                       model_calls=outcome.model_calls, fatal=outcome.fatal, positions=outcome.positions)


def _combine(task: Task, parts: list[TaskOutcome]) -> TaskOutcome:
    """One outcome from every rank's part: samples in document order, model time and calls summed, wall time
    the slowest rank's, and the first rank's fatal error (the task's data is the same for every rank)."""
    whole = TaskOutcome(task=task, samples=[])
    for part in parts:
        whole.samples.extend(part.samples)
        whole.positions.update(part.positions)
        whole.model_seconds += part.model_seconds
        whole.model_calls += part.model_calls
        whole.seconds = max(whole.seconds, part.seconds)
        whole.fatal = whole.fatal or part.fatal
        merge_counts(whole.routing, part.routing)
    whole.samples.sort(key=lambda s: whole.positions.get(s.doc_id, (0, -1)))
    return whole

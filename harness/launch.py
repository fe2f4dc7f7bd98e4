"""``python -m harness run nproc=N ...``: N ranks of one run on this machine, started without torchrun.

The ranks are ordinary ``harness run`` processes given the environment torchrun would give them (``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``), so :mod:`harness.distributed` treats both
launches alike. Why a launcher of our own: torchrun imports torch and runs a rendezvous before the first rank
starts (about 2 s on the 2-core CI machine, on a job of 15-20 s), and one machine needs neither. This one
imports nothing heavy, and like torchrun it stops the survivors with SIGTERM when a rank fails, which each
rank turns into one line and an honest exit code. Many nodes still go through torchrun (README: Scaling out).
:class:`World` and :func:`launched_world` read that environment back in each rank, whichever launcher set it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.cli import INTERRUPTED, say
from harness.errors import ConfigError

GRACE_S = 30.0  # how long the survivors of a failed rank get to record their state after SIGTERM
_POLL_S = 0.01  # how often the launcher looks at its ranks (its exit follows the last rank's by half of this)


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes (as ``torchrun`` describes it)."""

    rank: int
    size: int
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_world(env: Mapping[str, str] | None = None) -> World | None:
    """The world ``torchrun`` announces (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or None for a lone process."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return None
    return World(rank=int(env["RANK"]), size=size, local_rank=int(env.get("LOCAL_RANK", "0") or 0))


def split_nproc(args: Sequence[str]) -> tuple[int, list[str]]:
    """The ``nproc=N`` override (1 when absent) and the other arguments, which every rank receives."""
    nproc, rest = 1, []
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+") == "nproc":
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(f"nproc must be a positive integer (ranks on this machine), got {value!r}")
            nproc = int(value)
        else:
            rest.append(arg)
    return nproc, rest


def rank_env(rank: int, nproc: int, port: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """What torchrun's standalone launch tells a rank, plus its share of the cores (unless the user set
    ``OMP_NUM_THREADS``): N ranks each running all the cores' threads would oversubscribe them N times."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
               GROUP_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    return env


def launch_ranks(argv: Sequence[str], nproc: int) -> int:
    """Run ``python -m harness ARGV`` as ``nproc`` ranks and return the run's exit status: 0 when every rank
    succeeded, else the status of the first rank that failed (a signal ``s`` as ``128 + s``, as shells do)."""
    if launched_world() is not None:
        raise ConfigError("nproc=N starts its own ranks; under torchrun leave it out (torchrun decides the ranks)")
    port = _free_port()
    ranks = [subprocess.Popen([sys.executable, "-m", "harness", *argv], env=rank_env(r, nproc, port))
             for r in range(nproc)]
    try:
        return _supervise(ranks)
    except KeyboardInterrupt:  # the terminal sent SIGINT to the ranks too: each records its state and says so
        _stop(ranks, None)
        return INTERRUPTED
    finally:
        _stop(ranks, signal.SIGTERM)


def _supervise(ranks: list[subprocess.Popen]) -> int:
    while True:
        codes = [p.poll() for p in ranks]
        failed = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
        if failed:
            rank, code = failed[0]
            status = 128 - code if code < 0 else code
            if code < 0:
                say(f"error: rank {rank} was killed by {signal.Signals(-code).name}; stopping the other ranks")
            return status  # launch_ranks stops the others
        if all(c == 0 for c in codes):
            return 0
        time.sleep(_POLL_S)


def _stop(ranks: list[subprocess.Popen], how: signal.Signals | None) -> None:
    """Signal the ranks still running (``how``; None: they were signalled already), wait :data:`GRACE_S` for
    them, then kill what is left."""
    alive = [p for p in ranks if p.poll() is None]
    for p in alive:
        if how is not None:
            p.send_signal(how)
    deadline = time.monotonic() + GRACE_S
    for p in alive:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _free_port() -> int:
    """A TCP port free on this machine now, for rank 0's store (the same choice torchrun --standalone makes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

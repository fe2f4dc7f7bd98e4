"""Run independent expert computations side by side on the CPU, one intra-op thread each.

At prefill an expert sees a few hundred rows. Split over two threads, such a GEMM reaches about 80% of the
machine's two-thread matmul peak; run whole on one thread, the same GEMM reaches 93-95% of the one-thread peak
(bench/moe_layer.py). So with T intra-op threads the experts are dealt to T workers, each of which has set its
own torch/MKL/OpenMP thread count to 1, instead of every expert being split T ways.

Only for inference on the CPU without autocast (the caller's grad and inference modes are carried over to the
workers; autograd graphs and autocast are not) and only when torch uses more than one thread. Workers start on first use, not at import, and are dropped in a forked child (where they no
longer exist).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence

import torch

_STOP = object()


class ExpertThreads:
    """``n`` worker threads, each with torch's intra-op thread count set to 1 for itself."""

    def __init__(self, n: int):
        self.n = n
        self._inbox: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(n)]
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._busy = threading.Lock()  # one ``run`` at a time: the workers answer on one queue
        threads_before = torch.get_num_threads()
        ready = threading.Barrier(n + 1)
        for i, inbox in enumerate(self._inbox):
            threading.Thread(target=self._work, args=(inbox, ready), daemon=True, name=f"unimoe-expert-{i}").start()
        ready.wait()
        # ``set_num_threads(1)`` in a worker also lowers the process-wide default that threads started later
        # inherit; put it back (the caller's own OpenMP and MKL settings are per thread and untouched).
        torch.set_num_threads(threads_before)

    def _work(self, inbox: queue.SimpleQueue, ready: threading.Barrier) -> None:
        torch.get_num_threads()  # torch's lazy per-thread init first, or it would later undo the line below
        torch.set_num_threads(1)
        ready.wait()
        while (work := inbox.get()) is not _STOP:
            inference, jobs = work
            try:
                with torch.inference_mode(inference), torch.no_grad():
                    for job in jobs:
                        job()
                self._done.put(None)
            except BaseException as error:  # handed to the caller, which re-raises it
                self._done.put(error)

    def run(self, jobs: Sequence[tuple[float, Callable[[], None]]]) -> None:
        """Run every ``(cost, job)`` without autograd; jobs are dealt largest first to the least loaded worker
        (LPT). The first error a job raises is raised here once every worker is done."""
        if torch.is_grad_enabled():
            raise RuntimeError("ExpertThreads.run: the workers do not record autograd graphs; call it under no_grad")
        load = [0.0] * self.n
        plans: list[list[Callable[[], None]]] = [[] for _ in range(self.n)]
        for cost, job in sorted(jobs, key=lambda item: -item[0]):
            w = min(range(self.n), key=load.__getitem__)
            load[w] += cost
            plans[w].append(job)
        busy = [(inbox, plan) for inbox, plan in zip(self._inbox, plans) if plan]
        inference = torch.is_inference_mode_enabled()
        with self._busy:
            for inbox, plan in busy:
                inbox.put((inference, plan))
            errors = [self._done.get() for _ in busy]
        if error := next((e for e in errors if e is not None), None):
            raise error

    def close(self) -> None:
        for inbox in self._inbox:
            inbox.put(_STOP)


_pool: ExpertThreads | None = None
_lock = threading.Lock()
_fork_hook = False


def _forget_in_child() -> None:
    global _pool
    _pool = None


def expert_threads() -> ExpertThreads | None:
    """The shared pool sized to torch's current thread count, or None when that is 1."""
    global _pool, _fork_hook
    n = torch.get_num_threads()
    if n <= 1:
        return None
    with _lock:
        if not _fork_hook:
            os.register_at_fork(after_in_child=_forget_in_child)
            _fork_hook = True
        if _pool is None or _pool.n != n:
            if _pool is not None:
                _pool.close()
            _pool = ExpertThreads(n)
        return _pool

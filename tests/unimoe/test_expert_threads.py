"""Experts run side by side on CPU threads at prefill: same results, errors surfaced, thread settings kept."""

from __future__ import annotations

import multiprocessing
import threading

import pytest
import torch

from unimoe import expert_threads as threads_module
from unimoe import moe as moe_module
from unimoe.expert_threads import ExpertThreads, expert_threads

from .test_moe import block, naive, tiny


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("changes", [{}, {"mlp_dynamic_top_p": 0.0, "mlp_dynamic_top_k": 2}])
def test_prefill_on_expert_threads_equals_one_expert_after_another(changes, two_threads, monkeypatch):
    """Against the sequential dispatch (itself checked against the naive reference in test_moe; at 150 random
    tokens some near-tie multipliers differ from 1, which that reference leaves out)."""
    config = tiny(**changes)
    moe = block(config)
    x = torch.randn(1, 150, config.hidden_size)
    calls = []
    run = ExpertThreads.run
    monkeypatch.setattr(ExpertThreads, "run", lambda self, jobs: calls.append(len(jobs)) or run(self, jobs))
    with torch.inference_mode():
        out, info = moe(x)
        assert calls and calls[0] > 1, "a 150-token prefill on two threads should run its experts side by side"
        monkeypatch.setattr(moe_module, "PARALLEL_MIN_ROWS", 10**9)
        ref, ref_info = moe(x)
    assert len(calls) == 1
    torch.testing.assert_close(info.expert_ids, ref_info.expert_ids, rtol=0, atol=0)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_training_and_one_thread_do_not_use_expert_threads(two_threads, monkeypatch):
    moe = block(tiny())
    x = torch.randn(1, 150, moe.gate.in_features)
    monkeypatch.setattr(ExpertThreads, "run", lambda self, jobs: pytest.fail("used expert threads"))
    moe(x).__getitem__(0).sum().backward()  # autograd: the workers record no graphs
    torch.set_num_threads(1)
    with torch.no_grad():
        moe(x)


def test_jobs_are_balanced_and_errors_reach_the_caller(two_threads):
    pool = expert_threads()
    assert pool is not None and pool.n == 2
    seen: dict[str, str] = {}

    def job(name: str):
        return lambda: seen.__setitem__(name, threading.current_thread().name)

    with torch.no_grad():
        pool.run([(10.0, job("big")), (6.0, job("a")), (5.0, job("b"))])
        assert seen["a"] == seen["b"] != seen["big"]  # LPT: the two small jobs share the other worker

        def fails():
            raise ValueError("expert 3 failed")

        with pytest.raises(ValueError, match="expert 3 failed"):
            pool.run([(1.0, fails), (1.0, job("c"))])
        pool.run([(1.0, job("after"))])  # still usable
    assert "after" in seen
    with pytest.raises(RuntimeError, match="no_grad"):
        pool.run([(1.0, job("x"))])


def test_workers_use_one_thread_and_leave_the_callers_setting(two_threads):
    pool = expert_threads()
    counts = []
    with torch.no_grad():
        pool.run([(1.0, lambda: counts.append(torch.get_num_threads())) for _ in range(2)])
    assert counts == [1, 1]
    assert torch.get_num_threads() == 2
    later = []
    t = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert later == [2], "threads started later must not inherit the workers' one-thread setting"


def _child(queue) -> None:
    with torch.no_grad():
        out = []
        expert_threads().run([(1.0, lambda: out.append(1)), (1.0, lambda: out.append(2))])
    queue.put(sorted(out))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_child_starts_its_own_workers(two_threads):
    assert expert_threads() is not None  # the parent's workers exist; a child must not wait on them
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == [1, 2]
    assert threads_module._pool is not None  # the parent keeps its own

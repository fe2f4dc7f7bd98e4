"""A wall-clock budget for scoring one sample, so one pathological answer cannot hang a whole run.

The budget is a ``SIGALRM`` timer: it interrupts Python code (an extraction rule, a metric, sympy) between
bytecodes, which is where scoring spends its time once the expression evaluators bound their operand sizes
(one C call such as ``math.factorial(10**7)`` cannot be interrupted, hence those bounds). Signals reach only
the main thread, so elsewhere (a thread pool, a web server) the budget is not enforced. Waiting on a judge and
loading a scorer's model are not scoring: code doing them runs under :func:`untimed` and the clock stops.
"""

from __future__ import annotations

import functools
import signal
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from harness.api import HarnessError

DEFAULT_SCORING_SECONDS = 10.0

F = TypeVar("F", bound=Callable[..., Any])

_running: list[bool] = []  # one entry per active time_limit (main thread only); the clock counts when non-empty


class TimeLimitExceeded(BaseException):
    """The budget ran out. A BaseException, like KeyboardInterrupt, so that the broad ``except Exception`` of
    scoring code (MathVision's "any failure: not equal") cannot turn a timeout into a verdict."""


def scoring_seconds(value: Any) -> float | None:
    """The ``scoring_timeout_s`` setting checked: a positive number of seconds, or None (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise HarnessError(f"scoring_timeout_s must be a positive number of seconds or null, got {value!r}")
    return float(value)


def _enforceable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`TimeLimitExceeded` ("<what> took longer than N s") when the body runs past ``seconds``.
    ``None`` or 0 means no limit; so does a timer already running (an enclosing limit or the caller's own)."""
    if not seconds or not _enforceable() or signal.getitimer(signal.ITIMER_REAL)[0] > 0:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimeLimitExceeded(f"{what} took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    _running.append(True)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _running.pop()
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def clock_stopped() -> Iterator[None]:
    """Time spent inside does not count against an enclosing :func:`time_limit`."""
    if not _running or not _enforceable():
        yield
        return
    remaining = signal.setitimer(signal.ITIMER_REAL, 0)[0]
    try:
        yield
    finally:
        if remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, remaining)


def untimed(func: F) -> F:
    """Decorator: ``func`` runs with the scoring clock stopped (judge calls, loading a scorer's model)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with clock_stopped():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]

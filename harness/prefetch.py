"""Media decoding off the model's critical path: a pool of worker processes decodes the next batches' media
while the model computes the current one.

Requests keep naming media by path (decoded media never reach a request, its hash or the cache); the adapter
still calls :mod:`harness.media`'s loaders itself. The prefetcher starts, in ``num_workers`` processes, the very
loader calls the adapter is going to make (the standard decoding of each part: an image; an audio file or its
window; a video's frames at the part's fps and frame cap, and its soundtrack when asked) and offers each result
to the loader under its load key (:func:`harness.media.load_key`), so the adapter's call returns the decoded
media instead of decoding again. Adapters opt in with ``prefetch_media = True`` (those that send files
elsewhere or never look at media do not).

Memory is bounded: decodings are started for at most ``depth`` batches beyond the one being computed, and
whatever a finished batch did not take is dropped. Workers are the run's own children and die with it, even when
it is killed outright (a SIGKILLed rank must not leave decoders behind holding its pipes open).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Hashable, Iterator, Sequence, TypeVar

from harness import media
from harness.api import AudioPart, ImagePart, ModelAdapter, Request, VideoPart

Item = TypeVar("Item")


def planned_loads(request: Request) -> list[tuple[str, dict[str, Any]]]:
    """The loader calls (name, keyword arguments) that decode every media part of ``request`` as adapters
    decode them (see :mod:`harness.media`)."""
    loads: list[tuple[str, dict[str, Any]]] = []
    for part in request.media():
        if isinstance(part, ImagePart):
            loads.append(("load_image", {"path": part.path}))
        elif isinstance(part, AudioPart):
            loads.append(("load_audio", {"path": part.path, "start_time": part.start_time,
                                         "end_time": part.end_time}))
        elif isinstance(part, VideoPart):
            window = {"start_time": part.start_time, "end_time": part.end_time}
            loads.append(("load_video_frames", {"path": part.path, "fps": part.fps,
                                                "max_frames": part.max_frames, **window}))
            if part.use_audio:
                loads.append(("load_video_audio", {"path": part.path, **window}))
    return loads


def wants_prefetch(model: ModelAdapter) -> bool:
    """Whether ``model`` decodes media itself through :mod:`harness.media` (and so gains from prefetching)."""
    return bool(getattr(model, "prefetch_media", False))


def _worker_init(parent: int) -> None:
    """In a worker: leave Ctrl-C to the run (the terminal signals the whole process group; the run shuts the
    pool down, and a worker's own KeyboardInterrupt traceback would bury the run's one line), and be killed
    when ``parent`` dies (Linux ``PR_SET_PDEATHSIG``; elsewhere the pool's own shutdown is all there is)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)


class Prefetcher:
    """``num_workers`` decoding processes (started on first use) working ``depth`` batches ahead."""

    def __init__(self, num_workers: int = 2, depth: int = 2):
        if num_workers < 1 or depth < 1:
            raise ValueError(f"a prefetcher needs num_workers >= 1 and depth >= 1, got {num_workers}, {depth}")
        self.num_workers = num_workers
        self.depth = depth
        self._pool: ProcessPoolExecutor | None = None

    def ahead(self, batches: Sequence[Sequence[Item]], requests: Callable[[Sequence[Item]], Sequence[Request]]
              ) -> Iterator[Sequence[Item]]:
        """Yield ``batches`` in order; while the caller works on one, the next ``depth`` are being decoded.
        ``requests`` gives a batch's requests."""
        offered: dict[int, list[tuple[Hashable, Future]]] = {}
        try:
            for index, batch in enumerate(batches):
                for upcoming in range(index, min(index + 1 + self.depth, len(batches))):
                    if upcoming not in offered:
                        offered[upcoming] = self._start(requests(batches[upcoming]))
                yield batch
                self._drop(offered.pop(index))
        finally:
            for keys in offered.values():
                self._drop(keys)

    def _start(self, requests: Sequence[Request]) -> list[tuple[Hashable, Future]]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.num_workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        started = []
        for request in requests:
            for loader, kwargs in planned_loads(request):
                try:
                    decoding = self._pool.submit(media.decode, loader, **kwargs)
                except BrokenProcessPool:  # a worker died (a decoder crash): this batch decodes inline,
                    self._drop(started)       # the next one starts a fresh pool
                    self.close()
                    return []
                key = media.load_key(loader, **kwargs)
                media.offer(key, decoding)
                started.append((key, decoding))
        return started

    @staticmethod
    def _drop(started: list[tuple[Hashable, Future]]) -> None:
        """Forget what a finished batch left untaken (the adapter decoded differently, or not at all)."""
        for key, decoding in started:
            media.withdraw(key, decoding)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "Prefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Dynamic batching for ``harness serve``: concurrent HTTP requests become the adapter's batches.

Requests wait in a bounded queue; one worker takes the first waiting request, gathers more until the batch is
full or ``max_wait_s`` has passed since it started gathering, and runs the adapter on the batch in one thread
(adapters are not thread-safe and one model uses the machine's cores anyway). A batch that raises is retried
one request at a time, as the runner does, so one bad request cannot fail its neighbours. A full queue is
refused at once (:class:`QueueFull`, HTTP 503) rather than letting latency grow without bound.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

from harness.api import ModelAdapter, Request, Response


class QueueFull(RuntimeError):
    """More requests are waiting than the server accepts."""


@dataclass
class BatchStats:
    batches: int = 0
    requests: int = 0
    largest: int = 0


class DynamicBatcher:
    def __init__(self, adapter: ModelAdapter, max_batch: int = 16, max_wait_s: float = 0.01, max_queue: int = 256):
        self.adapter = adapter
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[tuple[Request, asyncio.Future]] | None = None
        self._worker: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, request: Request) -> Response | Exception:
        """The adapter's response, or the exception that failed this request alone."""
        assert self._queue is not None, "start() the batcher first"
        if self._queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self._queue.qsize()} requests are waiting (max_queue={self.max_queue}); retry later")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0 and self._queue.empty():
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), max(timeout, 0)) if timeout > 0
                                 else self._queue.get_nowait())
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
            live = [(r, f) for r, f in batch if not f.cancelled()]  # clients that hung up are skipped
            if not live:
                continue
            self.stats.batches += 1
            self.stats.requests += len(live)
            self.stats.largest = max(self.stats.largest, len(live))
            results = await loop.run_in_executor(self._pool, self._generate, [r for r, _ in live])
            for (_, future), result in zip(live, results):
                if not future.done():
                    future.set_result(result)

    def _generate(self, requests: Sequence[Request]) -> list[Response | Exception]:
        try:
            responses = list(self.adapter.generate(requests))
            if len(responses) == len(requests):
                return responses  # type: ignore[return-value]
            error: Exception = RuntimeError(f"model returned {len(responses)} responses for {len(requests)} requests")
        except Exception as e:  # noqa: BLE001  (isolated below, then reported to the clients)
            error = e
        return [error] if len(requests) == 1 else [self._one(r) for r in requests]

    def _one(self, request: Request) -> Response | Exception:
        try:
            (response,) = self.adapter.generate([request])
            return response
        except Exception as e:  # noqa: BLE001  (reported to that request's client)
            return e

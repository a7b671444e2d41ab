"""Dynamic micro-batching: texts of concurrent requests merged into one forward pass.

Each request submits its texts as one job. A single task per model takes the first job
waiting, then every job already queued, then waits up to ``max_wait`` for more, until
``max_batch`` texts are gathered; it runs the model once on all of them in the inference
thread (never on the event loop) and hands each job its rows. While one batch runs, the next
fills, so the busier the server, the larger the batches. The queue is bounded in texts: a job
that would overflow it is refused at once (:class:`QueueFull`, an HTTP 503), so memory stays
bounded under any load.

    >>> batcher = MicroBatcher(model_fn, executor, max_batch=64, max_wait=0.002,
    ...                        max_queue=4096)                                  # doctest: +SKIP
    >>> rows = await batcher.submit(["a text", "another"])                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The model already has ``max_queue`` texts waiting."""


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future[list[Any]]
    queued: float = field(default_factory=time.perf_counter)


#: Called after each batch: (texts in it, jobs in it, seconds the model took).
OnBatch = Callable[[int, int, float], None]


class MicroBatcher:
    """Merges the items of concurrent :meth:`submit` calls into calls of ``fn``.

    ``fn(items) -> results`` (one result per item, in order) runs in ``executor``. Jobs are
    never split: one larger than ``max_batch`` runs as a batch of its own.
    """

    def __init__(self, fn: Callable[[list[Any]], Sequence[Any]], executor: Executor, *,
                 max_batch: int, max_wait: float, max_queue: int,
                 on_batch: OnBatch | None = None) -> None:
        self.fn = fn
        self.executor = executor
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.waiting = 0  # items queued, not yet taken into a batch
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._held: _Job | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, items: list[Any]) -> list[Any]:
        """The results of ``fn`` for ``items``, computed in a batch with other requests'."""
        if self.waiting + len(items) > self.max_queue:
            raise QueueFull(f"{self.waiting} texts are waiting")
        self.start()
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.waiting += len(items)
        self._queue.put_nowait(_Job(items, future))
        return await future

    def _take(self, job: _Job, batch: list[_Job]) -> int:
        self.waiting -= len(job.items)
        if job.future.done():  # the client went away: skip its texts
            return 0
        batch.append(job)
        return len(job.items)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch: list[_Job] = []
            first, self._held = self._held, None
            size = self._take(first or await self._queue.get(), batch)
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                if self._queue.empty():
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), left)
                    except asyncio.TimeoutError:
                        break
                else:
                    job = self._queue.get_nowait()
                if batch and size + len(job.items) > self.max_batch:
                    self._held = job  # first in the next batch
                    break
                size += self._take(job, batch)
            if batch:
                await self._compute(batch, size)

    async def _compute(self, batch: list[_Job], size: int) -> None:
        items = [item for job in batch for item in job.items]
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self.executor, self.fn, items)
        except Exception as e:  # the requests fail; the batcher goes on
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(e)
            return
        if self.on_batch is not None:
            self.on_batch(size, len(batch), time.perf_counter() - start)
        at = 0
        for job in batch:
            n = len(job.items)
            if not job.future.done():
                job.future.set_result(list(results[at:at + n]))
            at += n

"""Micro-batching: concurrent requests that arrive within a millisecond or two share one model call.

Requests are queued; a collector takes everything queued, and when the previous batch showed that
requests come concurrently it waits up to `max_wait_s` for more, then runs the batch function in
the one model thread. While that thread works, new requests queue up for the next batch, so under
load batches grow by themselves, and a lone request never waits for company.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

__all__ = ["MicroBatcher"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """Groups `submit` calls into calls of `function(items) -> results` (same order, same length)."""

    def __init__(
        self,
        function: Callable[[Sequence[Item]], Sequence[Result]],
        executor: ThreadPoolExecutor,
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.0015,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._function, self._executor = function, executor
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self._on_batch = on_batch
        self._queue: asyncio.Queue[tuple[Item, asyncio.Future]] | None = None
        self._collector: asyncio.Task | None = None
        self._last_size = 1

    def start(self) -> None:
        """Starts the collector on the running event loop."""
        self._queue = asyncio.Queue()
        self._collector = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            try:
                await self._collector
            except asyncio.CancelledError:
                pass

    async def submit(self, item: Item) -> Result:
        """The result for `item`, computed in a batch with whatever else is queued."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _collect(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await self._fill(batch)
            self._last_size = len(batch)
            await self._run(batch)

    async def _fill(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        self._take_queued(batch)
        if self._last_size <= 1 and len(batch) == 1:
            return
        deadline = time.perf_counter() + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                return
            self._take_queued(batch)

    def _take_queued(self, batch: list) -> None:
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    async def _run(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        live = [(item, future) for item, future in batch if not future.cancelled()]
        if not live:
            return
        if self._on_batch is not None:
            self._on_batch(len(live))
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._function, [item for item, _ in live])
        except Exception as error:  # the requests of this batch fail with it; the collector goes on
            for _, future in live:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(live, results):
            if not future.done():
                future.set_result(result)

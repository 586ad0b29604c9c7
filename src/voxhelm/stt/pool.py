"""Bounded inference threads: work never runs on an event loop, and excess work is refused.

``max_workers`` jobs run at once; up to ``max_waiting`` more may queue; beyond that,
``submit`` raises ``Busy`` at once (HTTP answers 429 with Retry-After) instead of piling up
requests that would all time out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from voxhelm.errors import Busy

T = TypeVar("T")


class InferencePool:
    def __init__(self, max_workers: int, max_waiting: int) -> None:
        self.max_workers = max_workers
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="voxhelm-inference")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        with self._lock:
            if self._in_flight >= self.max_workers + self.max_waiting:
                raise Busy(
                    "The server is busy with other transcriptions; retry shortly.",
                    retry_after=2,
                    code="server_busy",
                )
            self._in_flight += 1
        future = self._executor.submit(fn)
        future.add_done_callback(self._release)
        return future

    def _release(self, _future: Future[T]) -> None:
        with self._lock:
            self._in_flight -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on an inference thread and await its result."""
        return await asyncio.wrap_future(self.submit(fn))


_pools: dict[tuple[int, int], InferencePool] = {}
_pools_lock = threading.Lock()


def inference_pool(max_workers: int, max_waiting: int) -> InferencePool:
    """The process-wide pool for these limits (one per distinct configuration)."""
    key = (max_workers, max_waiting)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = InferencePool(max_workers, max_waiting)
        return pool


def in_flight() -> int:
    """Inference calls running or queued in this process, over every pool (for metrics)."""
    with _pools_lock:
        return sum(pool.in_flight for pool in _pools.values())

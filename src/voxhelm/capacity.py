"""Capacity, in one place: who may run model work now, who waits, and who is refused.

Two mechanisms, one per scope:

- **Lanes** (:mod:`voxhelm.lanes`, across every process of one host): a model call holds a
  slot of its lane for one window of audio (or one sentence of speech). Interactive work
  (Wyoming voice) goes first and has a slot of its own. How long a caller waits for a slot
  is its :class:`Admission`: a voice command or a sync request ``VOXHELM_LANE_WAIT_SECONDS``
  (then 429 ``server_busy``), a batch job an hour (nobody waits for it in real time).
- **Pools** (within one process): threads for synchronous HTTP work, so no model call runs
  on the event loop. ``VOXHELM_STT_MAX_CONCURRENCY`` requests run and
  ``VOXHELM_STT_MAX_WAITING`` more may queue; beyond that a request is refused at once with
  429 rather than piling up requests that would all time out. Transcription and speech have
  a pool each, with the same limits; ``voxhelm_inference_in_flight`` counts both.

Diarization and speaker embeddings also hold the process's one diarization lock (they
hold a whole recording's embeddings: two at once would double the peak memory); a caller
waits for it no longer than for a slot, so a sync request behind a long batch diarization
gets its 429 in time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from voxhelm import lanes
from voxhelm.config import Config, LanesConfig
from voxhelm.errors import Busy

T = TypeVar("T")

BATCH_WAIT_SECONDS = 3600.0
"""A batch job holds a lane slot one window (~30 s of audio) at a time and queues for the
next behind interactive and earlier work; it may wait long without failing, since nobody
waits for it in real time (its heartbeat goes on meanwhile)."""


@dataclass(frozen=True)
class Admission:
    """A lane, and how long to wait for one of its slots (None: the configured wait)."""

    lane: str
    wait_seconds: float | None = None


VOICE = Admission(lanes.INTERACTIVE)
"""Wyoming: a person waits for the answer."""
SYNC = Admission(lanes.NON_INTERACTIVE)
"""A synchronous HTTP request (transcription, speech, a console run)."""
BATCH = Admission(lanes.NON_INTERACTIVE, BATCH_WAIT_SECONDS)
"""A batch job's step."""

diarization_lock = threading.Lock()


@contextmanager
def slot(config: LanesConfig, admission: Admission) -> Iterator[None]:
    """Hold a slot of the admission's lane; raises :class:`Busy` when none came in time."""
    with lanes.admit(config, admission.lane, admission.wait_seconds):
        yield


@contextmanager
def spare_slot(config: LanesConfig, admission: Admission) -> Iterator[bool]:
    """Hold a slot of the admission's lane only if one is free now and nobody waits ahead;
    yields whether it does (see :meth:`voxhelm.lanes.LaneScheduler.spare`)."""
    with lanes.spare(config, admission.lane) as ticket:
        yield ticket is not None


@contextmanager
def model_work(config: Config, admission: Admission = BATCH) -> Iterator[None]:
    """Hold a slot (a batch job's, unless a request waits: ``SYNC``) and the diarization
    lock (diarization and speaker embeddings); raises :class:`Busy` when either did not
    come within the admission's wait."""
    wait = config.lanes.wait_seconds if admission.wait_seconds is None else admission.wait_seconds
    with slot(config.lanes, admission):
        if not diarization_lock.acquire(timeout=wait):
            raise Busy(
                "The server is busy with another diarization; retry shortly.",
                retry_after=2,
                code="server_busy",
            )
        try:
            yield
        finally:
            diarization_lock.release()


class InferencePool:
    """Threads for one kind of synchronous work, and how much of it may be in flight."""

    def __init__(
        self, max_workers: int, max_waiting: int, name: str = "inference", work: str = ""
    ) -> None:
        self.work = work or "transcriptions"
        self.max_workers = max_workers
        self.max_waiting = max_waiting
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix=f"voxhelm-{name}")
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def admit(self) -> None:
        """Count one piece of work in flight; raises Busy when the pool is full. Work run
        step by step (:meth:`run_step`, a speech response) is admitted once, before it
        starts, and so never refused halfway; :meth:`release` ends it."""
        with self._lock:
            if self._in_flight >= self.max_workers + self.max_waiting:
                raise Busy(
                    f"The server is busy with other {self.work}; retry shortly.",
                    retry_after=2,
                    code="server_busy",
                )
            self._in_flight += 1

    def release(self, _future: object = None) -> None:
        with self._lock:
            self._in_flight -= 1

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a pool thread, counted in flight until it ends; raises Busy when
        the pool is full."""
        self.admit()
        future = self._executor.submit(fn)
        future.add_done_callback(self.release)
        return future

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on a pool thread and await its result."""
        return await asyncio.wrap_future(self.submit(fn))

    async def run_step(self, fn: Callable[[], T]) -> T:
        """Run one step of held work on a pool thread (not counted again)."""
        return await asyncio.wrap_future(self._executor.submit(fn))


_pools: dict[tuple[str, int, int], InferencePool] = {}
_pools_lock = threading.Lock()


def _shared(name: str, max_workers: int, max_waiting: int, work: str = "") -> InferencePool:
    key = (name, max_workers, max_waiting)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = InferencePool(max_workers, max_waiting, name, work)
        return pool


def inference_pool(max_workers: int, max_waiting: int) -> InferencePool:
    """The process-wide transcription pool for these limits."""
    return _shared("inference", max_workers, max_waiting)


def transcription_pool(config: Config) -> InferencePool:
    """The transcription pool of ``config`` (sync API requests, SSE streams, console runs)."""
    return inference_pool(config.stt.max_concurrency, config.stt.max_waiting)


def speech_pool(config: Config) -> InferencePool:
    """The speech pool of ``config``: the same limits as transcription."""
    return _shared("speech", config.stt.max_concurrency, config.stt.max_waiting, "speech work")


def in_flight() -> int:
    """Synchronous work running or queued in this process, over every pool (for metrics)."""
    with _pools_lock:
        return sum(pool.in_flight for pool in _pools.values())

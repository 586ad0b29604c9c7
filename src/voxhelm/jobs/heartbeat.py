"""The heartbeat of a running job: a thread that proves every few seconds its worker lives.

A job whose heartbeat stops (the worker was killed, the machine lost power) is found by the
sweeper and re-queued or failed. When a beat is refused, the attempt no longer owns the
job (canceled, or re-queued because the beats were late): ``lost`` tells the pipeline to
stop at its next checkpoint.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import threading
from types import TracebackType

from django.db import DatabaseError, connection

from voxhelm.jobs.models import Job

logger = logging.getLogger("voxhelm.jobs")


def worker_identity() -> str:
    """``hostname:pid``: who runs an attempt (shown in logs, stored on the job)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    def __init__(self, job: Job, interval: float) -> None:
        # A copy, so the beating thread never shares an instance the pipeline updates.
        self._job = copy.copy(job)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"voxhelm-heartbeat-{job.pk}", daemon=True
        )
        self.lost = False

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    if not self._job.beat():
                        self.lost = True
                        return
                except DatabaseError:
                    # A busy database delays a beat; the stale threshold allows for that.
                    logger.warning("job %s: heartbeat failed", self._job.pk, exc_info=True)
        finally:
            connection.close()

"""The batch worker: ``voxhelm worker`` in the main thread, or a thread of ``voxhelm serve``.

Both run the django-tasks-db worker loop (claim the next task, run it, repeat) on the
configured queue, and keep a :class:`Presence` row while they do, so that ``voxhelm check``
sees a local worker running (voxhelm.W005). The sweepers and the callback outbox are not
theirs: every server process starts them (``voxhelm.cli.start_housekeeping``), so a set-up
without a local worker has them.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from types import TracebackType

from django.db import DatabaseError
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker

from voxhelm.config import Config
from voxhelm.jobs.heartbeat import worker_identity
from voxhelm.jobs.models import LocalWorker
from voxhelm.jobs.periodic import start_periodic

__all__ = ["Presence", "run_worker", "start_embedded_worker"]

logger = logging.getLogger("voxhelm.jobs")

POLL_SECONDS = 1.0  # how often an idle worker looks for a task
RESTART_SECONDS = 5.0  # pause before the embedded worker loop restarts after a crash


class Presence:
    """This process's :class:`LocalWorker` row: written at :meth:`start`, refreshed every
    ``VOXHELM_JOB_HEARTBEAT_SECONDS`` by a thread of its own (so a worker busy with a long job
    still shows), deleted at :meth:`stop`. A killed worker's row just goes stale."""

    def __init__(self, config: Config, worker_id: str) -> None:
        self.worker_id = worker_id
        self._queue = config.execution.task_queue
        self._interval = config.execution.job_heartbeat_seconds
        self._stale = timedelta(seconds=config.execution.job_stale_seconds)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Beat once at once (``voxhelm check`` sees the worker as soon as it polls), then in
        the background. Rows of workers silent past the stale threshold are removed here: a
        killed worker never removes its own, and each start clears what earlier ones left."""
        now = timezone.now()
        LocalWorker.objects.silent_since(now - self._stale).delete()
        self._beat()
        self._thread = start_periodic(
            "voxhelm-worker-presence", self._interval, self._beat, self._stop, wait_first=True
        )

    def stop(self) -> None:
        """Stop beating and delete the row; a second call does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            LocalWorker.objects.filter(pk=self.worker_id).delete()
        except DatabaseError:
            # The row then goes stale, as a killed worker's does.
            logger.warning("local worker %s: could not remove its row", self.worker_id)

    def _beat(self) -> None:
        LocalWorker.objects.beat(self.worker_id, self._queue, timezone.now())

    def __enter__(self) -> Presence:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _build_worker(config: Config) -> Worker:
    return Worker(
        queue_names=[config.execution.task_queue],
        interval=POLL_SECONDS,
        batch=False,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_identity()[:64],
        excluded_queue_names=[],
    )


def run_worker(config: Config) -> None:
    """Run the worker in this (main) thread until SIGINT/SIGTERM; used by ``voxhelm worker``.

    The first signal lets the running job finish, or (idle) raises SystemExit at once:
    either way the presence row is deleted on the way out."""
    worker = _build_worker(config)
    worker.configure_signals()
    with Presence(config, worker.worker_id):
        print(
            f"Voxhelm worker {worker_identity()} is processing queue {config.execution.task_queue}",
            flush=True,
        )
        worker.run()


def start_embedded_worker(config: Config) -> Presence:
    """Run the worker in a daemon thread of this process; used by ``voxhelm serve``. Returns
    its presence, for the caller to stop when the process ends."""
    worker = _build_worker(config)
    presence = Presence(config, worker.worker_id)
    presence.start()

    def supervise() -> None:
        while worker.running:
            try:
                worker.run()
            except Exception:
                # A lost database connection must not end batch processing for good.
                logger.exception("batch worker loop crashed; restarting")
                time.sleep(RESTART_SECONDS)

    threading.Thread(target=supervise, name="voxhelm-batch-worker", daemon=True).start()
    return presence

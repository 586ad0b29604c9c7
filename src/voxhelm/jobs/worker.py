"""The batch worker: ``voxhelm worker`` in the main thread, or a thread of ``voxhelm serve``.

Both run the django-tasks-db worker loop (claim the next task, run it, repeat) on the
configured queue. The sweepers and the callback outbox are not theirs: every server process
starts them (``voxhelm.cli.start_housekeeping``), so a set-up without a local worker has them.
"""

from __future__ import annotations

import logging
import threading
import time

from django_tasks_db.management.commands.db_worker import Worker

from voxhelm.config import Config
from voxhelm.jobs.heartbeat import worker_identity

__all__ = ["run_worker", "start_embedded_worker"]

logger = logging.getLogger("voxhelm.jobs")

POLL_SECONDS = 1.0  # how often an idle worker looks for a task
RESTART_SECONDS = 5.0  # pause before the embedded worker loop restarts after a crash


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
    """Run the worker in this (main) thread until SIGINT/SIGTERM; used by ``voxhelm worker``."""
    worker = _build_worker(config)
    worker.configure_signals()  # the first signal lets the running job finish
    print(
        f"Voxhelm worker {worker_identity()} is processing queue {config.execution.task_queue}",
        flush=True,
    )
    worker.run()


def start_embedded_worker(config: Config) -> threading.Thread:
    """Run the worker in a daemon thread of this process; used by ``voxhelm serve``."""
    worker = _build_worker(config)

    def supervise() -> None:
        while worker.running:
            try:
                worker.run()
            except Exception:
                # A lost database connection must not end batch processing for good.
                logger.exception("batch worker loop crashed; restarting")
                time.sleep(RESTART_SECONDS)

    thread = threading.Thread(target=supervise, name="voxhelm-batch-worker", daemon=True)
    thread.start()
    return thread

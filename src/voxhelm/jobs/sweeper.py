"""Recovering jobs whose worker died: back to the queue with a new task, or failed.

Every server process (``serve``, ``web``, ``worker``) runs :func:`start_sweeper`. A running
job whose heartbeat is older than ``VOXHELM_JOB_STALE_SECONDS`` lost its worker (killed,
crashed, powered off); so did a queued job whose task was taken by a worker that died before
starting the attempt. Such a job is re-queued with a fresh task while attempts remain
(``max_attempts``), else failed with code ``worker_lost``. It also removes what deleted
jobs' remote attempts may have left (:func:`~voxhelm.jobs.deletion.sweep_leftovers`). Every
change is a conditional UPDATE that restates what the sweeper saw, so two sweepers (or a
late heartbeat) cannot both act on one job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResultStatus, task_backends
from django_tasks.exceptions import TaskResultDoesNotExist
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from voxhelm.config import Config
from voxhelm.jobs.deletion import sweep_leftovers
from voxhelm.jobs.models import Job
from voxhelm.jobs.periodic import start_periodic
from voxhelm.jobs.staged import sweep_uploads
from voxhelm.jobs.tasks import enqueue

logger = logging.getLogger("voxhelm.jobs")

WORKER_LOST = "worker_lost"


@dataclass
class SweepReport:
    requeued: list[UUID] = field(default_factory=list)
    failed: list[UUID] = field(default_factory=list)


def sweep(config: Config, now: datetime | None = None) -> SweepReport:
    """Re-queue or fail every job whose worker is gone; returns what was done."""
    cutoff = (now or timezone.now()) - timedelta(seconds=config.execution.job_stale_seconds)
    report = SweepReport()
    for job in Job.objects.stale(cutoff):
        _recover(job, cutoff, consume_attempt=False, report=report)
    for job in Job.objects.waiting_since(cutoff):
        if _task_lost(job, cutoff):
            _recover(job, cutoff, consume_attempt=True, report=report)
    return report


def _recover(job: Job, cutoff: datetime, *, consume_attempt: bool, report: SweepReport) -> None:
    old_task = job.django_task_id
    if job.attempt_count + int(consume_attempt) < job.max_attempts:
        with transaction.atomic():
            if not job.requeue(stale_before=cutoff, consume_attempt=consume_attempt):
                return
            enqueue(job)
        logger.warning("job %s: its worker stopped responding; re-queued", job.pk)
        report.requeued.append(job.pk)
    else:
        message = (
            "The worker running this job stopped responding, "
            f"and the job has used all {job.max_attempts} attempts."
        )
        if not job.abandon(WORKER_LOST, message, stale_before=cutoff):
            return
        logger.error("job %s: its worker stopped responding; no attempts left", job.pk)
        report.failed.append(job.pk)
    _retire_task(old_task)


def _task_lost(job: Job, cutoff: datetime) -> bool:
    """Whether the task a queued job waits for will never run it."""
    backend = task_backends["default"]
    if not job.django_task_id or not backend.supports_get_result:
        return False
    try:
        result = backend.get_result(job.django_task_id)
    except TaskResultDoesNotExist:
        return True
    if result.status == TaskResultStatus.READY:
        return False
    if result.status == TaskResultStatus.RUNNING:
        # Taken by a worker that should have started the attempt at once.
        return result.started_at is not None and result.started_at < cutoff
    return True  # finished without ever running the job


def _retire_task(task_id: str) -> None:
    """Mark the dead worker's task failed, so the task table does not show it running."""
    if task_id and isinstance(task_backends["default"], DatabaseBackend):
        DBTaskResult.objects.filter(id=task_id, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            exception_class_path="voxhelm.jobs.sweeper.WorkerLost",
            traceback="The worker running this task stopped responding.",
        )


def start_sweeper(config: Config, stop: threading.Event | None = None) -> threading.Thread:
    """Sweep now and then every ``VOXHELM_JOB_SWEEP_SECONDS`` in a daemon thread."""

    def work() -> None:
        report = sweep(config)
        if report.requeued or report.failed:
            logger.info(
                "sweeper: re-queued %d, failed %d", len(report.requeued), len(report.failed)
            )
        uploads = sweep_uploads(config)
        if uploads.deleted or uploads.settled:
            logger.info(
                "sweeper: deleted %d expired uploads, settled %d",
                len(uploads.deleted),
                len(uploads.settled),
            )
        if removed := sweep_leftovers(config):
            logger.info("sweeper: removed the remote objects of %d deleted jobs", removed)

    return start_periodic("voxhelm-job-sweeper", config.execution.job_sweep_seconds, work, stop)

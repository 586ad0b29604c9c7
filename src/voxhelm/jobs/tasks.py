"""The Django Task that runs a batch job, and how a job is put on the task queue."""

from __future__ import annotations

from django.conf import settings
from django_tasks import TaskContext, task

from voxhelm.jobs import pipeline
from voxhelm.jobs.heartbeat import worker_identity
from voxhelm.jobs.models import Job

TASK_PRIORITIES = {"high": 10, "normal": 0, "low": -10}


@task(takes_context=True, queue_name=settings.VOXHELM.execution.task_queue)
def run_job(context: TaskContext, job_id: str) -> None:
    """Run one attempt of job ``job_id`` in this worker thread."""
    pipeline.run(
        job_id,
        task_id=str(context.task_result.id),
        worker=worker_identity(),
        config=settings.VOXHELM,
    )


def enqueue(job: Job) -> None:
    """Queue a task for ``job`` and record its id on the job.

    Call it inside the transaction that creates or re-queues the job: with the database
    backend the task row then becomes visible to workers together with the job, so a worker
    never sees a task whose job is not ready for it.
    """
    result = run_job.using(priority=TASK_PRIORITIES[job.priority]).enqueue(str(job.pk))
    job.attach_task(str(result.id))

"""The sweeper: jobs of dead workers go back to the queue (bounded) or fail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.sweeper import sweep
from voxhelm.jobs.tasks import enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def config(configure: Callable[..., Config]) -> Config:
    return configure(VOXHELM_JOB_STALE_SECONDS="30", VOXHELM_JOB_HEARTBEAT_SECONDS="5")


def queued_job(**fields: object) -> Job:
    job = Job.objects.create(
        producer="archive",
        request_fingerprint="f",
        input_data={"kind": "url", "url": "https://media.example.com/a.mp3"},
        output_data={"formats": ["text"], "diarization": {"enabled": False}},
        **fields,
    )
    enqueue(job)
    return job


def claim_task(job: Job, seconds_ago: float = 0) -> None:
    """What the django-tasks worker does before it calls the task."""
    DBTaskResult.objects.filter(pk=job.django_task_id).update(
        status="RUNNING", started_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def running_job(silent_for: float, **fields: object) -> Job:
    job = queued_job(**fields)
    claim_task(job, silent_for)
    assert job.mark_running("dead-host:1", job.django_task_id)
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=silent_for)
    )
    return Job.objects.get(pk=job.pk)


def test_it_requeues_a_silent_job_with_a_new_task(config: Config) -> None:
    job = running_job(silent_for=60)
    old_task = job.django_task_id

    report = sweep(config)

    assert report.requeued == [job.pk]
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert (job.attempt_count, job.worker_identity, job.heartbeat_at) == (1, "", None)
    assert job.django_task_id != old_task
    assert DBTaskResult.objects.get(pk=job.django_task_id).status == "READY"
    assert DBTaskResult.objects.get(pk=old_task).status == "FAILED"


def test_the_dead_attempt_can_no_longer_write(config: Config) -> None:
    job = running_job(silent_for=60)
    sweep(config)
    assert not job.beat()
    assert not job.set_progress(50, "transcribing")
    assert not job.mark_succeeded("late", {})
    assert Job.objects.get(pk=job.pk).state == JobState.QUEUED


def test_it_leaves_jobs_with_a_recent_heartbeat_alone(config: Config) -> None:
    job = running_job(silent_for=5)
    assert sweep(config).requeued == []
    assert Job.objects.get(pk=job.pk).state == JobState.RUNNING


def test_it_fails_a_silent_job_without_attempts_left(config: Config) -> None:
    job = running_job(silent_for=60, max_attempts=1)
    report = sweep(config)
    assert report.failed == [job.pk]
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error_code == "worker_lost"
    assert job.error_detail == (
        "The worker running this job stopped responding, and the job has used all 1 attempts."
    )
    assert job.finished_at is not None


def test_only_one_sweeper_acts_on_a_job(config: Config) -> None:
    job = running_job(silent_for=60)
    seen_by_other_sweeper = Job.objects.get(pk=job.pk)
    sweep(config)
    cutoff = timezone.now() - timedelta(seconds=30)
    assert not seen_by_other_sweeper.requeue(stale_before=cutoff)
    assert DBTaskResult.objects.filter(status="READY").count() == 1


def test_it_requeues_a_job_whose_task_was_taken_by_a_dead_worker(config: Config) -> None:
    job = queued_job()
    claim_task(job, seconds_ago=60)
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=60))
    assert sweep(config).requeued == [job.pk]
    job.refresh_from_db()
    assert job.state == JobState.QUEUED
    assert job.attempt_count == 1  # a task that keeps dying still runs out of attempts


def test_it_requeues_a_job_whose_task_is_gone(config: Config) -> None:
    job = queued_job()
    DBTaskResult.objects.filter(pk=job.django_task_id).delete()
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(seconds=60))
    assert sweep(config).requeued == [job.pk]


def test_it_leaves_a_job_waiting_in_a_long_queue_alone(config: Config) -> None:
    job = queued_job()
    Job.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(hours=2))
    assert sweep(config).requeued == []
    assert Job.objects.get(pk=job.pk).django_task_id == job.django_task_id

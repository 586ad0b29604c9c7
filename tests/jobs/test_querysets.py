"""``JobQuerySet`` reads that no transition test covers: the per-state counts of ``/metrics``."""

from __future__ import annotations

import pytest

from voxhelm.jobs.models import Job, JobState, JobType

pytestmark = pytest.mark.django_db


def make_job(state: JobState, job_type: JobType = JobType.TRANSCRIBE) -> Job:
    return Job.objects.create(
        producer="archive",
        job_type=job_type,
        state=state,
        input_data={"kind": "url", "url": "https://media.example.com/a.mp3"},
    )


def test_it_counts_jobs_by_state_and_type() -> None:
    for state in (JobState.QUEUED, JobState.QUEUED, JobState.RUNNING, JobState.FAILED):
        make_job(state)
    make_job(JobState.QUEUED, JobType.SYNTHESIZE)
    assert Job.objects.count_by_state() == {
        ("queued", "transcribe"): 2,
        ("running", "transcribe"): 1,
        ("failed", "transcribe"): 1,
        ("queued", "synthesize"): 1,
    }


def test_it_counts_within_a_filtered_queryset() -> None:
    make_job(JobState.QUEUED)
    make_job(JobState.SUCCEEDED, JobType.SYNTHESIZE)
    assert Job.objects.filter(job_type=JobType.SYNTHESIZE).count_by_state() == {
        ("succeeded", "synthesize"): 1
    }


def test_it_counts_nothing_without_jobs() -> None:
    assert Job.objects.count_by_state() == {}

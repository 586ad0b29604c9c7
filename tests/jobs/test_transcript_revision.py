"""The edit lease of a transcript: one correction at a time, freed after a crash."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from voxhelm.jobs.models import Job
from voxhelm.studio.models import EDIT_LEASE, TranscriptRevision


def make_job() -> Job:
    return Job.objects.create(producer="archive", request_fingerprint="f" * 64)


def test_it_lets_one_correction_at_a_time_hold_a_transcript(db: None) -> None:
    job = make_job()
    assert TranscriptRevision.take(job.pk)
    assert not TranscriptRevision.take(job.pk)  # the second correction is refused
    assert TranscriptRevision.release(job.pk, saved=True) == 1
    assert TranscriptRevision.take(job.pk)
    assert TranscriptRevision.release(job.pk, saved=False) == 1  # a refused one counts nothing
    row = TranscriptRevision.objects.get(job=job)
    assert row.editing_until is None and row.edited_at is not None


def test_a_lease_left_by_a_crashed_correction_runs_out(db: None) -> None:
    job = make_job()
    now = timezone.now()
    assert TranscriptRevision.take(job.pk, now)
    assert not TranscriptRevision.take(job.pk, now + EDIT_LEASE - timedelta(seconds=1))
    assert TranscriptRevision.take(job.pk, now + EDIT_LEASE + timedelta(seconds=1))


def test_it_goes_with_its_job(db: None) -> None:
    job = make_job()
    TranscriptRevision.take(job.pk)
    job.delete()
    assert not TranscriptRevision.objects.exists()

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
    first = TranscriptRevision.take(job.pk)
    assert first is not None
    assert TranscriptRevision.take(job.pk) is None  # the second correction is refused
    assert TranscriptRevision.release(job.pk, first, saved=True) == 1
    second = TranscriptRevision.take(job.pk)
    assert second is not None
    assert TranscriptRevision.release(job.pk, second, saved=False) == 1  # counts nothing
    row = TranscriptRevision.objects.get(job=job)
    assert row.editing_until is None and row.edited_at is not None


def test_a_lease_left_by_a_crashed_correction_runs_out(db: None) -> None:
    job = make_job()
    now = timezone.now()
    assert TranscriptRevision.take(job.pk, now)
    assert TranscriptRevision.take(job.pk, now + EDIT_LEASE - timedelta(seconds=1)) is None
    assert TranscriptRevision.take(job.pk, now + EDIT_LEASE + timedelta(seconds=1))


def test_a_correction_past_its_lease_leaves_the_next_holders_lease(db: None) -> None:
    job = make_job()
    now = timezone.now()
    late = TranscriptRevision.take(job.pk, now - EDIT_LEASE - timedelta(seconds=1))
    assert late is not None
    holder = TranscriptRevision.take(job.pk, now)  # the late one's lease ran out
    assert holder is not None
    assert TranscriptRevision.release(job.pk, late, saved=True) == 1
    assert TranscriptRevision.held(job.pk)  # still the holder's
    assert TranscriptRevision.take(job.pk) is None
    assert TranscriptRevision.release(job.pk, holder, saved=False) == 1
    assert not TranscriptRevision.held(job.pk)


def test_it_goes_with_its_job(db: None) -> None:
    job = make_job()
    TranscriptRevision.take(job.pk)
    job.delete()
    assert not TranscriptRevision.objects.exists()

"""A job's staged upload and what it leaves in the store: attached at submission, copied to
the worker for an attempt, settled when the job ends, swept when forgotten.

* :func:`attach_upload` runs in the submission's transaction (``voxhelm.uploads.lifecycle``
  makes the checks and the claim) and describes the upload in the job's input.
* :func:`materialize_upload` copies it to a local file for an attempt, verified.
* :func:`settle_upload` runs when a job ends, wherever it ran: a succeeded job used the
  upload up (deleted: the job keeps its own ``source`` copy); a failed or canceled job
  releases it for a new job; the job's chunk checkpoints are dropped.
* :func:`sweep_uploads` runs periodically in every server process (``web`` too, so a set-up
  with remote workers only still runs it): it settles the uploads of
  jobs that ended elsewhere (canceled, abandoned by the job sweeper) and deletes expired
  unclaimed uploads with their objects.

An upload that an unfinished job uses as a known-speaker reference clip (see
:mod:`voxhelm.jobs.reference_uploads`) is neither deleted by the sweep nor by
:func:`settle_upload` until that job has ended.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from voxhelm.batch.request import UploadSource
from voxhelm.config import Config
from voxhelm.errors import VoxhelmError
from voxhelm.fetch import FetchedFile
from voxhelm.jobs.choices import TERMINAL_STATES
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.reference_uploads import referenced_upload_ids
from voxhelm.storage.base import CHUNK_BYTES, IntegrityError, ObjectNotFound
from voxhelm.storage.checkpoints import StoreCheckpoints
from voxhelm.storage.keys import checkpoint_prefix
from voxhelm.storage.stores import active_store, store_for_identity
from voxhelm.uploads import lifecycle
from voxhelm.uploads.models import StagedUpload

logger = logging.getLogger("voxhelm.jobs")


class UploadGone(VoxhelmError):
    """The staged upload a job names cannot be read (deleted or damaged in the store)."""

    code = "upload_gone"


def attach_upload(job: Job, producer: str, upload_id: UUID, config: Config) -> None:
    """Claim the staged upload and describe it in the job's input (no storage keys)."""
    upload = lifecycle.attach(job, producer, upload_id, config)
    source = UploadSource(str(upload.pk), upload.filename, upload.content_type, upload.size_bytes)
    job.input_data = source.to_stored()
    job.save(update_fields=["input_data"])


def materialize_upload(job: Job, config: Config, workdir: Path) -> FetchedFile:
    """Copy the job's staged upload to a local file, verifying its size and SHA-256."""
    gone = UploadGone(
        "The staged upload of this job no longer exists. Stage the media again.",
        code="upload_gone",
    )
    upload = StagedUpload.objects.filter(claimed_by_job=job).first()
    if upload is None:
        raise gone
    store = store_for_identity(upload.storage_identity, config.artifacts)
    path = workdir / f"upload{PurePosixPath(upload.filename).suffix.lower()[:16]}"
    try:
        with (
            store.open_verified(upload.storage_key, upload.sha256, upload.size_bytes) as src,
            path.open("wb") as out,
        ):
            shutil.copyfileobj(src, out, CHUNK_BYTES)
    except ObjectNotFound:
        raise gone from None
    except IntegrityError:
        raise UploadGone(
            "The staged upload was damaged in storage. Stage the media again.",
            code="upload_damaged",
        ) from None
    return FetchedFile(
        path=path,
        filename=upload.filename,
        content_type=upload.content_type,
        size=upload.size_bytes,
        final_url="",
    )


def checkpoints_of(job: Job, config: Config) -> StoreCheckpoints:
    """Where the chunks of ``job`` are checkpointed: beside its artifacts in the active store."""
    folder = checkpoint_prefix(config.artifacts.prefix, job.pk)
    return StoreCheckpoints(active_store(config.artifacts), folder)


def settle_upload(job: Job, config: Config) -> None:
    """Tidy up after ``job`` ended, wherever it ran (no-op while it has not): delete or
    release its staged upload, drop its chunk checkpoints.

    A failure here only delays the settlement to the next retention sweep."""
    try:
        _settle(job, config)
    except Exception:
        logger.exception("job %s: settling its staged upload failed; the sweep will retry", job.pk)
    if state_of(job) in TERMINAL_STATES:
        checkpoints_of(job, config).drop()


def _settle(job: Job, config: Config) -> None:
    upload = StagedUpload.objects.filter(claimed_by_job=job).first()
    if upload is None:
        return
    state = state_of(job)
    if state == JobState.SUCCEEDED:
        if str(upload.pk) in referenced_upload_ids():
            # Also a known-speaker reference of an unfinished job: kept until it expires.
            upload.release(job)
        elif upload.mark_deleting(Q(claimed_by_job=job)):
            lifecycle.delete(upload, config)
    elif state in (JobState.FAILED, JobState.CANCELED) and upload.release(job):
        logger.info("upload %s: released by job %s (%s)", upload.pk, job.pk, state)


def state_of(job: Job) -> str | None:
    return Job.objects.filter(pk=job.pk).values_list("state", flat=True).first()


@dataclass
class SweepReport:
    deleted: list[UUID] = field(default_factory=list)
    settled: list[UUID] = field(default_factory=list)


def sweep_uploads(config: Config, now: datetime | None = None) -> SweepReport:
    """Settle uploads of ended jobs, then delete expired unclaimed uploads."""
    now = now or timezone.now()
    report = SweepReport()
    for upload in StagedUpload.objects.claimed_by_finished_jobs().select_related("claimed_by_job"):
        job = upload.claimed_by_job
        if job is not None:
            _settle(job, config)
            report.settled.append(upload.pk)
    # Known-speaker references of unfinished jobs are kept.
    report.deleted = lifecycle.delete_expired(config, now, keep=referenced_upload_ids())
    return report

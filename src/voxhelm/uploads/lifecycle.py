"""What happens to a staged upload: attached to a job, settled when the job ends, swept
when it expires.

* :func:`attach` runs inside the submission's transaction: the reference's checks in its
  order (unknown or foreign, already attached, expired, staged in another store), then the
  claim, a conditional UPDATE that loses cleanly to a concurrent deletion or claim.
* :func:`settle` runs when a job ends: a succeeded job used the upload up (deleted: the job
  keeps its own ``source`` copy); a failed or canceled job releases it for a new job.
* :func:`sweep` runs periodically in every worker process: it settles the uploads of jobs
  that ended elsewhere (canceled, abandoned by the job sweeper) and deletes expired
  unclaimed uploads with their objects.

An upload that an unfinished job uses as a known-speaker reference clip (see
:mod:`voxhelm.jobs.reference_uploads`) is neither deleted by the sweep nor by :func:`settle`
until that job has ended.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from voxhelm.artifacts.base import StoreError
from voxhelm.artifacts.stores import active_store, same_store, store_for_identity
from voxhelm.config import Config
from voxhelm.errors import Conflict, InvalidInput
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.reference_uploads import referenced_upload_ids
from voxhelm.uploads.models import StagedUpload

logger = logging.getLogger("voxhelm.uploads")

PARAM = "input.upload_id"


def attach(job: Job, producer: str, upload_id: UUID, config: Config) -> StagedUpload:
    """Claim upload ``upload_id`` of ``producer`` for ``job``; raises a client error when it
    cannot be used. Call inside the transaction that creates ``job``."""
    upload = StagedUpload.objects.for_producer(producer).filter(pk=upload_id).first()
    if upload is None or upload.deleting_at is not None:
        raise InvalidInput("Unknown input.upload_id.", param=PARAM, code="upload_not_found")
    if upload.claimed_by_job_id is not None:
        raise Conflict(
            "input.upload_id has already been attached to a job.",
            param=PARAM,
            code="upload_already_attached",
        )
    now = timezone.now()
    if upload.is_expired(now):
        raise _expired()
    if not same_store(upload.storage_identity, active_store(config.artifacts).identity()):
        raise InvalidInput(
            "input.upload_id was staged with a different artifact store. Stage the media again.",
            param=PARAM,
            code="upload_store_mismatch",
        )
    if not upload.claim(job, now):
        # Lost to the retention sweep (it expired meanwhile) or to a concurrent claim.
        upload.refresh_from_db()
        if upload.claimed_by_job_id is not None:
            raise Conflict(
                "input.upload_id has already been attached to a job.",
                param=PARAM,
                code="upload_already_attached",
            )
        raise _expired()
    return upload


def _expired() -> InvalidInput:
    return InvalidInput(
        "input.upload_id has expired. Stage the media again.", param=PARAM, code="upload_expired"
    )


def settle(job: Job, config: Config) -> None:
    """After ``job`` ended: delete its upload if it succeeded, else release it."""
    upload = StagedUpload.objects.filter(claimed_by_job=job).first()
    if upload is None:
        return
    state = Job.objects.filter(pk=job.pk).values_list("state", flat=True).first()
    if state == JobState.SUCCEEDED:
        if str(upload.pk) in referenced_upload_ids():
            # Also a known-speaker reference of an unfinished job: kept until it expires.
            upload.release(job)
        elif upload.mark_deleting(Q(claimed_by_job=job)):
            _delete(upload, config)
    elif state in (JobState.FAILED, JobState.CANCELED) and upload.release(job):
        logger.info("upload %s: released by job %s (%s)", upload.pk, job.pk, state)


@dataclass
class SweepReport:
    deleted: list[UUID] = field(default_factory=list)
    settled: list[UUID] = field(default_factory=list)


def sweep(config: Config, now: datetime | None = None) -> SweepReport:
    """Settle uploads of ended jobs, then delete expired unclaimed uploads."""
    now = now or timezone.now()
    report = SweepReport()
    for upload in StagedUpload.objects.claimed_by_finished_jobs().select_related("claimed_by_job"):
        job = upload.claimed_by_job
        if job is not None:
            settle(job, config)
            report.settled.append(upload.pk)
    referenced = referenced_upload_ids()  # known-speaker references of unfinished jobs
    for upload in StagedUpload.objects.expired_unclaimed(now):
        if str(upload.pk) in referenced:
            continue
        # The conditional mark is what makes a concurrent claim and this deletion exclusive.
        unclaimed = Q(claimed_by_job__isnull=True, expires_at__lte=now)
        if upload.mark_deleting(unclaimed, now) and _delete(upload, config):
            report.deleted.append(upload.pk)
    return report


def _delete(upload: StagedUpload, config: Config) -> bool:
    """Delete the object, then the row; a store failure keeps the row for the next sweep."""
    try:
        store_for_identity(upload.storage_identity, config.artifacts).delete(upload.storage_key)
    except StoreError:
        logger.exception("upload %s: could not delete its object; will retry", upload.pk)
        return False
    StagedUpload.objects.filter(pk=upload.pk).delete()
    logger.info("upload %s: deleted", upload.pk)
    return True

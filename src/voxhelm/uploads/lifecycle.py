"""A staged upload's own steps: claimed by a job, deleted with its object, expired.

* :func:`attach` runs inside the submission's transaction: the reference's checks in its
  order (unknown or foreign, already attached, expired, staged in another store), then the
  claim, a conditional UPDATE that loses cleanly to a concurrent deletion or claim.
* :func:`delete` removes the object, then the row.
* :func:`delete_expired` removes expired unclaimed uploads.

What a job does with its upload (settling it when the job ends, the periodic sweep) is in
``voxhelm.jobs.staged``: this module knows no job beyond the one it is handed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from voxhelm.config import Config
from voxhelm.errors import Conflict, InvalidInput
from voxhelm.storage.base import StoreError
from voxhelm.storage.stores import active_store, same_store, store_for_identity
from voxhelm.uploads.models import StagedUpload

if TYPE_CHECKING:
    from voxhelm.jobs.models import Job

logger = logging.getLogger("voxhelm.uploads")

PARAM = "input.upload_id"


def attach(job: Job, producer: str, upload_id: UUID, config: Config) -> StagedUpload:
    """Claim upload ``upload_id`` of ``producer`` for ``job``; raises a client error when it
    cannot be used. Call inside the transaction that creates ``job``."""
    upload = StagedUpload.objects.for_producer(producer).filter(pk=upload_id).first()
    if upload is None or upload.deleting_at is not None:
        raise InvalidInput("Unknown input.upload_id.", param=PARAM, code="upload_not_found")
    if upload.claimed_by_job_id is not None:
        raise _attached()
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
            raise _attached()
        raise _expired()
    return upload


def _attached() -> Conflict:
    return Conflict(
        "input.upload_id has already been attached to a job.",
        param=PARAM,
        code="upload_already_attached",
    )


def _expired() -> InvalidInput:
    return InvalidInput(
        "input.upload_id has expired. Stage the media again.", param=PARAM, code="upload_expired"
    )


def delete_expired(config: Config, now: datetime, *, keep: set[str]) -> list[UUID]:
    """Delete expired unclaimed uploads (but those in ``keep``) with their objects."""
    deleted = []
    for upload in StagedUpload.objects.expired_unclaimed(now):
        if str(upload.pk) in keep:
            continue
        # The conditional mark is what makes a concurrent claim and this deletion exclusive.
        unclaimed = Q(claimed_by_job__isnull=True, expires_at__lte=now)
        if upload.mark_deleting(unclaimed, now) and delete(upload, config):
            deleted.append(upload.pk)
    return deleted


def delete(upload: StagedUpload, config: Config) -> bool:
    """Delete the object, then the row; a store failure keeps the row for the next sweep."""
    try:
        store_for_identity(upload.storage_identity, config.artifacts).delete(upload.storage_key)
    except StoreError:
        logger.exception("upload %s: could not delete its object; will retry", upload.pk)
        return False
    StagedUpload.objects.filter(pk=upload.pk).delete()
    logger.info("upload %s: deleted", upload.pk)
    return True

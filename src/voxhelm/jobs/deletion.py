"""Deleting a finished job: its artifacts and checkpoints in every store, its upload, its row.

Only a finished job (succeeded, failed, canceled) may go; a queued or running one must be
canceled first, and one whose transcript a correction is saving is refused until it ends.

The order is: mark the row (``deleting_at``), delete the objects, delete the row. A store
that fails leaves the job listed and marked (the producer tries again) rather than objects
no row points at. Objects are looked for wherever they can be: each artifact's own store (it
may predate a change of store), the job's folder and checkpoints in the active store, and,
for a remote job, in the store its lease named. A writer that may still run when its job is
deleted (a canceled local attempt, a correction that outlived its lease) calls
:func:`discard_if_deleted` when it ends: the mark is set before the objects go, so a writer
that wrote after them sees the mark (or no row) and removes what it wrote. A canceled remote
attempt writes straight to the store and never calls back; its folder and the job's
checkpoints in that store are recorded as :class:`~voxhelm.jobs.models.LeftoverTree` rows,
and :func:`sweep_leftovers` removes them once the attempt's lease has run out.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.errors import Conflict, NotFound, ServiceUnavailable
from voxhelm.jobs.choices import TERMINAL_STATES
from voxhelm.jobs.models import Job, LeftoverTree
from voxhelm.jobs.staged import settle_upload
from voxhelm.storage.base import StoreError
from voxhelm.storage.keys import checkpoint_prefix, job_prefix
from voxhelm.storage.stores import active_store, store_for_identity
from voxhelm.studio.models import TranscriptRevision

logger = logging.getLogger("voxhelm.jobs")

NOT_FINISHED = "The job is {state}: cancel it first, then delete it."
STORE_FAILED = "The artifact store could not be reached; the job was not deleted. Try again."
CORRECTING = "A correction of this job's transcript is being saved. Try again in a moment."
LEFTOVER_GRACE = timedelta(minutes=1)
"""How long after its lease ran out a remote attempt's folder is left, for clocks that differ."""


def delete_job(job: Job, config: Config) -> None:
    """Delete the finished ``job`` and everything it stored; raises :class:`Conflict` if it
    has not finished, :class:`ServiceUnavailable` if a store failed (nothing is lost: the
    job stays, and deleting it again finishes the work)."""
    if job.state not in TERMINAL_STATES:
        raise Conflict(NOT_FINISHED.format(state=job.state), code="job_not_finished")
    _mark(job)
    settle_upload(job, config)  # a succeeded job's upload is deleted, another's released
    try:
        _delete_objects(job, config)
    except StoreError:
        logger.exception("job %s: deleting its objects failed; the job is kept", job.pk)
        raise ServiceUnavailable(STORE_FAILED, code="store_unavailable") from None
    _leave_remote_attempt(job, config)
    Job.objects.filter(pk=job.pk, state__in=TERMINAL_STATES).delete()
    logger.info("job %s: deleted by its producer", job.pk)


def being_deleted(job_id: Any) -> bool:
    """Whether job ``job_id`` is gone or a deletion of it has begun."""
    return not Job.objects.filter(pk=job_id, deleting_at__isnull=True).exists()


def discard_if_deleted(job: Job, config: Config) -> bool:
    """After a writer ends: if its job was deleted (or is being deleted) meanwhile, remove
    what the writer wrote since and return True (a failure is only logged: the writer is over
    anyway)."""
    if not being_deleted(job.pk):
        return False
    try:
        _delete_folders(job, config)
    except StoreError:
        logger.warning("job %s: objects written after its deletion were not removed", job.pk)
    return True


def sweep_leftovers(config: Config, now: datetime | None = None) -> int:
    """Remove the folders of deleted jobs' remote attempts whose leases have run out; returns
    how many went (one whose store fails is tried again at the next sweep)."""
    removed = 0
    for leftover in LeftoverTree.objects.filter(remove_after__lte=now or timezone.now()):
        try:
            store_for_identity(leftover.store_identity, config.artifacts).delete_tree(
                leftover.prefix
            )
        except StoreError:
            logger.warning("%s: a deleted job's remote objects could not be removed", leftover)
            continue
        leftover.delete()
        removed += 1
    return removed


def _mark(job: Job) -> None:
    """Mark the row before any object goes; refuse while a correction holds the transcript.

    A correction checks the mark after taking its lease, so either this sees its lease, or it
    sees this mark and writes nothing.
    """
    marked = bool(
        Job.objects.filter(pk=job.pk, state__in=TERMINAL_STATES, deleting_at__isnull=True).update(
            deleting_at=timezone.now()
        )
    )
    if not marked and not Job.objects.filter(pk=job.pk).exists():
        raise NotFound("Job not found.", code="job_not_found")
    if TranscriptRevision.held(job.pk):
        if marked:  # a mark left by an earlier, failed deletion stays
            Job.objects.filter(pk=job.pk).update(deleting_at=None)
        raise Conflict(CORRECTING, code="transcript_busy")


def _leave_remote_attempt(job: Job, config: Config) -> None:
    """A remote attempt's worker may write until its lease runs out: have its folder and the
    job's checkpoints in that store removed after that."""
    leased = job.leased_artifact_prefix.rstrip("/")
    expires = job.lease_expires_at
    if not (leased and job.leased_artifact_store and expires):
        return
    if expires + LEFTOVER_GRACE <= timezone.now():
        return  # the lease ran out before this deletion removed the folders
    for prefix in (
        leased.rsplit("/", 1)[0],
        checkpoint_prefix(config.artifacts.prefix, job.pk),
    ):
        LeftoverTree.objects.create(
            store_identity=job.leased_artifact_store,
            prefix=prefix,
            remove_after=expires + LEFTOVER_GRACE,
        )


def _delete_objects(job: Job, config: Config) -> None:
    JobArtifact.objects.purge(job, config.artifacts)
    _delete_folders(job, config)
    leased = job.leased_artifact_prefix.rstrip("/")
    if leased and job.leased_artifact_store:
        # A remote attempt writes under <its prefix>/jobs/<id>/attempt-N of the lease's store.
        base = leased.rsplit("/", 1)[0]
        store_for_identity(job.leased_artifact_store, config.artifacts).delete_tree(base)


def _delete_folders(job: Job, config: Config) -> None:
    """The job's folder and checkpoints, in the active store and the one its lease named."""
    stores = [active_store(config.artifacts)]
    if job.leased_artifact_store:
        leased = store_for_identity(job.leased_artifact_store, config.artifacts)
        if leased is not stores[0]:
            stores.append(leased)
    for store in stores:
        store.delete_tree(job_prefix(config.artifacts.prefix, job.pk))
        store.delete_tree(checkpoint_prefix(config.artifacts.prefix, job.pk))

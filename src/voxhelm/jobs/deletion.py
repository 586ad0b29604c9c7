"""Deleting a finished job: its artifacts and checkpoints in every store, its upload, its row.

Only a finished job (succeeded, failed, canceled) may go; a queued or running one must be
canceled first. The objects go before the row, so a store that fails leaves the job listed
(the producer tries again) rather than objects no row points at. Objects are looked for
wherever they can be: each artifact's own store (it may predate a change of store), the job's
folder and checkpoints in the active store, and, for a remote job, in the store its lease
named. A canceled attempt may still be writing when its job is deleted; when it stops,
:func:`discard_if_deleted` removes what it wrote after the deletion.
"""

from __future__ import annotations

import logging

from voxhelm.artifacts.base import ArtifactStore, StoreError
from voxhelm.artifacts.keys import checkpoint_prefix, job_prefix
from voxhelm.artifacts.models import JobArtifact
from voxhelm.artifacts.stores import active_store, store_for_identity
from voxhelm.config import Config
from voxhelm.errors import Conflict, ServiceUnavailable
from voxhelm.jobs.choices import TERMINAL_STATES
from voxhelm.jobs.models import Job
from voxhelm.jobs.staged import settle_upload

logger = logging.getLogger("voxhelm.jobs")

NOT_FINISHED = "The job is {state}: cancel it first, then delete it."
STORE_FAILED = "The artifact store could not be reached; the job was not deleted. Try again."


def delete_job(job: Job, config: Config) -> None:
    """Delete the finished ``job`` and everything it stored; raises :class:`Conflict` if it
    has not finished, :class:`ServiceUnavailable` if a store failed (nothing is lost: the
    job stays, and deleting it again finishes the work)."""
    if job.state not in TERMINAL_STATES:
        raise Conflict(NOT_FINISHED.format(state=job.state), code="job_not_finished")
    settle_upload(job, config)  # a succeeded job's upload is deleted, another's released
    try:
        _delete_objects(job, config)
    except StoreError:
        logger.exception("job %s: deleting its objects failed; the job is kept", job.pk)
        raise ServiceUnavailable(STORE_FAILED, code="store_unavailable") from None
    Job.objects.filter(pk=job.pk, state__in=TERMINAL_STATES).delete()
    logger.info("job %s: deleted by its producer", job.pk)


def discard_if_deleted(job: Job, config: Config) -> bool:
    """After an attempt ends: if its job was deleted meanwhile, remove what the attempt
    wrote since and return True (a failure is only logged: the attempt is over anyway)."""
    if Job.objects.filter(pk=job.pk).exists():
        return False
    try:
        for store in _stores(job, config):
            store.delete_tree(job_prefix(config.artifacts.prefix, job.pk))
            store.delete_tree(checkpoint_prefix(config.artifacts.prefix, job.pk))
    except StoreError:
        logger.warning("job %s: objects written after its deletion were not removed", job.pk)
    return True


def _delete_objects(job: Job, config: Config) -> None:
    JobArtifact.objects.purge(job, config.artifacts)
    for store in _stores(job, config):
        store.delete_tree(job_prefix(config.artifacts.prefix, job.pk))
        store.delete_tree(checkpoint_prefix(config.artifacts.prefix, job.pk))
    leased = job.leased_artifact_prefix.rstrip("/")
    if leased and job.leased_artifact_store:
        # A remote attempt writes under <its prefix>/jobs/<id>/attempt-N of the lease's store.
        base = leased.rsplit("/", 1)[0]
        store_for_identity(job.leased_artifact_store, config.artifacts).delete_tree(base)


def _stores(job: Job, config: Config) -> list[ArtifactStore]:
    stores = [active_store(config.artifacts)]
    if job.leased_artifact_store:
        leased = store_for_identity(job.leased_artifact_store, config.artifacts)
        if leased is not stores[0]:
            stores.append(leased)
    return stores

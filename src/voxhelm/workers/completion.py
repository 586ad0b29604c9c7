"""Ending a remote attempt: ``complete`` (manifest checked, artifacts recorded, succeeded)
and ``fail`` (re-queued while attempts remain, else failed).

Completion checks the whole manifest, including reading every object back from the leased
store, *before* its short settlement transaction, so a slow store never holds the database's
write lock. The transaction then re-checks the lease, replaces the job's artifact rows with
the manifest's and moves the job to ``succeeded`` under the same lease condition; losing
the lease meanwhile rolls everything back (409). After the commit the staged upload is
deleted (``jobs.staged.settle_upload``) and older attempts' objects are removed.

A worker that repeats its own committed completion (its answer was lost) gets 200 if the
text, metadata and manifest are the same, else 409.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from django.db import transaction
from django.utils import timezone

from voxhelm.artifacts.models import JobArtifact
from voxhelm.batch.request import UrlSource
from voxhelm.config import Config
from voxhelm.errors import Conflict, NotFound
from voxhelm.jobs.models import ExecutionMode, Job, JobState, JobType, hash_token
from voxhelm.jobs.signals import transcript_changed
from voxhelm.jobs.staged import settle_upload
from voxhelm.storage.base import StoreError
from voxhelm.storage.stores import store_for_identity
from voxhelm.worker_protocol.manifest import Lease, check_objects, check_structure, normalized
from voxhelm.worker_protocol.messages import CompleteRequest, FailRequest, ManifestArtifact
from voxhelm.worker_protocol.metadata import known_speaker_summary, worker_fields

logger = logging.getLogger("voxhelm.workers")

NOT_LEASED = "The job is not leased to this worker with the current lease token."
RETRY_CONFLICT = "Completion retry conflicts with the already committed result."
RETRYABLE_FAILURE = "Remote worker reported a retryable failure."
TERMINAL_FAILURE = "Remote worker reported a terminal failure."
MAX_SHOWN_ERROR = 500


def not_leased() -> Conflict:
    return Conflict(NOT_LEASED, code="lease_mismatch")


def remote_job(job_id: UUID) -> Job:
    job = Job.objects.filter(pk=job_id, execution_mode=ExecutionMode.REMOTE).first()
    if job is None:
        raise NotFound("Job not found.", code="job_not_found")
    return job


def lease_of(job: Job) -> Lease:
    if job.job_type == JobType.SYNTHESIZE:
        return Lease(
            formats=job.synthesis_request.formats,
            known_speakers=False,
            prefix=job.leased_artifact_prefix,
            store=job.leased_artifact_store,
            speech=True,
        )
    outputs = job.request.outputs
    return Lease(
        formats=outputs.formats,
        known_speakers=outputs.diarization.known,
        prefix=job.leased_artifact_prefix,
        store=job.leased_artifact_store,
    )


def build_metadata(job: Job, request: CompleteRequest, worker_id: str) -> dict[str, Any]:
    """The job's result metadata: the worker's sanitized scalars plus the server's own
    request, source, diarization and attempt fields."""
    metadata = worker_fields(request.result_metadata)
    metadata["requested_model"] = job.model
    if job.job_type == JobType.SYNTHESIZE:
        # The voice the server resolved at submission, not what the worker says it used.
        metadata["voice"] = job.synthesis_request.voice
        return _attempt_fields(metadata, job, worker_id)
    job_request = job.request
    source = job_request.source
    metadata["source_kind"] = source.kind
    if isinstance(source, UrlSource):
        metadata["source_url"] = source.url  # submitted, not redirected
    else:
        metadata["source_name"] = source.filename or ""
        metadata["source_content_type"] = source.content_type or ""
    diarization = job_request.outputs.diarization
    if diarization.enabled:
        summary = None
        if diarization.known:
            summary = known_speaker_summary(request.result_metadata, diarization.names)
        metadata["diarization"] = diarization.public(summary)
    return _attempt_fields(metadata, job, worker_id)


def _attempt_fields(metadata: dict[str, Any], job: Job, worker_id: str) -> dict[str, Any]:
    metadata.update(
        worker_id=worker_id, attempt=job.attempt_count, execution_mode=ExecutionMode.REMOTE.value
    )
    return metadata


def complete(job_id: UUID, worker_id: str, request: CompleteRequest, config: Config) -> Job:
    """Settle a successful attempt; raises NotFound, Conflict (409) or InvalidInput (400)."""
    job = remote_job(job_id)
    if _is_own_success(job, worker_id, request.lease_token):
        return _repeat_completion(job, worker_id, request)
    if not Job.objects.leased(job_id, worker_id, request.lease_token, timezone.now()).exists():
        raise not_leased()
    lease = lease_of(job)
    check_structure(request.artifacts, lease)
    metadata = build_metadata(job, request, worker_id)
    check_objects(request.artifacts, lease, config.artifacts)  # outside the transaction
    with transaction.atomic():
        now = timezone.now()
        current = Job.objects.leased(job_id, worker_id, request.lease_token, now)
        if not current.select_for_update().exists():
            raise not_leased()
        JobArtifact.objects.filter(job_id=job_id).delete()
        JobArtifact.objects.bulk_create(
            JobArtifact(job=job, storage_identity=dict(lease.store), **entry.model_dump())
            for entry in request.artifacts
        )
        if not job.succeed_lease(
            worker_id, request.lease_token, now, text=request.result_text, metadata=metadata
        ):
            raise not_leased()  # rolls back the artifact rows too
    job.refresh_from_db()
    logger.info("job %s: attempt %d completed by worker %s", job.pk, job.attempt_count, worker_id)
    _after_success(job, config)
    return job


def _is_own_success(job: Job, worker_id: str, token: str) -> bool:
    return (
        job.state == JobState.SUCCEEDED
        and job.assigned_worker_id == worker_id
        and job.lease_token_hash == hash_token(token)
    )


def _repeat_completion(job: Job, worker_id: str, request: CompleteRequest) -> Job:
    """A repeated completion of a committed success: same result ⇒ 200, else 409. Only the
    structure is checked (the store may be down; the objects were verified the first time)."""
    check_structure(request.artifacts, lease_of(job))
    fields = ManifestArtifact.model_fields
    stored = sorted(
        ({field: getattr(row, field) for field in fields} for row in job.artifacts.all()),
        key=lambda entry: str(entry["name"]),
    )
    same = (
        request.result_text == job.result_text
        and build_metadata(job, request, worker_id) == job.result_metadata
        and normalized(request.artifacts) == stored
    )
    if not same:
        raise Conflict(RETRY_CONFLICT, code="completion_conflict")
    return job


def _after_success(job: Job, config: Config) -> None:
    """Index the transcript; delete the staged upload, and the objects of earlier (lost)
    attempts of this job."""
    if job.job_type == JobType.TRANSCRIBE:
        transcript_changed.send(sender=Job, job=job)
    settle_upload(job, config)
    if job.attempt_count < 2:
        return
    base = job.leased_artifact_prefix.rstrip("/").rsplit("/", 1)[0]
    try:
        store = store_for_identity(job.leased_artifact_store, config.artifacts)
        for attempt in range(1, job.attempt_count):
            store.delete_tree(f"{base}/attempt-{attempt}")
    except StoreError:
        logger.warning("job %s: objects of earlier attempts were not removed", job.pk)


def fail(job_id: UUID, worker_id: str, request: FailRequest, config: Config) -> Job:
    """Record a failed attempt: re-queued when retryable with attempts left, else failed."""
    job = remote_job(job_id)
    # The worker's text is logged for operators; producers see it only after the reference's
    # terminal message (a worker sends client-safe messages: domain errors or an error id).
    logger.info(
        "job %s: worker %s reports %s failure (%s): %s",
        job_id,
        worker_id,
        "retryable" if request.retryable else "terminal",
        request.error_code or "-",
        request.error_detail,
    )
    requeue = request.retryable and job.attempt_count < job.max_attempts
    if requeue:
        code, detail = request.error_code or "remote_retryable", RETRYABLE_FAILURE
    else:
        shown = f"{TERMINAL_FAILURE} {request.error_detail}"[:MAX_SHOWN_ERROR]
        code = request.error_code or "remote_worker_failed"
        detail = shown if not request.retryable else TERMINAL_FAILURE
    changed = job.fail_lease(
        worker_id, request.lease_token, timezone.now(), requeue=requeue, code=code, detail=detail
    )
    if not changed:
        raise not_leased()
    job.refresh_from_db()
    if job.state == JobState.FAILED:
        settle_upload(job, config)
    return job

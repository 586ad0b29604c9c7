"""Submitting a job: validation against settings, task_ref idempotency, create and enqueue.

A resubmission with the same producer, ``task_ref`` and result-affecting fields (backend,
model, language, input, set of formats, diarization) returns the existing job unless it
failed or was canceled; anything else makes a new job. The fields are hashed into
``request_fingerprint``, and a partial unique index on (producer, task_ref, fingerprint)
over live jobs makes concurrent identical submissions safe: one insert wins, the others
get an IntegrityError and return the winner.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction

from voxhelm.batch.inputs import batch_fetch_policy
from voxhelm.batch.request import JobOutputs, JobRequest, UploadSource, UrlSource
from voxhelm.config import Config
from voxhelm.fetch import check_url
from voxhelm.jobs.models import DispatchMode, ExecutionMode, Job, JobPriority, JobType
from voxhelm.jobs.reference_uploads import resolve_reference_uploads
from voxhelm.jobs.schemas import JobSubmission
from voxhelm.jobs.staged import attach_upload
from voxhelm.jobs.synthesis import SynthesisSubmission
from voxhelm.jobs.tasks import enqueue
from voxhelm.jobs.voiceprints import resolve_library_speakers
from voxhelm.jobs.webhooks import check_callback
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import validate_model

logger = logging.getLogger("voxhelm.jobs")


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False: an existing job answered to the same task_ref and request


def request_fingerprint(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the result-affecting fields."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def submit(producer: str, submission: JobSubmission, config: Config) -> Submitted:
    """Create (or find) the job for ``submission``; raises InvalidInput/UrlNotAllowed (400s)."""
    return submit_request(
        producer,
        submission.to_request(),
        config,
        task_ref=submission.task_ref or "",
        priority=submission.priority,
        context=submission.context,
    )


def submit_request(
    producer: str,
    request: JobRequest,
    config: Config,
    *,
    task_ref: str = "",
    priority: str = JobPriority.NORMAL,
    context: dict[str, Any] | None = None,
    dispatch: DispatchMode = DispatchMode.BATCH,
    worker: str = "",
) -> Submitted:
    """Create (or find) the transcription job for ``request``: the only place job rows are
    made (the API, the console's batch jobs and its runs at once come here).

    A ``SYNC`` job is the caller's own attempt: it runs locally, once, and its row is
    inserted already ``running`` on ``worker`` (the caller then runs it, see
    ``voxhelm.jobs.pipeline.run_now``); a ``BATCH`` job is queued for a worker.
    """
    if request.model != "auto":
        request = replace(request, model=validate_model(request.model, config.stt))
    request = replace(request, language=normalize_language(request.language) or None)
    fingerprint = request_fingerprint(request.fingerprint_fields(JobType.TRANSCRIBE, "auto"))
    if task_ref:
        # Before the URL check: a retry still finds its job after the allowlist changed.
        existing = Job.objects.reusable(producer, task_ref, fingerprint).first()
        if existing is not None:
            return Submitted(existing, created=False)
    source = request.source
    if isinstance(source, UrlSource):
        check_url(source.url, batch_fetch_policy(config))
    callback_url = check_callback(request.callback_url, config) if request.callback_url else ""

    def attach(job: Job) -> None:
        if isinstance(source, UploadSource) and source.upload_id:
            attach_upload(job, producer, UUID(source.upload_id), config)
        _attach_reference_uploads(job, producer, request.outputs, config)

    sync = dispatch == DispatchMode.SYNC
    return _create(
        producer,
        task_ref,
        fingerprint,
        {
            "job_type": JobType.TRANSCRIBE,
            "priority": priority,
            "dispatch_mode": dispatch,
            "model": request.model,
            "language": request.language or "",
            "prompt": request.prompt or "",
            "input_data": source.to_stored(),
            "output_data": request.outputs.to_stored(),
            "context_data": context or {},
            # Per job, so switching VOXHELM_TRANSCRIPTION_EXECUTION_MODE needs no migration.
            # A run at once is local (the sweeper then fails it if this process dies; with
            # one attempt it is never re-queued, since no task could run it).
            "execution_mode": ExecutionMode.LOCAL if sync else config.execution.transcription_mode,
            "max_attempts": 1 if sync else config.execution.max_attempts,
            "callback_url": callback_url,
        },
        attach=attach,
        worker=worker if sync else "",
    )


def submit_synthesis(producer: str, request: SynthesisSubmission, config: Config) -> Submitted:
    """Create (or find) a synthesis job; voice, text and speed are checked first (400s).

    Unlike the reference (which reused any synthesis job with the same task_ref), a retry
    maps to a job only when the text, voice, speed, model and formats are the same.
    """
    synthesis = request.to_request(config)
    fields: dict[str, Any] = {
        "job_type": JobType.SYNTHESIZE,
        "backend": request.backend,
        "model": request.model,
        "language": request.language or "",
        "input_data": synthesis.input_data(),
        "output_data": synthesis.output_data(),
    }
    fingerprint = request_fingerprint(fields)
    task_ref = request.task_ref or ""
    if task_ref:
        existing = Job.objects.reusable(producer, task_ref, fingerprint).first()
        if existing is not None:
            return Submitted(existing, created=False)
    fields.update(
        lane=request.lane,
        priority=request.priority,
        max_attempts=config.execution.max_attempts,
        context_data=request.context or {},
        callback_url=check_callback(request.callback_url, config) if request.callback_url else "",
        # By default where transcription runs: a set-up of only `voxhelm web` and remote workers
        # has no local worker (the reference kept synthesis local, and it never ran there).
        execution_mode=config.execution.synthesis_mode,
    )
    return _create(producer, task_ref, fingerprint, fields)


def _create(
    producer: str,
    task_ref: str,
    fingerprint: str,
    fields: dict[str, Any],
    *,
    attach: Callable[[Job], None] | None = None,
    worker: str = "",
) -> Submitted:
    """Insert the job (``attach`` runs in the same transaction) and queue it, or start it on
    ``worker``; a concurrent identical submission that won the unique index answers instead."""
    try:
        with transaction.atomic():
            job = Job.objects.create(
                producer=producer,
                task_ref=task_ref,
                request_fingerprint=fingerprint,
                **fields,
            )
            if attach is not None:
                attach(job)
            if worker:
                job.mark_running(worker)  # the caller's own attempt, under way at once
            elif job.execution_mode == ExecutionMode.LOCAL:
                enqueue(job)  # remote_pull jobs wait in the table for a worker's claim
    except IntegrityError:
        winner = Job.objects.reusable(producer, task_ref, fingerprint).first()
        if not task_ref or winner is None:
            raise
        logger.info(
            "job submission lost the race for task_ref %r; answering with %s", task_ref, winner.pk
        )
        return Submitted(winner, created=False)
    return Submitted(job, created=True)


def _attach_reference_uploads(job: Job, producer: str, outputs: JobOutputs, config: Config) -> None:
    """Name known-speaker reference uploads by their store objects, and library voices by
    their saved vectors, in the stored request (the fingerprint keeps the producer's
    ``upload_id`` and ``library`` forms)."""
    resolved = resolve_reference_uploads(producer, outputs.diarization, config)
    resolved = resolve_library_speakers(producer, resolved)
    if resolved is not outputs.diarization:
        job.output_data = replace(outputs, diarization=resolved).to_stored()
        job.save(update_fields=["output_data"])

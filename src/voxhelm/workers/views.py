"""The remote worker endpoints under ``/v1/internal/`` (worker tokens only).

Each endpoint: POST, worker authentication before anything else, a JSON object body, a
``worker_id`` in the body (if given) equal to the token's label (else 403), then the
protocol model (``voxhelm.worker_protocol.messages``). The database work runs on its own thread and
connection, so concurrent claims really race to the database (the shared sync-view thread
would serialize them and hide a broken claim).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from pydantic import BaseModel

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import ApiError, invalid_request
from voxhelm.api.schemas import isoformat
from voxhelm.api.validation import json_object, parse
from voxhelm.batch.request import UploadSource
from voxhelm.jobs.models import JobType
from voxhelm.jobs.schemas import represent
from voxhelm.jobs.staged import settle_upload
from voxhelm.storage.keys import checkpoint_prefix
from voxhelm.uploads.models import StagedUpload
from voxhelm.worker_protocol.messages import (
    ClaimedJob,
    ClaimedOutput,
    ClaimedTextInput,
    ClaimedUploadInput,
    ClaimedUrlInput,
    ClaimRequest,
    ClaimResponse,
    CompleteRequest,
    FailRequest,
    JobHeartbeat,
    JobHeartbeatResponse,
    StagedArtifact,
    WorkerHeartbeat,
    WorkerHeartbeatResponse,
)
from voxhelm.workers import completion, leases
from voxhelm.workers.models import Worker

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

WORKER_MISMATCH = "Worker token is not authorized for the requested worker_id."


def _forbidden(message: str) -> ApiError:
    return ApiError(403, message, type="permission_error", code="permission_denied")


def _body(request: HttpRequest, context: str, model: type[M]) -> M:
    if not (request.content_type or "").startswith("application/json"):
        raise invalid_request(
            f"{context} requires application/json.", code="unsupported_content_type"
        )
    data = json_object(request.body, not_object="Request body must be a JSON object.")
    if "worker_id" in data and data["worker_id"] != principal(request):
        raise _forbidden(WORKER_MISMATCH)
    return parse(model, data)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    def run() -> T:
        try:
            return function(*args)
        finally:
            close_old_connections()

    return await sync_to_async(run, thread_sensitive=False)()


def _enabled_worker(worker_id: str) -> Worker:
    worker = Worker.objects.ensure(worker_id)
    if not worker.enabled:
        raise _forbidden("Worker is disabled.")
    return worker


def _record_heartbeat(worker_id: str, beat: WorkerHeartbeat) -> dict[str, Any]:
    _enabled_worker(worker_id)
    now = timezone.now()
    # Conditional on enabled: a worker disabled meanwhile is not updated.
    if not Worker.objects.filter(pk=worker_id, enabled=True).update(
        hostname=beat.hostname,
        capabilities=beat.capabilities.model_dump(),
        concurrency=beat.concurrency,
        running_job_ids=beat.running_job_ids,
        last_seen_at=now,
        updated_at=now,
    ):
        raise _forbidden("Worker is disabled.")
    return WorkerHeartbeatResponse(
        worker_id=worker_id,
        enabled=True,
        server_time=str(isoformat(now)),
        poll_after_seconds=settings.VOXHELM.execution.poll_seconds,
    ).model_dump()


@api_view(["POST"], auth="worker")
async def worker_heartbeat(request: HttpRequest) -> JsonResponse:
    beat = _body(request, "Worker heartbeat", WorkerHeartbeat)
    return JsonResponse(await _in_thread(_record_heartbeat, principal(request), beat))


def _claim(worker_id: str, claim: ClaimRequest) -> dict[str, Any] | None:
    config = settings.VOXHELM
    worker = _enabled_worker(worker_id)
    outcome = leases.claim(worker, claim.capabilities, claim.max_jobs, config)
    for job in outcome.failed:
        settle_upload(job, config)
    if outcome.claim is None:
        return None
    claimed = _claimed(outcome.claim)
    # A transcription's claim keeps the reference's shape: no synthesis fields.
    speech_only = (
        {"job": {"output": {"voice", "speed"}}} if claimed.job_type != "synthesize" else None
    )
    return ClaimResponse(job=claimed, server_time=isoformat(timezone.now())).model_dump(
        exclude=speech_only
    )


def _claimed(claim: leases.Claim) -> ClaimedJob:
    job = claim.job
    if job.job_type == JobType.SYNTHESIZE:
        synthesis = job.synthesis_request
        return _claimed_job(
            claim,
            ClaimedTextInput(text=synthesis.text),
            ClaimedOutput(
                formats=list(synthesis.formats), voice=synthesis.voice, speed=synthesis.speed
            ),
        )
    request = job.request
    job_input: ClaimedUrlInput | ClaimedUploadInput
    if isinstance(request.source, UploadSource):
        upload = StagedUpload.objects.get(claimed_by_job=job)
        job_input = ClaimedUploadInput(
            filename=upload.filename,
            content_type=upload.content_type,
            size_bytes=upload.size_bytes,
            staged_artifact=StagedArtifact(
                storage_backend=upload.storage_backend,
                storage_key=upload.storage_key,
                storage_identity=upload.storage_identity,
                sha256=upload.sha256,
            ),
        )
    else:
        job_input = ClaimedUrlInput(url=request.source.url)
    output = ClaimedOutput(
        formats=list(request.outputs.formats),
        diarization=request.outputs.diarization.to_claim(),
    )
    return _claimed_job(claim, job_input, output)


def _claimed_job(
    claim: leases.Claim,
    job_input: ClaimedUrlInput | ClaimedUploadInput | ClaimedTextInput,
    output: ClaimedOutput,
) -> ClaimedJob:
    job = claim.job
    return ClaimedJob(
        id=str(job.pk),
        job_type="synthesize" if job.job_type == JobType.SYNTHESIZE else "transcribe",
        attempt=job.attempt_count,
        lease_token=claim.token,
        lease_expires_at=str(isoformat(job.lease_expires_at)),
        backend=claim.needs.backend,
        model=claim.needs.model,
        requested_backend=job.backend,
        requested_model=job.model,
        language=job.language or None,
        prompt=job.prompt or None,
        input=job_input,
        output=output,
        artifact_prefix=job.leased_artifact_prefix,
        artifact_store=job.leased_artifact_store,
        checkpoint_prefix=checkpoint_prefix(settings.VOXHELM.artifacts.prefix, job.pk),
    )


@api_view(["POST"], auth="worker")
async def claim_work(request: HttpRequest) -> HttpResponse:
    claim = _body(request, "Worker claim", ClaimRequest)
    body = await _in_thread(_claim, principal(request), claim)
    if body is None:
        return HttpResponse(status=204)
    return JsonResponse(body)


def _beat(job_id: UUID, worker_id: str, beat: JobHeartbeat) -> dict[str, Any]:
    job = leases.beat(job_id, worker_id, beat.lease_token, beat.progress, settings.VOXHELM)
    if job is None or job.lease_expires_at is None:
        raise completion.not_leased()
    return JobHeartbeatResponse(
        job_id=str(job.pk),
        lease_expires_at=str(isoformat(job.lease_expires_at)),
        server_time=str(isoformat(timezone.now())),
    ).model_dump()


@api_view(["POST"], auth="worker")
async def job_heartbeat(request: HttpRequest, job_id: UUID) -> JsonResponse:
    beat = _body(request, "Worker job heartbeat", JobHeartbeat)
    return JsonResponse(await _in_thread(_beat, job_id, principal(request), beat))


def _complete(job_id: UUID, worker_id: str, body: CompleteRequest) -> dict[str, Any]:
    return represent(completion.complete(job_id, worker_id, body, settings.VOXHELM))


@api_view(["POST"], auth="worker", body="result")
async def complete_job(request: HttpRequest, job_id: UUID) -> JsonResponse:
    body = _body(request, "Worker job completion", CompleteRequest)
    return JsonResponse(await _in_thread(_complete, job_id, principal(request), body))


def _fail(job_id: UUID, worker_id: str, body: FailRequest) -> dict[str, Any]:
    return represent(completion.fail(job_id, worker_id, body, settings.VOXHELM))


@api_view(["POST"], auth="worker")
async def fail_job(request: HttpRequest, job_id: UUID) -> JsonResponse:
    body = _body(request, "Worker job failure", FailRequest)
    return JsonResponse(await _in_thread(_fail, job_id, principal(request), body))

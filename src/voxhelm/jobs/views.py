"""The producer's job API: submit, read, cancel, and download artifacts.

Producers see only their own jobs; anything else is a 404 in the error envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import BinaryIO
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from pydantic import BaseModel, ConfigDict, RootModel, field_validator

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Operation, operation
from voxhelm.api.validation import json_object, parse
from voxhelm.artifacts.base import CHUNK_BYTES
from voxhelm.artifacts.models import JobArtifact
from voxhelm.errors import Conflict, NotFound
from voxhelm.jobs.models import Job, JobState, JobType
from voxhelm.jobs.schemas import JobOut, JobSubmission, check_job_type, represent
from voxhelm.jobs.staged import settle_upload
from voxhelm.jobs.submit import Submitted, submit, submit_synthesis
from voxhelm.jobs.synthesis import SynthesisSubmission

JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
ARTIFACT_NAME = {
    "name": "name",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "transcript.txt, transcript.json, transcript.vtt, transcript.srt, "
    "transcript.dote.json or transcript.podlove.json",
}


def job_type_of(data: dict[str, object]) -> str:
    """The submission's job type; the reference's messages (param ``job_type``) otherwise."""
    return parse(_JobTypeOnly, data).job_type


class _JobTypeOnly(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_type: str

    @field_validator("job_type", mode="before")
    @classmethod
    def _job_type(cls, value: object) -> object:
        return check_job_type(value)


def _own_job(request: HttpRequest, job_id: UUID) -> Job:
    job = Job.objects.for_producer(principal(request)).filter(pk=job_id).first()
    if job is None:
        raise NotFound("Job not found.", code="job_not_found")
    return job


class JobRequest(RootModel[JobSubmission | SynthesisSubmission]):
    """A transcription or a synthesis job, told apart by ``job_type`` (for the document)."""


def _submit_in_thread(producer: str, submission: JobSubmission | SynthesisSubmission) -> Submitted:
    """Run a submission on its own thread and connection, so identical submissions really
    race to the unique index (the shared sync-view thread would serialize them)."""
    try:
        if isinstance(submission, SynthesisSubmission):
            return submit_synthesis(producer, submission, settings.VOXHELM)
        return submit(producer, submission, settings.VOXHELM)
    finally:
        close_old_connections()


@operation(
    Operation(
        "/v1/jobs",
        "post",
        "Submit a batch job: transcribe media, or synthesize speech",
        "jobs",
        request_body=JobRequest,
        responses={200: JobOut, 201: JobOut},
    )
)
@api_view(["POST"])
async def create_job(request: HttpRequest) -> JsonResponse:
    if not (request.content_type or "").startswith("application/json"):
        raise invalid_request(
            "Batch job submission requires application/json.", code="unsupported_content_type"
        )
    data = json_object(request.body, not_object="Request body must be a JSON object.")
    submission: JobSubmission | SynthesisSubmission
    if job_type_of(data) == JobType.SYNTHESIZE:
        submission = parse(SynthesisSubmission, data)
    else:
        submission = parse(JobSubmission, data)
    submitted = await sync_to_async(_submit_in_thread, thread_sensitive=False)(
        principal(request), submission
    )
    body = await sync_to_async(represent)(submitted.job)
    return JsonResponse(body, status=201 if submitted.created else 200)


@operation(
    Operation(
        "/v1/jobs/{job_id}",
        "get",
        "Read a job: state, progress, result or error",
        "jobs",
        responses={200: JobOut},
        errors=(401, 404, 500),
        parameters=[JOB_ID],
    )
)
@api_view(["GET"])
def job_detail(request: HttpRequest, job_id: UUID) -> JsonResponse:
    return JsonResponse(represent(_own_job(request, job_id)))


@operation(
    Operation(
        "/v1/jobs/{job_id}/cancel",
        "post",
        "Cancel a queued or running job",
        "jobs",
        responses={200: JobOut},
        errors=(401, 404, 409, 500),
        parameters=[JOB_ID],
    )
)
@api_view(["POST"])
def cancel_job(request: HttpRequest, job_id: UUID) -> JsonResponse:
    job = _own_job(request, job_id)
    if not job.cancel():
        raise Conflict(f"The job has already finished ({job.state}).", code="job_finished")
    if job.state == JobState.CANCELED:
        settle_upload(job, settings.VOXHELM)  # a running attempt settles it again on exit
    return JsonResponse(represent(job))


def _open_artifact(producer: str, job_id: UUID, name: str) -> tuple[JobArtifact, BinaryIO]:
    artifact = (
        JobArtifact.objects.exposed()
        .filter(job_id=job_id, job__producer=producer, name=name)
        .first()
    )
    if artifact is None:
        raise NotFound("Artifact not found.", code="artifact_not_found")
    return artifact, artifact.open(settings.VOXHELM.artifacts)


async def _chunks(stream: BinaryIO) -> AsyncIterator[bytes]:
    # An async iterator: Django's ASGI handler would read a sync one fully into memory.
    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(stream.close)


@operation(
    Operation(
        "/v1/jobs/{job_id}/artifacts/{name}",
        "get",
        "Download an artifact of a succeeded job",
        "jobs",
        responses={200: {"application/octet-stream": {"type": "string"}}},
        errors=(401, 404, 500),
        parameters=[JOB_ID, ARTIFACT_NAME],
    )
)
@api_view(["GET"])
async def job_artifact(request: HttpRequest, job_id: UUID, name: str) -> StreamingHttpResponse:
    artifact, stream = await sync_to_async(_open_artifact)(principal(request), job_id, name)
    response = StreamingHttpResponse(_chunks(stream), content_type=artifact.content_type)
    response["Content-Length"] = str(artifact.size_bytes)
    return response

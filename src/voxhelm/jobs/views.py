"""The producer's job API: submit, list, read, cancel, delete, and download artifacts.

Producers see only their own jobs; anything else is a 404 in the error envelope.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, BinaryIO
from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse, QueryDict, StreamingHttpResponse
from pydantic import RootModel

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Operation, parameter
from voxhelm.api.validation import json_object, parse
from voxhelm.artifacts.models import JobArtifact
from voxhelm.errors import Conflict, NotFound
from voxhelm.jobs import listing
from voxhelm.jobs.deletion import delete_job
from voxhelm.jobs.downloads import content_disposition, download_filename
from voxhelm.jobs.listing import MAX_LIMIT, JobFilter
from voxhelm.jobs.models import Job, JobState, JobType
from voxhelm.jobs.schemas import (
    JobCommon,
    JobDeleted,
    JobList,
    JobOut,
    JobSubmission,
    represent,
)
from voxhelm.jobs.staged import settle_upload
from voxhelm.jobs.submit import Submitted, submit, submit_synthesis
from voxhelm.jobs.synthesis import SynthesisSubmission
from voxhelm.storage.base import CHUNK_BYTES

JOB_ID = parameter("job_id", "path", {"type": "string", "format": "uuid"}, required=True)
ARTIFACT_NAME = parameter(
    "name",
    "path",
    {"type": "string"},
    "transcript.txt, transcript.json, transcript.vtt, transcript.srt, "
    "transcript.dote.json or transcript.podlove.json",
    required=True,
)


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


LIST_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "after",
        "in": "query",
        "schema": {"type": "string"},
        "description": "The last_id (a job id) or the next_cursor of the page before.",
    },
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20},
    },
    {
        "name": "state",
        "in": "query",
        "schema": {"type": "string"},
        "description": "One or more of queued, running, succeeded, failed, canceled "
        "(comma-separated).",
    },
    {"name": "task_ref", "in": "query", "schema": {"type": "string"}},
    {"name": "job_type", "in": "query", "schema": {"enum": ["transcribe", "synthesize"]}},
    {
        "name": "created_after",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Jobs created at or after: unix seconds or ISO-8601 (UTC if no offset).",
    },
    {
        "name": "created_before",
        "in": "query",
        "schema": {"type": "string"},
        "description": "Jobs created before: unix seconds or ISO-8601 (UTC if no offset).",
    },
]


@Operation(
    "/v1/jobs",
    "get",
    "List the caller's jobs, newest first, a page at a time",
    "jobs",
    responses={200: JobList},
    parameters=LIST_PARAMETERS,
)
@Operation(
    "/v1/jobs",
    "post",
    "Submit a batch job: transcribe media, or synthesize speech",
    "jobs",
    request_body=JobRequest,
    responses={200: JobOut, 201: JobOut},
)
@api_view(["GET", "POST"])
async def jobs(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return await sync_to_async(_list_jobs)(request)
    return await _create_job(request)


def _list_query(query: QueryDict) -> tuple[JobFilter, int, str | None]:
    """The filters, limit and cursor of ``GET /v1/jobs``; an unknown or repeated parameter
    is a 400, never ignored (a misspelled filter would list every job)."""
    given: dict[str, str] = {}
    for name in query:
        if name not in listing.PARAMETERS:
            raise invalid_request(
                f"Unknown query parameter '{name}'. Accepted: {', '.join(listing.PARAMETERS)}.",
                param=name,
                code="unknown_parameter",
            )
        values = query.getlist(name)
        if len(values) > 1:
            raise invalid_request(f"'{name}' was given more than once.", param=name)
        given[name] = str(values[0])
    filters = JobFilter(
        states=listing.parse_states(given["state"]) if "state" in given else (),
        task_ref=given.get("task_ref"),
        job_type=listing.parse_job_type(given["job_type"]) if "job_type" in given else None,
        created_after=_moment(given, "created_after"),
        created_before=_moment(given, "created_before"),
    )
    limit = listing.parse_limit(given["limit"]) if "limit" in given else listing.DEFAULT_LIMIT
    return filters, limit, given.get("after") or None


def _moment(given: dict[str, str], name: str) -> datetime | None:
    return listing.parse_moment(given[name], name) if name in given else None


def _list_jobs(request: HttpRequest) -> JsonResponse:
    filters, limit, after = _list_query(request.GET)
    page = listing.list_jobs(principal(request), filters, limit=limit, after=after)
    data = [represent(job) for job in page.jobs]
    body = JobList.model_validate(
        {
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
    )
    return JsonResponse(body.model_dump(mode="json", exclude_unset=False))


async def _create_job(request: HttpRequest) -> JsonResponse:
    if not (request.content_type or "").startswith("application/json"):
        raise invalid_request(
            "Batch job submission requires application/json.", code="unsupported_content_type"
        )
    data = json_object(request.body, not_object="Request body must be a JSON object.")
    submission: JobSubmission | SynthesisSubmission
    # The job type alone picks the model; that model then checks every field, in its order.
    only_type = {key: value for key, value in data.items() if key == "job_type"}
    if parse(JobCommon, only_type).job_type == JobType.SYNTHESIZE:
        submission = parse(SynthesisSubmission, data)
    else:
        submission = parse(JobSubmission, data)
    submitted = await sync_to_async(_submit_in_thread, thread_sensitive=False)(
        principal(request), submission
    )
    body = await sync_to_async(represent)(submitted.job)
    return JsonResponse(body, status=201 if submitted.created else 200)


@Operation(
    "/v1/jobs/{job_id}",
    "get",
    "Read a job: state, progress, result or error",
    "jobs",
    responses={200: JobOut},
    errors=(401, 404, 500),
    parameters=[JOB_ID],
)
@Operation(
    "/v1/jobs/{job_id}",
    "delete",
    "Delete a finished job with its artifacts (a running job must be canceled first)",
    "jobs",
    responses={200: JobDeleted},
    errors=(401, 404, 409, 500, 503),
    parameters=[JOB_ID],
)
@api_view(["GET", "DELETE"], body="none")
def job_detail(request: HttpRequest, job_id: UUID) -> JsonResponse:
    job = Job.objects.owned(principal(request), job_id)
    if request.method == "DELETE":
        delete_job(job, settings.VOXHELM)
        return JsonResponse(JobDeleted(id=str(job_id), deleted=True).model_dump(mode="json"))
    return JsonResponse(represent(job))


@Operation(
    "/v1/jobs/{job_id}/cancel",
    "post",
    "Cancel a queued or running job",
    "jobs",
    responses={200: JobOut},
    errors=(401, 404, 409, 500),
    parameters=[JOB_ID],
)
@api_view(["POST"])
def cancel_job(request: HttpRequest, job_id: UUID) -> JsonResponse:
    job = Job.objects.owned(principal(request), job_id)
    if not job.cancel():
        raise Conflict(f"The job has already finished ({job.state}).", code="job_finished")
    if job.state == JobState.CANCELED:
        settle_upload(job, settings.VOXHELM)  # a running attempt settles it again on exit
    return JsonResponse(represent(job))


def _open_artifact(producer: str, job_id: UUID, name: str) -> tuple[JobArtifact, BinaryIO]:
    artifact = (
        JobArtifact.objects.exposed()
        .filter(job_id=job_id, job__producer=producer, name=name)
        .select_related("job")
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


@Operation(
    "/v1/jobs/{job_id}/artifacts/{name}",
    "get",
    "Download an artifact of a succeeded job",
    "jobs",
    responses={200: {"application/octet-stream": {"type": "string"}}},
    errors=(401, 404, 500),
    parameters=[JOB_ID, ARTIFACT_NAME],
)
@api_view(["GET"])
async def job_artifact(request: HttpRequest, job_id: UUID, name: str) -> StreamingHttpResponse:
    artifact, stream = await sync_to_async(_open_artifact)(principal(request), job_id, name)
    response = StreamingHttpResponse(_chunks(stream), content_type=artifact.content_type)
    response["Content-Length"] = str(artifact.size_bytes)
    response["Content-Disposition"] = content_disposition(
        download_filename(artifact.job, artifact.name)
    )
    return response

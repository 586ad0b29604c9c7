"""A job's transcript as data: read it, correct it (``PATCH``), read the machine's original."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Operation, parameter
from voxhelm.api.schemas import isoformat
from voxhelm.api.validation import json_body, parse
from voxhelm.jobs.corrections import Correction, Revision, correct, current, original
from voxhelm.jobs.models import Job
from voxhelm.jobs.transcript_schemas import TranscriptOut, TranscriptPatch, TranscriptSegment

JOB_ID = parameter("job_id", "path", {"type": "string", "format": "uuid"}, required=True)


def transcript_body(job: Job, revision: Revision) -> dict[str, object]:
    transcript = revision.transcript
    body = TranscriptOut(
        job_id=str(job.pk),
        revision=revision.revision,
        edited_at=isoformat(revision.edited_at),
        original=revision.original,
        language=transcript.language,
        text=transcript.text.strip(),
        speakers=list(transcript.speakers),
        segments=[
            TranscriptSegment(
                id=s.id, start=s.start, end=s.end, text=s.text.strip(), speaker=s.speaker
            )
            for s in transcript.segments
        ],
    )
    return body.model_dump(mode="json")


def correction_of(patch: TranscriptPatch) -> Correction:
    """The typed correction; a segment named twice is refused (which edit would win?)."""
    texts: dict[int, str] = {}
    speakers: dict[int, str] = {}
    seen: set[int] = set()
    for edit in patch.segments:
        if edit.id in seen:
            raise invalid_request(f"Segment {edit.id} is given twice.", param="segments.id")
        seen.add(edit.id)
        if edit.text is None and edit.speaker is None:
            raise invalid_request(
                f"Segment {edit.id}: give its text and/or speaker.", param="segments"
            )
        if edit.text is not None:
            texts[edit.id] = edit.text
        if edit.speaker is not None:
            speakers[edit.id] = edit.speaker
    return Correction(names=dict(patch.speakers), texts=texts, speakers=speakers)


@Operation(
    "/v1/jobs/{job_id}/transcript",
    "get",
    "Read a succeeded job's transcript as it stands (with its corrections)",
    "transcripts",
    responses={200: TranscriptOut},
    errors=(401, 404, 409, 500, 503),
    parameters=[JOB_ID],
)
@Operation(
    "/v1/jobs/{job_id}/transcript",
    "patch",
    "Rename speakers and correct segments; every transcript artifact is rendered again",
    "transcripts",
    request_body=TranscriptPatch,
    responses={200: TranscriptOut},
    errors=(400, 401, 404, 409, 500, 503),
    parameters=[JOB_ID],
)
@api_view(["GET", "PATCH"])
def job_transcript(request: HttpRequest, job_id: UUID) -> JsonResponse:
    job = Job.objects.owned(principal(request), job_id)
    config = settings.VOXHELM
    if request.method == "GET":
        return JsonResponse(transcript_body(job, current(job, config)))
    patch = parse(TranscriptPatch, json_body(request, "A transcript correction"))
    return JsonResponse(transcript_body(job, correct(job, correction_of(patch), config)))


@Operation(
    "/v1/jobs/{job_id}/transcript/original",
    "get",
    "Read the machine's transcript of a job, as it was before any correction",
    "transcripts",
    responses={200: TranscriptOut},
    errors=(401, 404, 409, 500, 503),
    parameters=[JOB_ID],
)
@api_view(["GET"])
def job_transcript_original(request: HttpRequest, job_id: UUID) -> JsonResponse:
    job = Job.objects.owned(principal(request), job_id)
    return JsonResponse(transcript_body(job, original(job, settings.VOXHELM)))

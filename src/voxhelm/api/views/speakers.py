"""The producer's speaker library: save a job's speaker as a known voice, list, delete."""

from __future__ import annotations

from uuid import UUID

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Operation, parameter
from voxhelm.api.schemas import isoformat
from voxhelm.api.validation import json_body, parse
from voxhelm.errors import NotFound
from voxhelm.jobs.models import Job
from voxhelm.jobs.transcript_schemas import (
    LibrarySpeakerDeleted,
    LibrarySpeakerList,
    LibrarySpeakerOut,
    SpeakerSave,
)
from voxhelm.jobs.voiceprints import save_speaker
from voxhelm.studio.models import LibrarySpeaker

SPEAKER_ID = parameter("speaker_id", "path", {"type": "string", "format": "uuid"}, required=True)


def speaker_out(voice: LibrarySpeaker) -> LibrarySpeakerOut:
    return LibrarySpeakerOut(
        id=str(voice.pk),
        name=voice.name,
        embedding_model=voice.embedding_version,
        speech_seconds=voice.speech_seconds,
        source_job_id=str(voice.source_job_id) if voice.source_job_id else None,
        created_at=str(isoformat(voice.created_at)),
        updated_at=str(isoformat(voice.updated_at)),
    )


def _save(producer: str, save: SpeakerSave) -> tuple[LibrarySpeaker, bool]:
    """Embedding takes seconds of CPU: on a thread of its own, not the shared sync thread."""
    try:
        try:
            job_id = UUID(save.job_id)
        except ValueError:
            raise invalid_request("job_id must be a job's id.", param="job_id") from None
        job = Job.objects.for_producer(producer).filter(pk=job_id).first()
        if job is None:
            raise NotFound("Job not found.", code="job_not_found", param="job_id")
        name = save.name or save.speaker
        return save_speaker(producer, job, save.speaker, name, settings.VOXHELM)
    finally:
        close_old_connections()


def _list(producer: str) -> dict[str, object]:
    voices = LibrarySpeaker.objects.for_producer(producer)
    return LibrarySpeakerList(data=[speaker_out(voice) for voice in voices]).model_dump(mode="json")


@Operation(
    "/v1/speakers",
    "get",
    "List your speaker library: the voices later jobs can name",
    "speakers",
    responses={200: LibrarySpeakerList},
    errors=(401, 500),
)
@Operation(
    "/v1/speakers",
    "post",
    "Save a speaker of a succeeded job as a known voice (replaces one of that name)",
    "speakers",
    request_body=SpeakerSave,
    responses={200: LibrarySpeakerOut, 201: LibrarySpeakerOut},
    errors=(400, 401, 404, 409, 429, 500, 503),
)
@api_view(["GET", "POST"])
async def speakers(request: HttpRequest) -> JsonResponse:
    producer = principal(request)
    if request.method == "GET":
        return JsonResponse(await sync_to_async(_list)(producer))
    save = parse(SpeakerSave, json_body(request, "Saving a speaker"))
    voice, created = await sync_to_async(_save, thread_sensitive=False)(producer, save)
    return JsonResponse(speaker_out(voice).model_dump(mode="json"), status=201 if created else 200)


@Operation(
    "/v1/speakers/{speaker_id}",
    "delete",
    "Delete a voice of your speaker library",
    "speakers",
    responses={200: LibrarySpeakerDeleted},
    errors=(401, 404, 500),
    parameters=[SPEAKER_ID],
)
@api_view(["DELETE"], body="none")
def speaker_detail(request: HttpRequest, speaker_id: UUID) -> JsonResponse:
    deleted, _ = (
        LibrarySpeaker.objects.for_producer(principal(request)).filter(pk=speaker_id).delete()
    )
    if not deleted:
        raise NotFound("Speaker not found.", code="speaker_not_found")
    return JsonResponse(
        LibrarySpeakerDeleted(id=str(speaker_id), deleted=True).model_dump(mode="json")
    )

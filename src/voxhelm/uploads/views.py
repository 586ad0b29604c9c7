"""``POST /v1/uploads``: stage media for a batch job (``input.kind=upload``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel, Field

from voxhelm.api.decorators import api_view, principal
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Content, Operation
from voxhelm.api.schemas import isoformat
from voxhelm.uploads.models import StagedUpload
from voxhelm.uploads.staging import stage_off_loop


class StagedMediaOut(BaseModel):
    """A staged upload; submit a job with ``{"input": {"kind": "upload", "upload_id": id}}``."""

    id: str
    object: Literal["staged_media"] = "staged_media"
    filename: str
    content_type: str
    size_bytes: int
    created_at: str
    expires_at: str = Field(description="After this the upload is deleted unless a job uses it.")


UPLOAD_FORM: Content = {
    "multipart/form-data": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary", "description": "Audio or video."}
        },
    }
}


def represent_upload(upload: StagedUpload) -> dict[str, object]:
    return StagedMediaOut(
        id=str(upload.pk),
        filename=upload.filename,
        content_type=upload.content_type,
        size_bytes=upload.size_bytes,
        created_at=_iso(upload.created_at),
        expires_at=_iso(upload.expires_at),
    ).model_dump(mode="json")


def _iso(moment: datetime) -> str:
    return isoformat(moment) or ""


@Operation(
    "/v1/uploads",
    "post",
    "Stage audio or video for a batch job",
    "jobs",
    request_body=UPLOAD_FORM,
    responses={201: StagedMediaOut},
    errors=(400, 401, 413, 500),
)
@api_view(["POST"], body="staged")
async def create_upload(request: HttpRequest) -> JsonResponse:
    if not (request.content_type or "").startswith("multipart/form-data"):
        raise invalid_request(
            "Batch upload staging requires multipart/form-data.", code="unsupported_content_type"
        )
    upload = await stage_off_loop(request, principal(request), settings.VOXHELM)
    return JsonResponse(represent_upload(upload), status=201)

"""``POST /v1/audio/translations``: speech in any language to English text (OpenAI-compatible).

Whisper's ``translate`` task, on multilingual models only: an English-only model
(``tiny.en``, the bundled default) is refused with a 400 that says so, before any upload is
decoded. Multipart with ``file`` as OpenAI, or JSON with ``url`` as for transcriptions.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import Operation
from voxhelm.api.schemas import (
    TranslationMultipart,
    TranslationParams,
    TranslationUrlRequest,
)
from voxhelm.api.views.transcriptions import (
    TRANSCRIPT_RESPONSES,
    SyncRequest,
    check_source,
    close_uploads,
    read_request,
    respond,
    run_sync,
)
from voxhelm.config import Config
from voxhelm.errors import InvalidInput
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.registry import resolve, validate_model


def english_only(model: str) -> bool:
    """Whether a model name is one of Whisper's English-only models (``tiny.en``...)."""
    return model.lower().removesuffix(".bin").endswith(".en")


def _validate(sync: SyncRequest, config: Config) -> TranscriptionRequest:
    params = sync.params
    validate_model(params.model, config.stt)
    concrete = resolve(params.model, config.stt)[0].model
    if english_only(concrete):
        # The engine refuses too (it knows models without telling names); this answers
        # before the upload is decoded.
        shown = concrete if concrete == params.model else f"{params.model} ({concrete})"
        raise InvalidInput(
            f"Model {shown} is English-only and cannot translate; use a multilingual model "
            "such as base.",
            param="model",
            code="unsupported_task",
        )
    check_source(sync, config)
    return TranscriptionRequest(
        prompt=params.prompt,
        hotwords=tuple(params.hotwords),
        temperature=params.temperature,
        task="translate",
    )


@Operation(
    "/v1/audio/translations",
    "post",
    "Translate speech into English text (OpenAI-compatible; multilingual models only)",
    "audio",
    request_body={
        "multipart/form-data": TranslationMultipart,
        "application/json": TranslationUrlRequest,
    },
    responses={200: TRANSCRIPT_RESPONSES},
    errors=(400, 401, 413, 429, 500, 503),
)
@api_view(["POST"], body="upload")
async def create_translation(request: HttpRequest) -> HttpResponse:
    config: Config = settings.VOXHELM
    try:
        sync = await read_request(request, config, TranslationParams, TranslationUrlRequest)
        stt_request = _validate(sync, config)
        transcript = await run_sync(sync, stt_request, config)
        return respond(transcript, sync.params.response_format, words=False)
    finally:
        close_uploads(request)

"""``POST /v1/audio/transcriptions``: OpenAI-compatible synchronous transcription.

Multipart with ``file`` (as OpenAI) or JSON with ``url`` (fetched by the guarded fetcher).
Every field is validated before any download; decoding and inference run on the bounded
inference pool, never on the event loop; temporary files live in a per-request directory
that is always removed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from voxhelm import audio, lanes
from voxhelm.api.decorators import api_view
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Operation, operation
from voxhelm.api.schemas import (
    TranscriptionMultipart,
    TranscriptionParams,
    TranscriptionText,
    TranscriptionUrlRequest,
    TranscriptionVerbose,
)
from voxhelm.api.validation import json_object, parse
from voxhelm.config import MIB, Config
from voxhelm.errors import InvalidInput, PayloadTooLarge
from voxhelm.fetch import FetchPolicy, check_url, configured_policy, fetch_to_file
from voxhelm.formats import render
from voxhelm.stt import debuglog, windows
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.pool import inference_pool
from voxhelm.stt.registry import validate_model
from voxhelm.transcript import Transcript

SYNC_ACCEPT = "audio/*;q=1.0,video/*;q=0.5,*/*;q=0.1"


@dataclass(frozen=True)
class SyncRequest:
    params: TranscriptionParams
    upload: IO[bytes] | None = None
    url: str | None = None


def sync_fetch_policy(config: Config) -> FetchPolicy:
    return configured_policy(
        config, max_bytes=config.limits.max_url_download_bytes, accept=SYNC_ACCEPT
    )


def _read_multipart(request: HttpRequest, config: Config) -> SyncRequest:
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid_request(
            "Multipart requests must include a file field named 'file'.", param="file"
        )
    limit = config.limits.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(
            f"Uploaded file exceeded {limit // MIB} MiB transcription limit.", param="file"
        )
    fields: dict[str, Any] = {key: request.POST.get(key) for key in request.POST}
    granularities = request.POST.getlist("timestamp_granularities[]") or request.POST.getlist(
        "timestamp_granularities"
    )
    fields.pop("timestamp_granularities[]", None)
    if granularities:
        fields["timestamp_granularities"] = granularities
    return SyncRequest(params=parse(TranscriptionParams, fields), upload=upload)


def _read_json(request: HttpRequest) -> SyncRequest:
    data = json_object(request.body)
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        raise invalid_request("JSON requests must include a non-empty 'url' field.", param="url")
    params = parse(TranscriptionUrlRequest, data)
    return SyncRequest(params=params, url=params.url.strip())


def _validate(sync: SyncRequest, config: Config) -> TranscriptionRequest:
    params = sync.params
    if params.stream:
        raise InvalidInput("Streaming transcription is not supported yet.", param="stream")
    validate_model(params.model, config.stt)
    words = "word" in params.timestamp_granularities
    if words and params.response_format != "verbose_json":
        raise InvalidInput(
            "timestamp_granularities[]=word requires response_format=verbose_json.",
            param="timestamp_granularities",
        )
    if sync.url is not None:
        check_url(sync.url, sync_fetch_policy(config))
    return TranscriptionRequest(
        language=normalize_language(params.language),
        prompt=params.prompt,
        temperature=params.temperature,
        word_timestamps=words,
    )


def _transcribe(
    sync: SyncRequest, stt_request: TranscriptionRequest, config: Config, workdir: Path
) -> Transcript:
    """Fetch (for URLs), decode and transcribe: runs on an inference thread."""
    source: Path | BinaryIO
    if sync.url is not None:
        source = fetch_to_file(sync.url, sync_fetch_policy(config), workdir).path
    else:
        assert sync.upload is not None
        sync.upload.seek(0)
        source = cast(BinaryIO, sync.upload)
    decoded = audio.decode(source, max_seconds=config.limits.max_audio_seconds)
    started = time.monotonic()
    # Only the engine calls hold a lane slot (window by window for long audio), not the
    # fetch or the decode.
    transcript = windows.transcribe(
        decoded, sync.params.model, stt_request, config, lane=lanes.NON_INTERACTIVE
    )
    if config.stt.debug_logging:
        debuglog.emit(
            "http.audio_transcriptions",
            audio=debuglog.audio_shape(decoded, source),
            requested_model=sync.params.model,
            request=stt_request,
            transcript=transcript,
            seconds=time.monotonic() - started,
        )
    return transcript


@operation(
    Operation(
        "/v1/audio/transcriptions",
        "post",
        "Transcribe audio (OpenAI-compatible)",
        "audio",
        request_body={
            "multipart/form-data": {"schema": TranscriptionMultipart.model_json_schema()},
            "application/json": {"schema": TranscriptionUrlRequest.model_json_schema()},
        },
        responses={
            200: {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            TranscriptionText.model_json_schema(),
                            TranscriptionVerbose.model_json_schema(),
                        ]
                    }
                },
                "text/plain": {"schema": {"type": "string"}},
                "text/vtt": {"schema": {"type": "string"}},
                "application/x-subrip": {"schema": {"type": "string"}},
            }
        },
        errors=(400, 401, 413, 429, 500, 503),
    )
)
@api_view(["POST"])
async def create_transcription(request: HttpRequest) -> HttpResponse:
    try:
        return await _transcription_response(request, settings.VOXHELM)
    finally:
        # Django would delete the uploaded temp file only after the response is sent; do it
        # now so that no file outlives the request, whatever happened.
        if (request.content_type or "").startswith("multipart/form-data"):
            for uploads in request.FILES.lists():
                for upload in uploads[1]:
                    upload.close()


async def _transcription_response(request: HttpRequest, config: Config) -> HttpResponse:
    content_type = request.content_type or ""
    if content_type.startswith("multipart/form-data"):
        # Parsing a multipart body writes the file out: keep that off the event loop.
        sync = await asyncio.to_thread(_read_multipart, request, config)
    elif content_type.startswith("application/json"):
        sync = _read_json(request)
    else:
        raise invalid_request(
            "Unsupported content type. Use multipart/form-data or application/json.",
            code="unsupported_content_type",
        )
    stt_request = _validate(sync, config)
    pool = inference_pool(config.stt.max_concurrency, config.stt.max_waiting)
    with tempfile.TemporaryDirectory(prefix="voxhelm-sync-") as workdir:
        transcript = await pool.run(lambda: _transcribe(sync, stt_request, config, Path(workdir)))
    rendered = render(transcript, sync.params.response_format, words=stt_request.word_timestamps)
    response = HttpResponse(rendered.body, content_type=rendered.content_type)
    response["X-Voxhelm-Backend"] = transcript.backend
    response["X-Voxhelm-Model"] = transcript.model
    return response

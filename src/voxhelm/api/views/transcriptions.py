"""``POST /v1/audio/transcriptions``: OpenAI-compatible transcription, whole or streamed.

Multipart with ``file`` (as OpenAI) or JSON with ``url`` (fetched by the guarded fetcher).
Every field is validated before any download; decoding and inference run on the bounded
inference pool, never on the event loop; a downloaded file lives in a work folder
(:mod:`voxhelm.workdirs`) that is removed as soon as it is decoded. ``stream=true`` answers
server-sent events (:mod:`voxhelm.api.sse`). ``response_format=diarized_json`` labels
speakers (:mod:`voxhelm.api.diarized`). ``POST /v1/audio/translations`` shares these
steps. A field neither form knows is refused, never ignored.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from voxhelm import audio, capacity
from voxhelm.api import diarized, sse
from voxhelm.api.decorators import api_view
from voxhelm.api.errors import invalid_request
from voxhelm.api.openapi import Content, OneOf, Operation
from voxhelm.api.schemas import (
    AudioParams,
    ServerVad,
    TranscriptionDiarized,
    TranscriptionMultipart,
    TranscriptionParams,
    TranscriptionText,
    TranscriptionUrlRequest,
    TranscriptionVerbose,
    TranscriptTextDelta,
    TranscriptTextDone,
    TranscriptTextSegment,
)
from voxhelm.api.validation import json_object, parse
from voxhelm.batch.inputs import sync_fetch_policy
from voxhelm.config import Config
from voxhelm.errors import InvalidInput, PayloadTooLarge
from voxhelm.fetch import check_url, fetch_to_file
from voxhelm.formats import render
from voxhelm.stt import debuglog, windows
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import validate_model
from voxhelm.transcript import Transcript
from voxhelm.units import human_bytes
from voxhelm.workdirs import Workdir

STREAM_FORMATS = ("json", "text", "diarized_json")
LIST_FIELDS = (
    "timestamp_granularities",
    "hotwords",
    "known_speaker_names",
    "known_speaker_references",
)
"""Multipart fields that take a list, also when sent once without brackets."""
NESTED_FIELD = re.compile(r"(?P<name>\w+)\[(?P<key>\w+)\]")
DEBUG_SOURCES = {"transcribe": "http.audio_transcriptions", "translate": "http.audio_translations"}


@dataclass(frozen=True)
class SyncRequest:
    """A validated synchronous request: its fields and where the media comes from."""

    params: AudioParams
    upload: IO[bytes] | None = None
    url: str | None = None


def _form_fields(request: HttpRequest) -> dict[str, Any]:
    """The multipart fields in the JSON form's shape, as OpenAI's clients send them: a list
    as ``name[]`` (or ``name`` repeated), an object's keys as ``name[key]``
    (``chunking_strategy[type]``). A field sent twice is a list, which a single-valued field
    refuses."""
    fields: dict[str, Any] = {}
    for key, values in request.POST.lists():
        nested = NESTED_FIELD.fullmatch(key)
        if key.endswith("[]"):
            fields.setdefault(key[:-2], []).extend(values)
        elif nested is not None:
            target = fields.setdefault(nested["name"], {})
            if not isinstance(target, dict):
                raise invalid_request(f"Send '{nested['name']}' once.", param=nested["name"])
            target[nested["key"]] = values[-1]
        elif key in LIST_FIELDS:
            fields.setdefault(key, []).extend(values)
        else:
            fields[key] = values[0] if len(values) == 1 else values
    return fields


def _read_multipart(request: HttpRequest, config: Config, model: type[AudioParams]) -> SyncRequest:
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid_request(
            "Multipart requests must include a file field named 'file'.", param="file"
        )
    for name, uploads in request.FILES.lists():
        if name != "file" or len(uploads) > 1:
            raise invalid_request(f"Unknown field '{name}': send one file, as 'file'.", param=name)
    limit = config.limits.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(
            f"Uploaded file exceeded {human_bytes(limit)} transcription limit.", param="file"
        )
    return SyncRequest(params=parse(model, _form_fields(request)), upload=upload)


def _read_json(request: HttpRequest, model: type[AudioParams]) -> SyncRequest:
    data = json_object(request.body)
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        raise invalid_request("JSON requests must include a non-empty 'url' field.", param="url")
    params = parse(model, data)
    return SyncRequest(params=params, url=url.strip())


async def read_request(
    request: HttpRequest,
    config: Config,
    multipart: type[AudioParams],
    url_json: type[AudioParams],
) -> SyncRequest:
    """Parse a multipart upload into ``multipart`` or a JSON body into ``url_json``."""
    content_type = request.content_type or ""
    if content_type.startswith("multipart/form-data"):
        # Parsing a multipart body writes the file out: keep that off the event loop.
        return await asyncio.to_thread(_read_multipart, request, config, multipart)
    if content_type.startswith("application/json"):
        return _read_json(request, url_json)
    raise invalid_request(
        "Unsupported content type. Use multipart/form-data or application/json.",
        code="unsupported_content_type",
    )


def check_source(sync: SyncRequest, config: Config) -> None:
    """Refuse a URL the fetch policy would refuse, before any work starts."""
    if sync.url is not None:
        check_url(sync.url, sync_fetch_policy(config))


def _validate(
    sync: SyncRequest, config: Config
) -> tuple[TranscriptionRequest, diarized.Speakers | None]:
    params = cast(TranscriptionParams, sync.params)
    validate_model(params.model, config.stt, diarizing=True)
    if params.stream and params.response_format not in STREAM_FORMATS:
        raise InvalidInput(
            "stream=true answers transcript.text events; use response_format json, text or "
            "diarized_json.",
            param="response_format",
        )
    words = "word" in params.timestamp_granularities
    if words and params.response_format != "verbose_json":
        raise InvalidInput(
            "timestamp_granularities[]=word requires response_format=verbose_json.",
            param="timestamp_granularities",
        )
    speakers = diarized.check(params, config)
    check_source(sync, config)
    request = TranscriptionRequest(
        language=normalize_language(params.language),
        prompt=params.prompt,
        hotwords=tuple(params.hotwords),
        temperature=params.temperature,
        # Speaker labels cut segments at the word nearest a change of speaker.
        word_timestamps=words or speakers is not None,
    )
    return request, speakers


def _decode(sync: SyncRequest, config: Config) -> tuple[audio.Audio, dict[str, Any] | None]:
    """Fetch (for URLs) and decode; the debug shape is taken while the input still exists."""
    source: Any
    with Workdir("sync") as workdir:
        if sync.url is not None:
            source = fetch_to_file(sync.url, sync_fetch_policy(config), workdir).path
        else:
            assert sync.upload is not None
            sync.upload.seek(0)
            source = cast(BinaryIO, sync.upload)
        decoded = audio.decode(source, max_seconds=config.limits.max_audio_seconds)
        shape = debuglog.audio_shape(decoded, source) if config.stt.debug_logging else None
    return decoded, shape


def _pauses(params: AudioParams) -> windows.SpeechPauses | None:
    """The cutting rules of a server_vad chunking_strategy; None for auto, none, and
    translations (which have no chunking_strategy)."""
    strategy = params.chunking_strategy if isinstance(params, TranscriptionParams) else None
    return strategy.pauses() if isinstance(strategy, ServerVad) else None


def transcribe_sync(
    sync: SyncRequest,
    stt_request: TranscriptionRequest,
    config: Config,
    on_window: Callable[[float, float], None] | None = None,
    speakers: diarized.Speakers | None = None,
) -> Transcript:
    """Fetch, decode, transcribe and, given ``speakers``, label them: runs on an inference
    thread.

    ``on_window`` runs after each window of long audio, and before diarizing (a streamed
    request stops there when its client has gone).
    """
    clips = diarized.reference_clips(speakers, config) if speakers else []
    decoded, shape = _decode(sync, config)
    started = time.monotonic()
    # Only the engine calls hold a lane slot (a window or a few for long audio), not the
    # fetch or the decode.
    transcript = windows.transcribe(
        decoded,
        sync.params.model,
        stt_request,
        config,
        admission=capacity.SYNC,
        on_window=on_window,
        pauses=_pauses(sync.params),
    )
    if shape is not None:
        debuglog.emit(
            DEBUG_SOURCES[stt_request.task],
            audio=shape,
            requested_model=sync.params.model,
            request=stt_request,
            transcript=transcript,
            seconds=time.monotonic() - started,
        )
    if speakers is not None:

        def stop() -> None:
            if on_window is not None:
                on_window(decoded.duration, decoded.duration)

        transcript = diarized.label(decoded, transcript, speakers, clips, config, stop=stop)
    return transcript


async def run_sync(
    sync: SyncRequest,
    stt_request: TranscriptionRequest,
    config: Config,
    speakers: diarized.Speakers | None = None,
) -> Any:
    """Transcribe (and label speakers) on the inference pool (429 when it is full) and
    await the transcript."""
    pool = capacity.transcription_pool(config)
    return await pool.run(lambda: transcribe_sync(sync, stt_request, config, speakers=speakers))


def respond(transcript: Transcript, response_format: str, *, words: bool) -> HttpResponse:
    rendered = render(transcript, response_format, words=words)
    response = HttpResponse(rendered.body, content_type=rendered.content_type)
    response["X-Voxhelm-Backend"] = transcript.backend
    response["X-Voxhelm-Model"] = transcript.model
    return response


def close_uploads(request: HttpRequest) -> None:
    """Delete the uploaded temporary files now, not after the response has been sent."""
    if (request.content_type or "").startswith("multipart/form-data"):
        for uploads in request.FILES.lists():
            for upload in uploads[1]:
                upload.close()


STREAM_DESCRIPTION = (
    "With stream=true: text/event-stream of `data: <json>` events, a transcript.text.delta "
    "per finished segment, then transcript.text.done. With diarized_json, once the speakers "
    "are known: per segment a transcript.text.delta naming its segment_id and a "
    "transcript.text.segment, then transcript.text.done."
)


TRANSCRIPT_RESPONSES: Content = {
    "application/json": OneOf((TranscriptionText, TranscriptionVerbose)),
    "text/plain": {"type": "string"},
    "text/vtt": {"type": "string"},
    "application/x-subrip": {"type": "string"},
}
"""The 200 bodies of a transcription (and a translation), by ``response_format``."""


@Operation(
    "/v1/audio/transcriptions",
    "post",
    "Transcribe audio (OpenAI-compatible; stream=true for server-sent events)",
    "audio",
    request_body={
        "multipart/form-data": TranscriptionMultipart,
        "application/json": TranscriptionUrlRequest,
    },
    responses={
        200: {
            **TRANSCRIPT_RESPONSES,
            "application/json": OneOf(
                (TranscriptionText, TranscriptionVerbose, TranscriptionDiarized)
            ),
            "text/event-stream": OneOf(
                (TranscriptTextDelta, TranscriptTextSegment, TranscriptTextDone),
                STREAM_DESCRIPTION,
            ),
        }
    },
    errors=(400, 401, 413, 429, 500, 503),
)
@api_view(["POST"], body="upload")
async def create_transcription(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    config: Config = settings.VOXHELM
    try:
        sync = await read_request(request, config, TranscriptionParams, TranscriptionUrlRequest)
        stt_request, speakers = _validate(sync, config)
        params = cast(TranscriptionParams, sync.params)
        if params.stream:
            return await sse.stream_transcription(
                request,
                params,
                lambda streamed, on_window: transcribe_sync(
                    sync, streamed, config, on_window, speakers
                ),
                stt_request,
                config,
            )
        transcript = await run_sync(sync, stt_request, config, speakers)
        return respond(transcript, sync.params.response_format, words=stt_request.word_timestamps)
    finally:
        # Django would delete the uploaded temp file only after the response is sent; do it
        # now so that no file outlives the request, whatever happened. (A stream returns
        # after its first event, when the upload is decoded already.)
        close_uploads(request)

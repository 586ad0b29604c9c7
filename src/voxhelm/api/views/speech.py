"""``POST /v1/audio/speech`` (OpenAI-compatible synthesis) and ``GET /v1/audio/voices``.

The audio streams as it is synthesized, sentence by sentence, for every format but ``wav``:
the first sentence is synthesized before the response starts (so that every error, a busy
server included, is still an error envelope), then each sentence is encoded and sent while
the next is computed. ``wav`` (the default, as in the reference) is sent whole, with exact
sizes in its header, because clients read the length from it; ask for ``pcm`` to stream
uncompressed audio. ``pcm`` is raw 16-bit little-endian mono at 24 kHz, as OpenAI's.

Each step runs on the speech pool (:mod:`voxhelm.capacity`) and holds a ``non-interactive``
lane slot only while it synthesizes, so a Wyoming command waits for at most one sentence.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from typing import Literal, cast

import numpy as np
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxhelm import capacity, tts
from voxhelm.api.decorators import api_view
from voxhelm.api.openapi import Operation
from voxhelm.api.validation import exact, json_body, parse
from voxhelm.config import Config
from voxhelm.encode import MIME_TYPES, StreamEncoder, encode
from voxhelm.errors import Busy, InvalidInput

logger = logging.getLogger("voxhelm.api")


SPEECH_FORMATS = ("aac", "flac", "mp3", "ogg", "opus", "pcm", "wav")
PCM_RATE = 24000  # OpenAI's pcm contract: 24 kHz, 16-bit signed little-endian, mono
_FIXED_RATES = {"pcm": PCM_RATE, "opus": 48000}


class SpeechRequest(BaseModel):
    """The JSON body of ``POST /v1/audio/speech``; a field it does not know is refused."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description=f"One of {', '.join(tts.SPEECH_MODELS)}.")
    input: str = Field(description="The text to speak (VOXHELM_TTS_MAX_INPUT_CHARS at most).")
    voice: str | None = Field(
        default=None,
        description="A voice from /v1/audio/voices, or an OpenAI name (alloy, nova, ...) for "
        'the default voice of the language. Also accepted as {"id": name}.',
    )
    response_format: str = Field(default="wav", description=", ".join(SPEECH_FORMATS))
    speed: float = Field(default=1.0, description="0.25 to 4.0.")
    language: str | None = Field(
        default=None, description="Picks the voice when none is named (a Voxhelm extension)."
    )
    instructions: str | None = Field(default=None, description="Accepted and ignored.")
    stream_format: Literal["audio"] = Field(
        default="audio", description="Only audio: the response body is the audio file."
    )

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise exact("The 'model' field is required.")
        try:
            tts.validate_model(value.strip())
        except InvalidInput as exc:
            raise exact(exc.message) from None
        return value.strip()

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise exact("The 'input' field is required and must be a non-empty string.")
        return value

    @field_validator("voice", mode="before")
    @classmethod
    def _voice(cls, value: object) -> object:
        if isinstance(value, dict) and set(value) == {"id"}:
            value = value["id"]
        if value is not None and not isinstance(value, str):
            raise exact("The 'voice' field must be a voice name.")
        return value

    @field_validator("response_format", mode="before")
    @classmethod
    def _format(cls, value: object) -> object:
        if value is None or value == "":
            return "wav"
        if not isinstance(value, str) or value.lower() not in SPEECH_FORMATS:
            shown = value[:40] if isinstance(value, str) else value
            raise exact(
                f"Unsupported response_format '{shown}'. "
                f"Accepted values: {', '.join(SPEECH_FORMATS)}."
            )
        return value.lower()

    @field_validator("speed", mode="before")
    @classmethod
    def _speed(cls, value: object) -> object:
        try:
            return tts.validate_speed(value)
        except InvalidInput as exc:
            raise exact(exc.message) from None

    @field_validator("language", "instructions", mode="before")
    @classmethod
    def _optional_text(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise exact("Optional request fields must be strings when provided.")
        return value.strip() or None

    @field_validator("stream_format", mode="before")
    @classmethod
    def _stream_format(cls, value: object) -> object:
        if value is None or value == "audio":
            return "audio"
        raise exact("Only stream_format=audio is supported: the body is the audio itself.")


class VoiceObject(BaseModel):
    id: str
    object: Literal["voice"] = "voice"
    name: str
    language: str = Field(description="The voice's language, as its config says (en_US).")
    languages: list[str] = Field(description="Language keys that select it (en, en_US).")
    sample_rate: int
    default: bool = Field(description="Used when a request names no voice.")
    aliases: list[str] = Field(description="OpenAI voice names that select this voice.")
    speakers: list[str]
    source: Literal["bundled", "directory"]
    quality: str | None = None


class VoiceList(BaseModel):
    object: Literal["list"] = "list"
    data: list[VoiceObject]


class _SpeechJob:
    """One response: synthesis step by step, each sentence encoded as it comes (in threads)."""

    def __init__(self, speech: tts.SpeechStream, fmt: str) -> None:
        self.speech = speech
        self.fmt = fmt
        self.rate = _FIXED_RATES.get(fmt, speech.sample_rate)
        self._buffered: list[np.ndarray] | None = [] if fmt == "wav" else None
        self._encoder = (
            None if fmt == "wav" else StreamEncoder(fmt, speech.sample_rate, rate=self.rate)
        )
        self._lock = threading.Lock()
        self._spoken = False
        self._done = False
        self._closing = False

    def step(self) -> bytes | None:
        """The bytes of the next sentence (b"" while buffering); None after the last."""
        with self._lock:
            try:
                return self._step()
            finally:
                if self._closing:  # closed while this step ran
                    self._release()

    def _step(self) -> bytes | None:
        if self._done:
            return None
        chunk = next(self.speech, None)
        if chunk is None:
            self._done = True
            if not self._spoken:
                raise tts.nothing_to_speak()
            return self._finish()
        self._spoken = True
        if self._buffered is not None:
            self._buffered.append(chunk.samples)
            return b""
        assert self._encoder is not None
        return self._encoder.encode(chunk.samples)

    def _finish(self) -> bytes:
        if self._buffered is not None:
            return encode(np.concatenate(self._buffered), self.speech.sample_rate, self.fmt)
        assert self._encoder is not None
        return self._encoder.finish()

    def close(self) -> None:
        """Stop synthesis. Never blocks (it runs on the event loop): a step running now
        finishes its sentence and then cleans up."""
        self._closing = True
        self.speech.close()
        if self._lock.acquire(blocking=False):
            try:
                self._release()
            finally:
                self._lock.release()

    def _release(self) -> None:
        self._done = True
        if self._encoder is not None:
            self._encoder.close()


def _headers(response: HttpResponse | StreamingHttpResponse, job: _SpeechJob) -> None:
    response["Content-Disposition"] = f'inline; filename="speech.{job.fmt}"'
    response["X-Voxhelm-Voice"] = job.speech.voice.name
    response["X-Voxhelm-Model"] = "piper"
    response["X-Voxhelm-Sample-Rate"] = str(job.rate)


@Operation(
    "/v1/audio/speech",
    "post",
    "Synthesize speech (OpenAI-compatible)",
    "audio",
    request_body=SpeechRequest,
    responses={
        200: {MIME_TYPES[fmt]: {"type": "string", "format": "binary"} for fmt in SPEECH_FORMATS}
    },
    errors=(400, 401, 429, 500, 503),
)
@api_view(["POST"])
async def create_speech(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    config: Config = settings.VOXHELM
    data = json_body(request, "Speech synthesis")
    data.setdefault("input", None)  # missing: the reference's message, not the generic one
    params = parse(SpeechRequest, data)
    speech = tts.stream(
        tts.validate_text(params.input, config.limits.tts_max_input_chars),
        config=config,
        voice=params.voice,
        speed=params.speed,
        language=params.language,
    )
    job = _SpeechJob(speech, params.response_format)
    pool = capacity.speech_pool(config)
    try:
        pool.admit()
    except Busy:
        job.close()
        raise
    try:
        first = await pool.run_step(job.step)
        if params.response_format == "wav":
            pieces = [first or b""]
            while (piece := await pool.run_step(job.step)) is not None:
                pieces.append(piece)
    except BaseException:
        job.close()
        pool.release()
        raise
    if params.response_format == "wav":
        job.close()
        pool.release()
        response: HttpResponse | StreamingHttpResponse = HttpResponse(
            b"".join(pieces), content_type=MIME_TYPES["wav"]
        )
    else:
        response = StreamingHttpResponse(
            _rest(first or b"", job, pool), content_type=MIME_TYPES[params.response_format]
        )
    _headers(response, job)
    return response


async def _rest(
    first: bytes, job: _SpeechJob, pool: capacity.InferencePool
) -> AsyncIterator[bytes]:
    """The streamed body: the first sentence, then each one as it is synthesized."""
    try:
        if first:
            yield first
        while (piece := await pool.run_step(job.step)) is not None:
            if piece:
                yield piece
    except Exception:
        # The status line is sent: the only honest signal left is to break the transfer
        # off, so that the client sees an error instead of a short file.
        logger.exception("speech stream failed after the response started")
        raise
    finally:
        job.close()
        pool.release()


@Operation(
    "/v1/audio/voices",
    "get",
    "List the speech voices",
    "audio",
    responses={200: VoiceList},
    errors=(401, 500),
)
@api_view(["GET"])
def list_voices(request: HttpRequest) -> JsonResponse:
    catalog = tts.catalog(settings.VOXHELM.tts)
    body = VoiceList(data=[_voice_object(v, catalog) for v in catalog.voices])
    return JsonResponse(body.model_dump())


def _voice_object(voice: tts.Voice, catalog: tts.VoiceCatalog) -> VoiceObject:
    source = cast(Literal["bundled", "directory"], voice.source)
    return VoiceObject(
        id=voice.name,
        name=voice.name,
        language=voice.language,
        languages=list(voice.languages),
        sample_rate=voice.sample_rate,
        default=voice == catalog.default,
        aliases=catalog.aliases(voice),
        speakers=list(voice.speakers),
        source=source,
        quality=voice.quality,
    )

"""Pydantic models of API request and response bodies (the source of the OpenAPI document)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail


class EngineStatus(BaseModel):
    backend: str
    model: str
    state: Literal["ready", "loading", "not_loaded", "unavailable"]
    reason: str | None = Field(default=None, description="Why the engine is unavailable.")


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    stt: EngineStatus


TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


class TranscriptionParams(BaseModel):
    """Fields of ``POST /v1/audio/transcriptions`` (multipart, or JSON with ``url``)."""

    model: str = Field(description="A model id from /v1/models, or an alias such as whisper-1.")
    language: str | None = Field(default=None, description="ISO 639-1 code; omit to detect.")
    prompt: str | None = Field(default=None, description="Text to guide spelling and style.")
    response_format: str = Field(default="json", description="json, text, srt, verbose_json, vtt")
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    timestamp_granularities: list[Literal["segment", "word"]] = Field(
        default_factory=lambda: ["segment"],  # type: ignore[arg-type]
        description="Sent as timestamp_granularities[]; word requires verbose_json.",
    )
    stream: bool = Field(default=False, description="Server-sent events (not supported yet).")

    @field_validator("model")
    @classmethod
    def _model_present(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("The 'model' field is required.")
        return value

    @field_validator("language", "prompt", mode="before")
    @classmethod
    def _optional_text(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("Optional request fields must be strings when provided.")
        return value.strip() or None

    @field_validator("response_format", mode="before")
    @classmethod
    def _format(cls, value: object) -> object:
        if value is None or value == "":
            return "json"
        if not isinstance(value, str):
            raise ValueError("The 'response_format' field must be a string.")
        if value not in TRANSCRIPTION_FORMATS:
            raise ValueError(
                "Unsupported response_format. Use json, text, srt, verbose_json, or vtt."
            )
        return value


class TranscriptionUrlRequest(TranscriptionParams):
    """The JSON form: a media URL instead of an uploaded file (a Voxhelm extension)."""

    url: str = Field(description="http(s) URL on an allowlisted host.")


class TranscriptionMultipart(TranscriptionParams):
    file: bytes = Field(description="The audio or video file.")


class TranscriptionText(BaseModel):
    text: str


class TranscriptionSegmentOut(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionWordOut(BaseModel):
    word: str
    start: float
    end: float


class TranscriptionVerbose(BaseModel):
    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegmentOut]
    words: list[TranscriptionWordOut] | None = None

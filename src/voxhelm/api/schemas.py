"""Pydantic models of API request and response bodies (the source of the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from voxhelm import boundedjson
from voxhelm.formats.openai_json import ANONYMOUS_SPEAKER
from voxhelm.stt.windows import MAX_PAUSE_MS, SpeechPauses


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


class LoadedModel(BaseModel):
    backend: str
    model: str
    idle_seconds: float = Field(description="Seconds since its last use; 0 while in use.")
    pinned: bool = Field(description="Never unloaded for idleness (a default model).")


class LivenessResponse(BaseModel):
    """All that a caller without a token learns: whether this process serves."""

    status: Literal["ok", "degraded"] = Field(
        description="degraded (with 503): the default speech-to-text engine cannot load."
    )


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    stt: EngineStatus
    models: list[LoadedModel] = Field(
        default_factory=list, description="STT models loaded in the answering process."
    )


TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
DIARIZED_FORMAT = "diarized_json"
MAX_HOTWORDS = 50
MAX_HOTWORD_CHARS = 64
MAX_KNOWN_SPEAKERS = 4  # OpenAI's limit
MAX_SPEAKER_NAME_CHARS = 64
DEFAULT_PAUSES = SpeechPauses()


def optional_text(value: object) -> object:
    """An optional string field: stripped, blank = None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("Optional request fields must be strings when provided.")
    return value.strip() or None


class AudioParams(BaseModel):
    """Fields shared by transcriptions and translations. A field no endpoint knows is
    refused (400 naming it), never ignored."""

    model_config = ConfigDict(extra="forbid")
    formats: ClassVar[tuple[str, ...]] = TRANSCRIPTION_FORMATS

    model: str = Field(description="A model id from /v1/models, or an alias such as whisper-1.")
    prompt: str | None = Field(default=None, description="Text to guide spelling and style.")
    response_format: str = Field(default="json", description="json, text, srt, verbose_json, vtt")
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    hotwords: list[str] = Field(
        default_factory=list,
        description="Words and names to favour (a Voxhelm extension): a comma-separated "
        "string or a list, added to VOXHELM_STT_HOTWORDS.",
    )

    @field_validator("hotwords", mode="before")
    @classmethod
    def _hotwords(cls, value: object) -> object:
        if value is None or value == "":
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("'hotwords' must be a comma-separated string or a list of strings.")
        parts = (part.strip() for entry in value for part in entry.split(","))
        words = list(dict.fromkeys(part for part in parts if part))
        if len(words) > MAX_HOTWORDS or any(len(w) > MAX_HOTWORD_CHARS for w in words):
            raise ValueError(
                f"'hotwords' takes at most {MAX_HOTWORDS} entries of {MAX_HOTWORD_CHARS} "
                "characters each."
            )
        return words

    @field_validator("model")
    @classmethod
    def _model_present(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("The 'model' field is required.")
        return value

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt(cls, value: object) -> object:
        return optional_text(value)

    @field_validator("response_format", mode="before")
    @classmethod
    def _format(cls, value: object) -> object:
        if value is None or value == "":
            return "json"
        if not isinstance(value, str):
            raise ValueError("The 'response_format' field must be a string.")
        if value not in cls.formats:
            *first, last = cls.formats
            raise ValueError(f"Unsupported response_format. Use {', '.join(first)}, or {last}.")
        return value


class ServerVad(BaseModel):
    """OpenAI's ``server_vad`` chunking: where Voxhelm may cut long audio into windows.

    In multipart, sent as ``chunking_strategy[type]=server_vad``,
    ``chunking_strategy[threshold]=0.6``, ... (as the official clients send an object), or as
    one field holding the object as JSON text."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["server_vad"]
    threshold: float = Field(
        default=DEFAULT_PAUSES.threshold,
        ge=0.0,
        le=1.0,
        description="Silero VAD's speech probability at which a 32 ms frame counts as speech "
        "(speech ends below threshold - 0.15); higher needs clearer speech.",
    )
    silence_duration_ms: int = Field(
        default=DEFAULT_PAUSES.silence_ms,
        ge=0,
        le=MAX_PAUSE_MS,
        description="The shortest quiet stretch a cut may sit in.",
    )
    prefix_padding_ms: int = Field(
        default=DEFAULT_PAUSES.prefix_padding_ms,
        ge=0,
        le=MAX_PAUSE_MS,
        description="Audio kept before the speech that follows a cut (all of a shorter "
        "quiet stretch).",
    )

    def pauses(self) -> SpeechPauses:
        """These rules as the window cutter takes them."""
        return SpeechPauses(
            threshold=self.threshold,
            silence_ms=self.silence_duration_ms,
            prefix_padding_ms=self.prefix_padding_ms,
        )

    @field_validator("threshold", "silence_duration_ms", "prefix_padding_ms", mode="before")
    @classmethod
    def _no_boolean(cls, value: object) -> object:
        if isinstance(value, bool):  # pydantic would read true as 1
            raise ValueError("a number, not a boolean")
        return value


SERVER_VAD_KEYS = ", ".join(ServerVad.model_fields)


def server_vad(value: object) -> ServerVad:
    """``value`` (an object, or its JSON text) as :class:`ServerVad`; ValueError naming the
    key that is wrong."""
    if isinstance(value, str):
        try:
            value = boundedjson.decode(value, subject="chunking_strategy")
        except ValueError:
            raise ValueError("chunking_strategy must be auto or a server_vad object.") from None
    if not isinstance(value, dict):
        raise ValueError("chunking_strategy must be auto or a server_vad object.")
    try:
        return ServerVad.model_validate(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise ValueError(_server_vad_problem(key, error["type"])) from None


def _server_vad_problem(key: str, kind: str) -> str:
    if kind == "extra_forbidden":
        return f"chunking_strategy has no key '{key}'; server_vad takes {SERVER_VAD_KEYS}."
    if key == "type":
        return "chunking_strategy[type] must be server_vad (or send chunking_strategy=auto)."
    if key == "threshold":
        return "chunking_strategy[threshold] must be a number from 0 to 1."
    return (
        f"chunking_strategy[{key}] must be a whole number of milliseconds from 0 to {MAX_PAUSE_MS}."
    )


class TranscriptionParams(AudioParams):
    """Fields of ``POST /v1/audio/transcriptions`` (multipart, or JSON with ``url``)."""

    formats: ClassVar[tuple[str, ...]] = (*TRANSCRIPTION_FORMATS, DIARIZED_FORMAT)

    language: str | None = Field(default=None, description="ISO 639-1 code; omit to detect.")
    timestamp_granularities: list[Literal["segment", "word"]] = Field(
        default_factory=lambda: ["segment"],  # type: ignore[arg-type]
        description="Sent as timestamp_granularities[]; word requires verbose_json.",
    )
    stream: bool = Field(
        default=False,
        description="Answer text/event-stream: transcript.text.delta per segment, then "
        "transcript.text.done (response_format json or text); with diarized_json a "
        "transcript.text.delta (with segment_id) and a transcript.text.segment per segment.",
    )
    chunking_strategy: Literal["auto"] | ServerVad | None = Field(
        default=None,
        description="auto (or omitted): Voxhelm cuts long audio into windows of about 30 s "
        "at the quietest moment near each window's end. A server_vad object puts each cut in "
        "a pause that voice activity detection hears, by its parameters. Audio of one window "
        "(up to 35 s) is never cut, so then neither changes anything.",
    )
    known_speaker_names: list[str] = Field(
        default_factory=list,
        description="Sent as known_speaker_names[]: up to 4 names, one per reference; "
        "with response_format diarized_json.",
    )
    known_speaker_references: list[str] = Field(
        default_factory=list,
        description="Sent as known_speaker_references[]: a data URL "
        "(data:audio/wav;base64,...) of 2-10 s of each known speaker's voice.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        return optional_text(value)

    @field_validator("chunking_strategy", mode="before")
    @classmethod
    def _chunking(cls, value: object) -> object:
        if value is None or value == "":
            return None
        if value == "auto":
            return value
        if isinstance(value, str) and not value.lstrip().startswith("{"):
            raise ValueError("chunking_strategy must be auto or a server_vad object.")
        return server_vad(value)

    @field_validator("known_speaker_names")
    @classmethod
    def _names(cls, names: list[str]) -> list[str]:
        names = [name.strip() for name in names]
        if len(names) > MAX_KNOWN_SPEAKERS:
            raise ValueError(f"known_speaker_names takes at most {MAX_KNOWN_SPEAKERS} names.")
        if any(not name or len(name) > MAX_SPEAKER_NAME_CHARS for name in names):
            raise ValueError(
                f"Each of known_speaker_names must be 1-{MAX_SPEAKER_NAME_CHARS} characters."
            )
        if len(set(names)) != len(names):
            raise ValueError("known_speaker_names must not repeat a name.")
        if any(ANONYMOUS_SPEAKER.fullmatch(name) for name in names):
            # "Speaker 2" is how an unknown voice is labelled before it becomes a letter.
            raise ValueError("known_speaker_names must not be of the form 'Speaker <n>'.")
        return names


class TranscriptionUrlRequest(TranscriptionParams):
    """The JSON form: a media URL instead of an uploaded file (a Voxhelm extension)."""

    url: str = Field(description="http(s) URL on an allowlisted host.")


class TranscriptionMultipart(TranscriptionParams):
    file: bytes = Field(description="The audio or video file.")


class TranslationParams(AudioParams):
    """Fields of ``POST /v1/audio/translations``: speech in any language to English text."""


class TranslationUrlRequest(TranslationParams):
    """The JSON form: a media URL instead of an uploaded file (a Voxhelm extension)."""

    url: str = Field(description="http(s) URL on an allowlisted host.")


class TranslationMultipart(TranslationParams):
    file: bytes = Field(description="The audio or video file.")


class TranscriptTextDelta(BaseModel):
    """A streamed event: the text of one more finished segment."""

    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str
    segment_id: str | None = Field(
        default=None, description="With diarized_json: the segment the text belongs to."
    )


class TranscriptTextSegment(BaseModel):
    """A streamed event of diarized_json: one segment with its speaker."""

    type: Literal["transcript.text.segment"] = "transcript.text.segment"
    id: str
    start: float
    end: float
    text: str
    speaker: str


class TranscriptLanguage(BaseModel):
    code: str


class TranscriptTextDone(BaseModel):
    """The last streamed event: the whole text (after loop repair)."""

    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    languages: list[TranscriptLanguage] | None = None


class TranscriptionText(BaseModel):
    """The answer to response_format=json: the text alone (unlike verbose_json)."""

    model_config = ConfigDict(extra="forbid")

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


class TranscriptionDiarizedSegmentOut(BaseModel):
    type: Literal["transcript.text.segment"]
    id: str
    start: float
    end: float
    text: str
    speaker: str = Field(
        description="A known speaker's name, else A, B, ... in the order they first speak."
    )


class TranscriptionDiarized(BaseModel):
    """The answer to response_format=diarized_json."""

    task: Literal["transcribe"]
    duration: float
    text: str
    segments: list[TranscriptionDiarizedSegmentOut]


class TranscriptionVerbose(BaseModel):
    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegmentOut]
    words: list[TranscriptionWordOut] | None = None


def isoformat(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with a ``Z`` suffix; microseconds only when non-zero."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")

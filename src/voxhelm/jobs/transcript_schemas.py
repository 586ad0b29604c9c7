"""Pydantic models of a transcript's corrections and of the speaker library: the bodies of
``/v1/jobs/<id>/transcript`` and ``/v1/speakers``, and their OpenAPI schemas."""

from __future__ import annotations

import unicodedata
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

MAX_NAME_CHARS = 100
MAX_SEGMENT_CHARS = 10_000


def clean_name(value: object, field: str) -> str:
    """A speaker name on one line: whitespace collapsed, 1 to 100 characters, no control
    characters (a name goes into VTT voice tags, SRT prefixes and file-like JSON)."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string.")
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{field} must be 1 to {MAX_NAME_CHARS} characters.")
    if any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise ValueError(f"{field} must not contain control characters.")
    return name


def clean_text(value: str) -> str:
    """A segment's corrected text: line breaks become spaces (a cue is one paragraph)."""
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
        raise ValueError("text must not contain control characters.")
    return " ".join(value.split())


class SegmentCorrection(BaseModel):
    """One segment's new text and/or speaker, by its ``id`` in ``transcript.json``."""

    model_config = ConfigDict(extra="forbid")

    id: StrictInt = Field(ge=0, description="The segment's id in transcript.json.")
    text: str | None = Field(
        default=None,
        max_length=MAX_SEGMENT_CHARS,
        description="The corrected text; an empty string removes the segment's words.",
    )
    speaker: str | None = Field(default=None, description="Who speaks this segment.")

    @field_validator("text")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return None if value is None else clean_text(value)

    @field_validator("speaker")
    @classmethod
    def _speaker(cls, value: str | None) -> str | None:
        return None if value is None else clean_name(value, "speaker")


class TranscriptPatch(BaseModel):
    """``PATCH /v1/jobs/<id>/transcript``: rename speakers and correct segments.

    ``speakers`` maps a speaker label as the transcript shows it now (``Speaker 1``) to its
    new name (``Anna``); ``segments`` corrects single segments. Renames apply first, then the
    segments. Unknown fields, labels and ids are refused.
    """

    model_config = ConfigDict(extra="forbid")

    speakers: dict[str, str] = Field(default_factory=dict, max_length=100)
    segments: list[SegmentCorrection] = Field(default_factory=list, max_length=10_000)

    @field_validator("speakers")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        return {label: clean_name(name, f"speakers.{label}") for label, name in value.items()}


class TranscriptSegment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    speaker: str | None = None


class TranscriptOut(BaseModel):
    """A job's transcript as it stands (``revision`` 0 is the machine's, unchanged)."""

    object: Literal["transcript"] = "transcript"
    job_id: str
    revision: int = Field(description="How many corrections were saved; 0: none.")
    edited_at: str | None = None
    original: bool = Field(description="True: this is the machine's transcript, as it was.")
    language: str | None = None
    text: str
    speakers: list[str] = Field(description="The speaker labels, in the order they speak.")
    segments: list[TranscriptSegment]


class SpeakerSave(BaseModel):
    """``POST /v1/speakers``: save ``speaker`` of job ``job_id`` as a known voice.

    ``speaker`` is a label of the job's transcript (after renames: ``Anna``); ``name`` is the
    library name, ``speaker`` by default. Saving a name again replaces its voice.
    """

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(description="A succeeded transcription job of yours.")
    speaker: str
    name: str | None = None

    @field_validator("speaker")
    @classmethod
    def _speaker(cls, value: str) -> str:
        return clean_name(value, "speaker")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        return None if value is None else clean_name(value, "name")


class LibrarySpeakerOut(BaseModel):
    id: str
    object: Literal["speaker"] = "speaker"
    name: str
    embedding_model: str
    speech_seconds: float = Field(description="Seconds of the job's audio the voice is from.")
    source_job_id: str | None = None
    created_at: str
    updated_at: str


class LibrarySpeakerList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LibrarySpeakerOut]


class LibrarySpeakerDeleted(BaseModel):
    id: str
    object: Literal["speaker.deleted"] = "speaker.deleted"
    deleted: bool

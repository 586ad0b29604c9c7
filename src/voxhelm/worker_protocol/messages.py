"""The remote pull-worker protocol: every request and response body, defined once.

The server (``voxhelm.workers.views``) validates requests with these models and builds its
answers with them; ``voxhelm-remote-worker`` builds its requests and reads the answers with
the same models. Framework-free: importing this module never imports Django.

Validation failures carry the reference's exact messages (the error type ``voxhelm_exact``
is what ``voxhelm.api.validation.parse`` passes through verbatim). Every string and list a
worker sends is bounded (``voxhelm.worker_protocol.limits``): over a limit is a 400, not a value
cut short.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from voxhelm.batch.sink import (
    DECODING,
    DIARIZING,
    DOWNLOADING,
    ENCODING,
    RENDERING,
    SYNTHESIZING,
    TRANSCRIBING,
)
from voxhelm.worker_protocol.limits import (
    MAX_ARTIFACT_CHARS,
    MAX_ARTIFACTS,
    MAX_CONCURRENCY,
    MAX_ERROR_CHARS,
    MAX_ERROR_CODE_CHARS,
    MAX_HOSTNAME_CHARS,
    MAX_JOB_ID_CHARS,
    MAX_PHASE_CHARS,
    MAX_PROGRESS_CHARS,
    MAX_RESULT_TEXT_CHARS,
    MAX_RUNNING_JOBS,
    MAX_WORKER_ID_CHARS,
    bounded,
    exact,
    lease_token,
    name,
    name_list,
    positive_int,
)
from voxhelm.worker_protocol.metadata import clean_number

WORKER_HEARTBEAT_PATH = "/v1/internal/workers/heartbeat"
CLAIM_PATH = "/v1/internal/work/claim"


def job_heartbeat_path(job_id: str) -> str:
    return f"/v1/internal/work/{job_id}/heartbeat"


def complete_path(job_id: str) -> str:
    return f"/v1/internal/work/{job_id}/complete"


def fail_path(job_id: str) -> str:
    return f"/v1/internal/work/{job_id}/fail"


# Artifact kinds a remote completion may report besides the transcript kinds.
SOURCE_KIND = "source"
EXTRACTED_AUDIO_KIND = "extracted_audio"
SPEAKERS_KIND = "transcript_speakers"
SPEAKERS_NAME = "transcript.speakers.json"
SPEAKERS_FORMAT = "speakers"
JSON_TYPE = "application/json"


def _object(value: object, message: str, model: type = dict) -> object:
    """An object field (a dict, or already a ``model``): absent is empty, else a 400."""
    if value is None:
        return {}
    if not isinstance(value, dict | model):
        raise exact(message)
    return value


class _Request(BaseModel):
    # Unknown keys (a newer worker's ``version``...) are ignored, as the reference does.
    model_config = ConfigDict(extra="ignore")

    worker_id: str | None = None

    @field_validator("worker_id", mode="before")
    @classmethod
    def _worker_id(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, str):
            raise exact("Optional worker fields must be strings when provided.")
        return name(value.strip(), "worker_id", MAX_WORKER_ID_CHARS)


class _LeasedRequest(_Request):
    """A request about one claimed job: it proves the claim with the lease token."""

    lease_token: str

    @field_validator("lease_token", mode="before")
    @classmethod
    def _token(cls, value: object) -> str:
        return lease_token(value)


# -- capabilities ------------------------------------------------------------------------------


class DiarizationCapabilities(BaseModel):
    model_config = ConfigDict(extra="ignore")

    anonymous: bool = False
    known_speaker: bool = False
    embedding_models: list[str] = Field(default_factory=list)

    @field_validator("anonymous", "known_speaker", mode="before")
    @classmethod
    def _flag(cls, value: object) -> bool:
        return value is True

    @field_validator("embedding_models", mode="before")
    @classmethod
    def _names(cls, value: object) -> list[str]:
        return name_list(value, "capabilities.diarization.embedding_models")


class Capabilities(BaseModel):
    """What a worker can run. Lists hold concrete names (never ``auto``)."""

    model_config = ConfigDict(extra="ignore")

    job_types: list[str] = Field(default_factory=list)
    backends: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    output_formats: list[str] = Field(default_factory=list)
    diarization: DiarizationCapabilities = Field(default_factory=DiarizationCapabilities)
    voices: list[str] = Field(default_factory=list, description="Piper voices (synthesize).")

    @field_validator("job_types", "backends", "models", "output_formats", "voices", mode="before")
    @classmethod
    def _names(cls, value: object, info: Any) -> list[str]:
        return name_list(value, f"capabilities.{info.field_name}")

    @field_validator("diarization", mode="before")
    @classmethod
    def _diarization(cls, value: object) -> object:
        return _object(
            value, "capabilities.diarization must be an object.", DiarizationCapabilities
        )


# -- POST /v1/internal/workers/heartbeat -------------------------------------------------------


class WorkerHeartbeat(_Request):
    hostname: str = ""
    concurrency: int = 1
    running_job_ids: list[str] = Field(default_factory=list)
    capabilities: Capabilities = Field(default_factory=Capabilities)

    @field_validator("hostname", mode="before")
    @classmethod
    def _hostname(cls, value: object) -> object:
        if value is not None and not isinstance(value, str):
            raise exact("Optional worker fields must be strings when provided.")
        return name((value or "").strip(), "hostname", MAX_HOSTNAME_CHARS)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: object) -> int:
        return 1 if value is None else positive_int(value, "concurrency", MAX_CONCURRENCY)

    @field_validator("running_job_ids", mode="before")
    @classmethod
    def _running(cls, value: object) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise exact("running_job_ids must be a list.")
        if len(value) > MAX_RUNNING_JOBS:
            raise exact(f"running_job_ids must have at most {MAX_RUNNING_JOBS} entries.")
        if not all(isinstance(item, str) for item in value):
            raise exact("running_job_ids entries must be strings.")
        ids = (item.strip() for item in value)
        return [name(item, "running_job_ids", MAX_JOB_ID_CHARS) for item in ids if item]

    @field_validator("capabilities", mode="before")
    @classmethod
    def _capabilities(cls, value: object) -> object:
        return _object(value, "capabilities must be an object.", Capabilities)


class WorkerHeartbeatResponse(BaseModel):
    worker_id: str
    enabled: bool
    server_time: str
    poll_after_seconds: int


# -- POST /v1/internal/work/claim --------------------------------------------------------------


class ClaimRequest(_Request):
    max_jobs: int = 1
    capabilities: Capabilities

    @field_validator("max_jobs", mode="before")
    @classmethod
    def _max_jobs(cls, value: object) -> int:
        return 1 if value is None else positive_int(value, "max_jobs", MAX_CONCURRENCY)

    @field_validator("capabilities", mode="before")
    @classmethod
    def _capabilities(cls, value: object) -> object:
        if value is None:
            raise exact("capabilities must be an object.")
        return _object(value, "capabilities must be an object.", Capabilities)


class StagedArtifact(BaseModel):
    """Where the staged upload lives: the worker reads it from the shared store itself."""

    storage_backend: str
    storage_key: str
    storage_identity: dict[str, Any]
    sha256: str = Field(description="Verified while the worker reads the object.")


class ClaimedUrlInput(BaseModel):
    kind: Literal["url"] = "url"
    url: str


class ClaimedUploadInput(BaseModel):
    kind: Literal["upload"] = "upload"
    filename: str
    content_type: str
    size_bytes: int
    staged_artifact: StagedArtifact


class ClaimedTextInput(BaseModel):
    """A synthesis job's input: the text to speak."""

    kind: Literal["text"] = "text"
    text: str


class ClaimedOutput(BaseModel):
    formats: list[str]
    diarization: dict[str, Any] = Field(
        default_factory=dict,
        description="The normalized request; strategy is explicit when enabled (reference URLs "
        "and ranges of known speakers included).",
    )
    # Sent for synthesis jobs only.
    voice: str | None = Field(default=None, description="synthesize: the voice to speak with.")
    speed: float = Field(default=1.0, description="synthesize: the speaking rate.")


class ClaimedJob(BaseModel):
    id: str
    job_type: Literal["transcribe", "synthesize"] = "transcribe"
    attempt: int
    lease_token: str = Field(description="Plaintext, only in this response.")
    lease_expires_at: str
    backend: str = Field(description="The resolved concrete backend.")
    model: str = Field(description="The resolved concrete model.")
    requested_backend: str
    requested_model: str
    language: str | None
    prompt: str | None = None
    input: ClaimedUrlInput | ClaimedUploadInput | ClaimedTextInput = Field(discriminator="kind")
    output: ClaimedOutput
    artifact_prefix: str = Field(description="<prefix>/jobs/<id>/attempt-<n>/")
    checkpoint_prefix: str = Field(
        default="",
        description="<prefix>/checkpoints/<id>: where finished chunks of a long recording are "
        "kept for the next attempt; empty: none are kept.",
    )
    artifact_store: dict[str, Any] = Field(description="Identity of the store to write to.")


class ClaimResponse(BaseModel):
    job: ClaimedJob
    server_time: str | None = Field(
        default=None,
        description="When the lease was granted (server clock): with "
        "lease_expires_at it tells the worker how often to beat.",
    )


# -- POST /v1/internal/work/<id>/heartbeat -----------------------------------------------------

WORKER_PHASES = (
    DOWNLOADING,
    DECODING,
    TRANSCRIBING,
    DIARIZING,
    RENDERING,
    SYNTHESIZING,
    ENCODING,
)
"""The phases of a remote run (transcription, or synthesis): the batch core's steps, which
``Job.phase`` shows."""

PHASE_ALIASES = {
    # The reference worker's names for the same steps (it beats at once on each new one).
    "materialize_input": DOWNLOADING,
    "extract_audio": DECODING,
    "transcribe": TRANSCRIBING,
    "diarization": DIARIZING,
    "known_speaker_diarization": DIARIZING,
    "render_artifacts": RENDERING,
    "complete": RENDERING,  # its last beat: the artifacts are uploaded, completion is next
}


def worker_phase(phase: str) -> str:
    """Voxhelm's name of a phase a worker reports (the reference's names are aliases); any
    other name is a 400 listing the names taken."""
    if phase in WORKER_PHASES:
        return phase
    if phase in PHASE_ALIASES:
        return PHASE_ALIASES[phase]
    raise exact(
        f"progress.phase '{phase}' is not a phase; use one of {', '.join(WORKER_PHASES)} "
        f"(or the reference worker's {', '.join(PHASE_ALIASES)})."
    )


class Progress(BaseModel):
    """A running job's progress: ``phase`` (one of :data:`WORKER_PHASES`, or an alias of
    :data:`PHASE_ALIASES`, stored as the phase it names), ``message`` (trimmed, at most
    500), ``percent`` (0-100) and ``eta_seconds``; an unknown phase and longer text are a
    400, other keys and types are dropped."""

    model_config = ConfigDict(extra="ignore")

    phase: str | None = None
    message: str | None = None
    percent: int | None = None
    eta_seconds: float | None = None

    @field_validator("phase", mode="before")
    @classmethod
    def _phase(cls, value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        return worker_phase(name(value.strip(), "progress.phase", MAX_PHASE_CHARS))

    @field_validator("message", mode="before")
    @classmethod
    def _message(cls, value: object) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return None
        return bounded(value.strip(), "progress.message", MAX_PROGRESS_CHARS)

    @field_validator("percent", mode="before")
    @classmethod
    def _percent(cls, value: object) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not math.isfinite(value):
            return None
        return max(0, min(100, int(value)))

    @field_validator("eta_seconds", mode="before")
    @classmethod
    def _eta(cls, value: object) -> float | None:
        seconds = clean_number(value)  # finite, not negative
        return None if seconds is None else round(float(seconds), 1)


class JobHeartbeat(_LeasedRequest):
    progress: Progress = Field(default_factory=Progress)

    @field_validator("progress", mode="before")
    @classmethod
    def _progress(cls, value: object) -> object:
        return _object(value, "progress must be an object.", Progress)


class JobHeartbeatResponse(BaseModel):
    job_id: str
    lease_expires_at: str
    server_time: str


# -- POST /v1/internal/work/<id>/complete ------------------------------------------------------


def _manifest_text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise exact(f"Artifact {field} must be a non-empty string.")
    return name(value.strip(), f"Artifact {field}", MAX_ARTIFACT_CHARS[field])


class ManifestArtifact(BaseModel):
    """One object the worker wrote under its attempt prefix."""

    model_config = ConfigDict(extra="ignore")

    name: str
    kind: str
    format: str
    storage_backend: str
    storage_key: str
    content_type: str
    size_bytes: int
    sha256: str
    exposed: bool

    @field_validator(
        "name", "kind", "storage_backend", "storage_key", "content_type", mode="before"
    )
    @classmethod
    def _text(cls, value: object, info: Any) -> str:
        return _manifest_text(value, str(info.field_name))

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, value: object) -> str:
        # The source carries no format key; "" is allowed here and checked per kind later.
        if value is None:
            return ""
        if not isinstance(value, str):
            raise exact("Artifact format must be a string.")
        return name(value.strip(), "Artifact format", MAX_ARTIFACT_CHARS["format"])

    @field_validator("size_bytes", mode="before")
    @classmethod
    def _size(cls, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise exact("Artifact size_bytes must be a non-negative integer.")
        return value

    @field_validator("sha256", mode="before")
    @classmethod
    def _sha256(cls, value: object) -> str:
        text = value.strip().lower() if isinstance(value, str) else ""
        if len(text) != 64 or any(ch not in "0123456789abcdef" for ch in text):
            raise exact("Artifact sha256 must be a 64-character hex digest.")
        return text

    @field_validator("exposed", mode="before")
    @classmethod
    def _exposed(cls, value: object) -> bool:
        if not isinstance(value, bool):
            raise exact("Artifact exposed must be a boolean.")
        return value


class CompleteRequest(_LeasedRequest):
    result_text: str
    result_metadata: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[ManifestArtifact]

    @field_validator("result_text", mode="before")
    @classmethod
    def _text(cls, value: object) -> str:
        if not isinstance(value, str):
            raise exact("result_text must be a string.")
        return bounded(value, "result_text", MAX_RESULT_TEXT_CHARS)

    @field_validator("result_metadata", mode="before")
    @classmethod
    def _metadata(cls, value: object) -> object:
        return _object(value, "result_metadata must be an object.")

    @field_validator("artifacts", mode="before")
    @classmethod
    def _artifacts(cls, value: object) -> object:
        if not isinstance(value, list) or not value:
            raise exact("artifacts must be a non-empty list.")
        if len(value) > MAX_ARTIFACTS:
            raise exact(f"artifacts must have at most {MAX_ARTIFACTS} entries.")
        if not all(isinstance(item, dict | ManifestArtifact) for item in value):
            raise exact("artifacts entries must be objects.")
        return value


# -- POST /v1/internal/work/<id>/fail ----------------------------------------------------------


class FailRequest(_LeasedRequest):
    retryable: bool
    error_detail: str
    error_code: str | None = Field(
        default=None, description="A stable machine name such as unsupported_media (optional)."
    )

    @field_validator("retryable", mode="before")
    @classmethod
    def _retryable(cls, value: object) -> bool:
        if not isinstance(value, bool):
            raise exact("retryable must be a boolean.")
        return value

    @field_validator("error_detail", mode="before")
    @classmethod
    def _detail(cls, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise exact("error_detail must be a non-empty string.")
        return bounded(value.strip(), "error_detail", MAX_ERROR_CHARS)

    @field_validator("error_code", mode="before")
    @classmethod
    def _code(cls, value: object) -> str | None:
        # An identifier is kept; any other short value is dropped rather than refused.
        if not isinstance(value, str):
            return None
        bounded(value, "error_code", MAX_ERROR_CODE_CHARS)
        return value.lower() if value.isidentifier() else None

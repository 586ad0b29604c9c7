"""Pydantic models of the job API: the submission (validated with the reference's messages)
and the job representation. They are also the OpenAPI document's schemas."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationInfo,
    field_validator,
    model_validator,
)

from voxhelm.api.schemas import isoformat
from voxhelm.api.validation import exact
from voxhelm.batch.request import (
    DiarizationRequest,
    JobOutputs,
    JobRequest,
    UploadSource,
    UrlSource,
)
from voxhelm.formats import ARTIFACT_FORMATS, normalize_format_key
from voxhelm.jobs.diarization_options import Diarization, validate_diarization
from voxhelm.jobs.models import JobState, JobType

if TYPE_CHECKING:
    from voxhelm.jobs.models import Job

JOB_TYPES = frozenset(JobType.values)
DEFAULT_FORMATS = ("text", "json")
UNSUPPORTED_FORMAT = "Unsupported output format. Use text, json, vtt, srt, dote, or podlove."


def _optional_text(value: object, info: ValidationInfo) -> str | None:
    """A string field stripped; blank or null reads as not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise exact(f"{info.field_name} must be a string.")
    return value.strip() or None


OptionalText = Annotated[str | None, BeforeValidator(_optional_text)]


def _absolute_url(value: str, schemes: tuple[str, ...] = ()) -> bool:
    """Whether ``value`` has a scheme (one of ``schemes`` when given) and a host."""
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. "http://[name]/": urlsplit's own message is not for clients
        return False
    return bool(parts.scheme and parts.netloc) and (not schemes or parts.scheme in schemes)


class UrlInput(BaseModel):
    """Media to fetch through the guarded fetcher (audio or video, allowlisted host)."""

    kind: Literal["url"] = "url"
    url: str = Field(description="Absolute http(s) URL on an allowlisted host.")


class UploadInput(BaseModel):
    """Media staged with ``POST /v1/uploads`` by the same producer."""

    kind: Literal["upload"] = "upload"
    upload_id: str = Field(description="The id returned by POST /v1/uploads.")


class JobOutput(BaseModel):
    formats: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FORMATS),
        description="Any of text, json, vtt (alias webvtt), srt, dote, podlove.",
    )


class JobCommon(BaseModel):
    """The fields every job type shares, validated with the reference's messages (the job
    API parses a submission's ``job_type`` alone with it first, to pick the model)."""

    model_config = ConfigDict(extra="ignore")

    job_type: str
    priority: Literal["high", "normal", "low"] = "normal"
    lane: Literal["batch"] = "batch"
    backend: Literal["auto"] = "auto"
    language: OptionalText = Field(default=None, description="ISO 639-1 code; omit to detect.")
    prompt: OptionalText = None
    task_ref: OptionalText = Field(
        default=None, description="The producer's reference; resubmitting it is idempotent."
    )
    context: dict[str, Any] | None = Field(
        default=None, description="Stored with the job, never echoed."
    )
    callback_url: OptionalText = Field(
        default=None,
        description="POSTed the job (signed) when it ends; see the webhook documentation.",
    )
    model: str = "auto"

    @model_validator(mode="before")
    @classmethod
    def _absent_input(cls, data: object) -> object:
        # Every job type requires ``input``; a missing one reaches its validator as None,
        # which answers with the reference's message instead of pydantic's.
        if isinstance(data, dict) and "input" not in data:
            return {**data, "input": None}
        return data

    @field_validator("job_type", mode="before")
    @classmethod
    def _job_type(cls, value: object) -> object:
        if not isinstance(value, str):
            raise exact("job_type must be a string.")
        if value.strip() not in JOB_TYPES:
            raise exact(
                f"Unsupported job_type '{value}'. Accepted values: {', '.join(sorted(JOB_TYPES))}."
            )
        return value.strip()

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> object:
        if value is None:
            return "normal"
        if not isinstance(value, str) or value.strip().lower() not in ("high", "normal", "low"):
            raise exact("priority must be one of: high, normal, low.")
        return value.strip().lower()

    @field_validator("lane", mode="before")
    @classmethod
    def _lane(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and value.strip() in ("", "batch")):
            return "batch"
        raise exact("Only lane=batch is supported for jobs.")

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: object, info: ValidationInfo) -> object:
        if _optional_text(value, info) in (None, "auto"):
            return "auto"
        raise exact("Only backend=auto is supported.")

    @field_validator("task_ref")
    @classmethod
    def _task_ref(cls, value: str | None) -> str | None:
        if value is not None and len(value) > 255:
            raise exact("task_ref must be at most 255 characters.")
        return value

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, value: object) -> object:
        if value is not None and not isinstance(value, dict):
            raise exact("context must be an object.")
        return value

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is not None and not _absolute_url(value, ("http", "https")):
            raise exact("callback_url must be an absolute http(s) URL.")
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: object) -> object:
        if not isinstance(value, str):
            raise exact("model must be a string.")
        return value.strip() or "auto"


def parse_output(
    value: object,
    *,
    allowed: frozenset[str],
    normalize: Callable[[str], str],
    default: tuple[str, ...],
    unsupported: str,
) -> dict[str, list[str]]:
    """``{"formats": [...]}`` from a submission's ``output``: normalized keys, each allowed,
    duplicates dropped in order; ``default`` when the list is absent."""
    if value is None:
        return {"formats": list(default)}
    if not isinstance(value, dict):
        raise exact("output must be an object.")
    formats = value.get("formats")
    if formats is None:
        return {"formats": list(default)}
    if not isinstance(formats, list) or not formats:
        raise exact("output.formats must be a non-empty list.")
    keys: list[str] = []
    for entry in formats:
        key = normalize(entry) if isinstance(entry, str) else ""
        if key not in allowed:
            raise exact(unsupported)
        if key not in keys:
            keys.append(key)
    return {"formats": keys}


def _uuid_text(value: object) -> str | None:
    """``value`` as a canonical UUID string, or None when it is not one."""
    try:
        return str(UUID(value.strip())) if isinstance(value, str) else None
    except ValueError:
        return None


class JobSubmission(JobCommon):
    """``POST /v1/jobs`` with ``job_type=transcribe``."""

    job_type: Literal["transcribe"]
    model: str = Field(default="auto", description="auto, an alias, or a configured model.")
    input: UrlInput | UploadInput = Field(discriminator="kind")
    output: JobOutput = Field(default_factory=JobOutput)
    diarization: Annotated[
        DiarizationRequest,
        PlainValidator(validate_diarization, json_schema_input_type=Diarization),
    ] = Field(default_factory=DiarizationRequest)

    @field_validator("input", mode="before")
    @classmethod
    def _input(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise exact("input must be an object.")
        if value.get("kind") == "upload":
            upload_id = value.get("upload_id")
            if upload_id is None or (isinstance(upload_id, str) and not upload_id.strip()):
                raise exact("Batch upload transcription requires input.upload_id.")
            if (canonical := _uuid_text(upload_id)) is None:
                raise exact("input.upload_id must be a UUID string.")
            return {"kind": "upload", "upload_id": canonical}
        if value.get("kind") != "url":
            raise exact("Transcribe jobs support input.kind=url or input.kind=upload.")
        url = value.get("url")
        if not isinstance(url, str) or not url.strip():
            raise exact("Batch transcription requires input.url.")
        if not _absolute_url(url.strip()):
            raise exact("input.url must be an absolute URL.")
        return {"kind": "url", "url": url.strip()}

    @field_validator("output", mode="before")
    @classmethod
    def _output(cls, value: object) -> object:
        return parse_output(
            value,
            allowed=frozenset(ARTIFACT_FORMATS),
            normalize=normalize_format_key,
            default=DEFAULT_FORMATS,
            unsupported=UNSUPPORTED_FORMAT,
        )

    def to_request(self) -> JobRequest:
        """The typed request (``voxhelm.jobs.submit.submit_request`` checks the model and
        normalizes the language)."""
        source: UrlSource | UploadSource
        if isinstance(self.input, UrlInput):
            source = UrlSource(self.input.url)
        else:
            source = UploadSource(upload_id=self.input.upload_id)
        outputs = JobOutputs(tuple(self.output.formats), self.diarization)
        return JobRequest(
            source, outputs, self.model, self.language, self.prompt, self.callback_url or ""
        )


# -- the job representation ------------------------------------------------------------------


class JobProgress(BaseModel):
    percent: int = Field(ge=0, le=100)
    phase: str | None = Field(
        description="downloading, decoding, transcribing, diarizing, rendering, synthesizing or "
        "encoding; null when idle."
    )
    eta_seconds: float | None = Field(
        default=None,
        description="Estimated seconds until transcription is done, from the pace of the "
        "chunks finished so far; null when unknown.",
    )


class JobError(BaseModel):
    message: str
    code: str


class JobResult(BaseModel):
    artifacts: dict[str, str] = Field(
        description="Format key → relative URL of the artifact (GET it with the same token)."
    )
    metadata: dict[str, Any]
    text: str | None = Field(default=None, description="Omitted when empty.")


class WebhookAttempt(BaseModel):
    attempt: int
    at: str
    status: int | None = None
    error: str | None = None
    duration_ms: int


WebhookState = Literal["waiting", "pending", "delivered", "failed"]


class JobWebhook(BaseModel):
    url: str
    state: WebhookState = Field(description="waiting: the job has not ended yet.")
    attempts: list[WebhookAttempt]


class JobOut(BaseModel):
    """A job as producers see it. ``result`` only when succeeded, ``error`` only when failed."""

    id: str
    object: Literal["job"] = "job"
    state: Literal["queued", "running", "succeeded", "failed", "canceled"]
    job_type: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    task_ref: str | None
    progress: JobProgress
    result: JobResult | None = None
    error: JobError | None = None
    webhook: JobWebhook | None = None


class JobList(BaseModel):
    """A page of the producer's jobs (``GET /v1/jobs``), newest first, as OpenAI lists are."""

    object: Literal["list"] = "list"
    data: list[JobOut]
    first_id: str | None = Field(description="The first job's id; null on an empty page.")
    last_id: str | None = Field(
        description="The last job's id: pass it as 'after' for the next page."
    )
    has_more: bool
    next_cursor: str | None = Field(
        description="Also accepted as 'after' for the next page, and still valid when the "
        "job named by last_id has been deleted meanwhile; null on the last page."
    )


class JobDeleted(BaseModel):
    """The answer to ``DELETE /v1/jobs/<id>``, as OpenAI's deletions answer."""

    id: str
    object: Literal["job.deleted"] = "job.deleted"
    deleted: bool


def _exposed_artifacts(job: Job) -> list[Any]:
    """The job's downloadable artifacts by name; from a list's prefetch when it has one."""
    prefetched = getattr(job, "_prefetched_objects_cache", {}).get("artifacts")
    if prefetched is not None:
        return sorted((a for a in prefetched if a.exposed), key=lambda a: a.name)
    return list(job.artifacts.exposed().order_by("name"))


def represent(job: Job) -> dict[str, Any]:
    """The JSON body for ``job`` (``GET /v1/jobs/<id>`` and the submit/cancel answers)."""
    fields: dict[str, Any] = {
        "id": str(job.pk),
        "object": "job",
        "state": job.state,
        "job_type": job.job_type,
        "created_at": isoformat(job.created_at),
        "started_at": isoformat(job.started_at),
        "finished_at": isoformat(job.finished_at),
        "task_ref": job.task_ref or None,
        "progress": JobProgress(
            percent=job.progress,
            phase=job.phase or None,
            eta_seconds=job.eta_seconds if job.state == JobState.RUNNING else None,
        ),
    }
    if job.state == JobState.SUCCEEDED:
        artifacts = {
            artifact.format: f"/v1/jobs/{job.pk}/artifacts/{artifact.name}"
            for artifact in _exposed_artifacts(job)
        }
        result = JobResult(artifacts=artifacts, metadata=job.result_metadata)
        if job.result_text:
            result.text = job.result_text
        fields["result"] = result
    elif job.state == JobState.FAILED:
        fields["error"] = JobError(message=job.error_detail, code=job.error_code or "job_failed")
    if job.callback_url:
        fields["webhook"] = JobWebhook(
            url=job.callback_url,
            state=cast(WebhookState, job.webhook_state or "waiting"),
            attempts=[WebhookAttempt(**attempt) for attempt in job.webhook_attempts],
        )
    return JobOut(**fields).model_dump(mode="json", exclude_unset=True)

"""A job's enumerations: states, phases, types, execution and dispatch modes, priorities."""

from __future__ import annotations

from typing import Any

from django.db import models

from voxhelm.batch import sink
from voxhelm.config import LOCAL_EXECUTION, REMOTE_EXECUTION


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)
LEASE_EXHAUSTED = "Remote worker lease expired after maximum attempts."
NOT_REUSABLE_STATES = (JobState.FAILED, JobState.CANCELED)
"""States a task_ref resubmission never maps to: the producer asks for a fresh run."""


class JobPhase(models.TextChoices):
    NONE = ""
    DOWNLOADING = sink.DOWNLOADING
    DECODING = sink.DECODING
    TRANSCRIBING = sink.TRANSCRIBING
    DIARIZING = sink.DIARIZING
    RENDERING = sink.RENDERING
    SYNTHESIZING = sink.SYNTHESIZING
    ENCODING = sink.ENCODING


class JobType(models.TextChoices):
    TRANSCRIBE = "transcribe"
    SYNTHESIZE = "synthesize"


class ExecutionMode(models.TextChoices):
    """Who runs a job: the local workers, or a remote pull worker that leases it."""

    LOCAL = LOCAL_EXECUTION
    REMOTE = REMOTE_EXECUTION


class DispatchMode(models.TextChoices):
    """How a job came in: a batch submission, or a console run that ran at once."""

    BATCH = "batch"
    SYNC = "sync"


LEASE_RESET: dict[str, Any] = {
    "assigned_worker_id": "",
    "worker_identity": "",
    "lease_token_hash": "",
    "lease_expires_at": None,
    "leased_artifact_prefix": "",
    "leased_artifact_store": {},
    "heartbeat_at": None,
    "worker_progress": {},
    "progress": 0,
    "phase": JobPhase.NONE,
}
"""What ending a remote attempt resets (a re-queue, a failure at claim time)."""


class JobPriority(models.TextChoices):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

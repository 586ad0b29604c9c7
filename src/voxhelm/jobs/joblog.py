"""One structured log line per finished job attempt (logger ``voxhelm.jobs``).

``log_outcome(job)`` is meant to be called where an attempt ends (``pipeline.finish`` after
``mark_succeeded`` / ``mark_failed``, the remote-worker completion views, the sweeper's
requeue or failure), with the job's fields as they were just written. The line carries ids,
the producer label, the attempt, timings and the engine, never the prompt, the transcript
or any token.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from voxhelm.jobs.models import Job
from voxhelm.logformat import log_event

logger = logging.getLogger("voxhelm.jobs")


def _milliseconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


def outcome_fields(job: Job) -> dict[str, Any]:
    """The fields of a job's outcome line (None values are left out of the line)."""
    metadata = job.result_metadata if isinstance(job.result_metadata, dict) else {}
    return {
        "job_id": str(job.pk),
        "producer": job.producer,
        "task_ref": job.task_ref or None,
        "job_type": job.job_type,
        "state": job.state,
        "attempt": job.attempt_count,
        "execution_mode": job.execution_mode,
        "worker": job.assigned_worker_id or job.worker_identity or None,
        "error_code": job.error_code or None,
        "queued_ms": _milliseconds(job.created_at, job.started_at),
        "run_ms": _milliseconds(job.started_at, job.finished_at),
        "audio_seconds": metadata.get("duration_seconds"),
        "processing_seconds": metadata.get("processing_seconds"),
        "backend": metadata.get("backend"),
        "model": metadata.get("model"),
    }


def log_outcome(job: Job, level: int = logging.INFO) -> None:
    """Log how a job attempt ended, as one line (JSON with ``VOXHELM_LOG_FORMAT=json``)."""
    log_event(logger, f"job {job.pk} {job.state}", outcome_fields(job), level)

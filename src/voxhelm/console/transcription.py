"""Console transcriptions that run at once, recorded as ``dispatch_mode=sync`` jobs.

The operator's page waits while the audio is decoded and transcribed, as in the reference;
the run is also a ``Job`` row with the same artifacts as a batch job (the source, and every
requested format), so it appears in the job list, has a transcript page and downloads.

The row is an attempt like a batch job's: ``running`` with ``attempt_count=1`` of
``max_attempts=1``, this process as its worker, and a heartbeat. If the process dies
mid-run, the batch sweeper finds the silent job and fails it (``worker_lost``) instead of
leaving it running forever; it is never re-queued, since no task could run it.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils import timezone

from voxhelm import audio, capacity
from voxhelm.config import Config
from voxhelm.errors import VoxhelmError
from voxhelm.formats import ARTIFACT_FORMATS, render_artifact
from voxhelm.jobs.heartbeat import Heartbeat
from voxhelm.jobs.models import DispatchMode, ExecutionMode, Job, JobPhase, JobState, JobType
from voxhelm.jobs.pipeline import EXTRACTED_AUDIO, Attempt, JobAbandoned
from voxhelm.jobs.submit import request_fingerprint
from voxhelm.jobs.worker import worker_identity
from voxhelm.stt import windows
from voxhelm.stt.base import TranscriptionRequest

logger = logging.getLogger("voxhelm.console")

# Percent reached when each step starts, as in the batch pipeline.
STORE_SOURCE = 5
TRANSCRIBE = 15
RENDER = 90


@dataclass(frozen=True)
class Source:
    """Media on local disk, decoded, with what the job records about where it came from."""

    path: Path
    decoded: audio.Audio
    has_video: bool
    name: str  # the file name shown to the operator
    content_type: str
    input_data: dict[str, Any]  # {"kind": "url", "url"} or {"kind": "upload", ...}


@dataclass(frozen=True)
class Options:
    model: str
    language: str  # a Whisper code, or "" to detect
    formats: list[str]
    submission_type: str  # audio_url | upload


def start_job(producer: str, source: Source, options: Options, config: Config) -> Job:
    """The ``running`` sync job row of this process for ``source``."""
    now = timezone.now()
    output = {"formats": options.formats, "diarization": {"enabled": False}}
    return Job.objects.create(
        producer=producer,
        request_fingerprint=request_fingerprint(
            {
                "job_type": JobType.TRANSCRIBE.value,
                "model": options.model,
                "language": options.language,
                "input": source.input_data,
                "formats": sorted(options.formats),
            }
        ),
        dispatch_mode=DispatchMode.SYNC,
        # As the reference records it. It also keeps the row in the sweeper's view, which
        # only recovers local jobs; with max_attempts=1 it fails a dead run, never re-queues.
        execution_mode=ExecutionMode.LOCAL,
        model=options.model,
        language=options.language,
        input_data=source.input_data,
        output_data=output,
        context_data={"source_name": source.name, "submission_type": options.submission_type},
        state=JobState.RUNNING,
        phase=JobPhase.DECODING,
        attempt_count=1,
        max_attempts=1,
        worker_identity=worker_identity(),
        heartbeat_at=now,
        started_at=now,
    )


def run(job: Job, source: Source, config: Config) -> Job:
    """Transcribe ``source`` for the running ``job``; the job ends succeeded or failed.

    A domain error (bad media, busy engine) is recorded on the job and raised again for
    the page to show; any other error is recorded with an error id and raised as a
    :class:`VoxhelmError` naming that id.
    """
    with Heartbeat(job, config.execution.job_heartbeat_seconds) as heartbeat:
        attempt = Attempt(job, heartbeat, config)
        try:
            text, metadata = _transcribe(attempt, source)
        except JobAbandoned:
            raise VoxhelmError("The transcription was stopped.", code="job_abandoned") from None
        except VoxhelmError as exc:
            job.mark_failed(exc.code, exc.message)
            raise
        except Exception:
            error_id = secrets.token_hex(6)
            logger.exception("console job %s: internal error id=%s", job.pk, error_id)
            message = (
                f"The transcription failed because of an internal error (error id {error_id})."
            )
            job.mark_failed("internal_error", message)
            raise VoxhelmError(message, code="internal_error") from None
    job.mark_succeeded(text, metadata)
    return job


def _transcribe(attempt: Attempt, source: Source) -> tuple[str, dict[str, Any]]:
    job, config = attempt.job, attempt.config
    started = time.monotonic()
    attempt.put(
        f"source{source.path.suffix.lower()}",
        source.path,
        kind="source",
        format="",
        content_type=source.content_type or "application/octet-stream",
        exposed=False,
        phase=JobPhase.DECODING,
        percent=STORE_SOURCE,
    )
    if source.has_video:
        attempt.put(
            EXTRACTED_AUDIO,
            audio.wav_bytes(source.decoded),
            kind="extracted_audio",
            format="wav",
            content_type="audio/wav",
            exposed=False,
            phase=JobPhase.DECODING,
            percent=STORE_SOURCE,
        )
    attempt.checkpoint(JobPhase.TRANSCRIBING, TRANSCRIBE)
    transcript = windows.transcribe(
        source.decoded,
        job.model,
        TranscriptionRequest(language=job.language or None),
        config,
        admission=capacity.SYNC,
        on_window=lambda done, total: attempt.checkpoint(
            JobPhase.TRANSCRIBING, TRANSCRIBE + int((RENDER - TRANSCRIBE) * done / total)
        ),
    )
    formats = job.request.outputs.formats
    for index, key in enumerate(formats):
        spec = ARTIFACT_FORMATS[key]
        attempt.put(
            spec.name,
            render_artifact(transcript, key),
            kind=spec.kind,
            format=key,
            content_type=spec.content_type,
            exposed=True,
            phase=JobPhase.RENDERING,
            percent=RENDER + index * (99 - RENDER) // len(formats),
        )
    metadata = {
        "backend": transcript.backend,
        "requested_model": job.model,
        "model": transcript.model,
        "language": transcript.language or job.language or None,
        "duration_seconds": round(source.decoded.duration, 3),
        "processing_seconds": round(time.monotonic() - started, 3),
        "source_kind": source.input_data["kind"],
        "source_name": source.name,
        "source_content_type": source.content_type,
    }
    if source.input_data["kind"] == "url":
        metadata["source_url"] = source.input_data["url"]
    return transcript.text, metadata

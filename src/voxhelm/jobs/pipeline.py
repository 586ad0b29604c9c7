"""The batch transcription pipeline: one attempt of one job, in the worker's thread.

fetch the URL (allowlist checked again) → keep the source as an unexposed artifact →
decode (video: keep the extracted audio too) → transcribe → render every requested format
→ succeeded. Progress and phase are written at each step; each write is also a checkpoint
where a canceled or taken-over attempt stops, before it writes anything more. Any failure
becomes ``failed`` with a client-safe message: a domain error's own message, or a generic
one naming an error id that is logged with the traceback.
"""

from __future__ import annotations

import logging
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from voxhelm import audio, lanes
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.errors import VoxhelmError
from voxhelm.fetch import FetchedFile, check_url, fetch_to_file
from voxhelm.formats import ARTIFACT_FORMATS, render_artifact
from voxhelm.jobs.heartbeat import Heartbeat
from voxhelm.jobs.inputs import batch_fetch_policy, source_artifact_name
from voxhelm.jobs.models import Job, JobPhase
from voxhelm.stt import windows
from voxhelm.stt.base import TranscriptionRequest
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.jobs")

OCTET_STREAM = "application/octet-stream"
EXTRACTED_AUDIO = "extracted-audio.wav"

# Percent reached when each step starts. Transcription dominates the run time; it advances
# from TRANSCRIBE to RENDER window by window.
STORE_SOURCE = 5
DECODE = 8
STORE_EXTRACTED = 12
TRANSCRIBE = 15
RENDER = 90
# A job holds a lane slot one window (~30 s of audio) at a time and queues for the next
# behind interactive and earlier work; it may wait long without failing, since nobody
# waits for it in real time (its heartbeat goes on meanwhile).
BATCH_LANE_WAIT_SECONDS = 3600.0


class JobAbandoned(Exception):
    """The attempt no longer owns its job (canceled, re-queued, taken over): stop quietly."""


class Attempt:
    """One run of a job by this worker: checkpoints and artifact writes."""

    def __init__(self, job: Job, heartbeat: Heartbeat, config: Config) -> None:
        self.job = job
        self.heartbeat = heartbeat
        self.config = config

    def checkpoint(self, phase: str, percent: int) -> None:
        """Report progress; raise :class:`JobAbandoned` if the job is no longer ours."""
        if self.heartbeat.lost or not self.job.set_progress(percent, phase):
            raise JobAbandoned

    def put(
        self,
        name: str,
        data: bytes | Path,
        *,
        kind: str,
        format: str,
        content_type: str,
        exposed: bool,
        phase: str,
        percent: int,
    ) -> None:
        self.checkpoint(phase, percent)
        JobArtifact.objects.put(
            self.job,
            name,
            kind=kind,
            format=format,
            content_type=content_type,
            exposed=exposed,
            data=data,
            config=self.config.artifacts,
        )


def run(job_id: str, *, task_id: str | None, worker: str, config: Config) -> None:
    """Run one attempt of job ``job_id`` if it is queued for ``task_id``; never raises for a
    failure of the job itself (that is recorded on the job)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("job %s: not found; task %s dropped", job_id, task_id)
        return
    if not job.mark_running(worker, task_id):
        logger.info(
            "job %s: not queued for task %s (state %s); skipped", job_id, task_id, job.state
        )
        return
    logger.info("job %s: attempt %d started on %s", job.pk, job.attempt_count, worker)
    with (
        Heartbeat(job, config.execution.job_heartbeat_seconds) as heartbeat,
        tempfile.TemporaryDirectory(prefix="voxhelm-job-") as workdir,
    ):
        finish(job, Attempt(job, heartbeat, config), Path(workdir))


def finish(job: Job, attempt: Attempt, workdir: Path) -> None:
    """Run the attempt's steps and record how it ended."""
    try:
        text, metadata = transcribe_url(attempt, workdir)
    except JobAbandoned:
        logger.info(
            "job %s: attempt %d stopped; the job is %s", job.pk, job.attempt_count, _state(job)
        )
        return
    except VoxhelmError as exc:
        logger.info("job %s: failed: %s", job.pk, exc.code)
        job.mark_failed(exc.code, exc.message)
        return
    except Exception:
        error_id = secrets.token_hex(6)
        logger.exception("job %s: internal error id=%s", job.pk, error_id)
        job.mark_failed(
            "internal_error", f"The job failed because of an internal error (error id {error_id})."
        )
        return
    if job.mark_succeeded(text, metadata):
        logger.info("job %s: succeeded in %.1fs", job.pk, metadata["processing_seconds"])
    else:
        logger.info("job %s: finished, but the job is %s; result dropped", job.pk, _state(job))


def transcribe_url(attempt: Attempt, workdir: Path) -> tuple[str, dict[str, Any]]:
    """The steps of a URL transcription; returns the text and the result metadata."""
    job, config = attempt.job, attempt.config
    started = time.monotonic()
    # A previous attempt (a worker that died) may have left artifacts: start clean.
    JobArtifact.objects.purge(job, config.artifacts)
    url = str(job.input_data["url"])
    policy = batch_fetch_policy(config)
    check_url(url, policy)  # the allowlist may have changed since the job was submitted
    fetched = fetch_to_file(url, policy, workdir)
    content_type = fetched.content_type or OCTET_STREAM
    attempt.put(
        source_artifact_name(fetched),
        fetched.path,
        kind="source",
        format="",
        content_type=content_type,
        exposed=False,
        phase=JobPhase.DOWNLOADING,
        percent=STORE_SOURCE,
    )
    attempt.checkpoint(JobPhase.DECODING, DECODE)
    decoded, has_video = _decode(fetched, config)
    if has_video:
        attempt.put(
            EXTRACTED_AUDIO,
            audio.write_wav(decoded, workdir / EXTRACTED_AUDIO),
            kind="extracted_audio",
            format="wav",
            content_type="audio/wav",
            exposed=False,
            phase=JobPhase.DECODING,
            percent=STORE_EXTRACTED,
        )
    attempt.checkpoint(JobPhase.TRANSCRIBING, TRANSCRIBE)
    request = TranscriptionRequest(language=job.language or None, prompt=job.prompt or None)
    transcript = windows.transcribe(
        decoded,
        job.model,
        request,
        config,
        lane=lanes.NON_INTERACTIVE,
        timeout=BATCH_LANE_WAIT_SECONDS,
        on_window=lambda done, total: attempt.checkpoint(
            JobPhase.TRANSCRIBING, TRANSCRIBE + int((RENDER - TRANSCRIBE) * done / total)
        ),
    )
    _render(attempt, transcript)
    metadata = {
        "backend": transcript.backend,
        "requested_model": job.model,
        "model": transcript.model,
        "language": transcript.language or job.language or None,
        "duration_seconds": round(decoded.duration, 3),
        "processing_seconds": round(time.monotonic() - started, 3),
        "source_kind": "url",
        "source_name": fetched.filename,
        "source_url": url,
        "source_content_type": content_type,
    }
    return transcript.text, metadata


def _decode(fetched: FetchedFile, config: Config) -> tuple[audio.Audio, bool]:
    """The audio to transcribe (a video's audio track) and whether the input is a video."""
    info = audio.probe(fetched.path)
    decoded = audio.decode(fetched.path, max_seconds=config.limits.max_audio_seconds)
    return decoded, info.has_video


def _render(attempt: Attempt, transcript: Transcript) -> None:
    formats: list[str] = list(attempt.job.output_data["formats"])
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


def _state(job: Job) -> str:
    return str(Job.objects.filter(pk=job.pk).values_list("state", flat=True).first())

"""The batch transcription pipeline: one attempt of one job, in the worker's thread.

fetch the URL (allowlist checked again) or copy the staged upload → the core steps of
``voxhelm.transcription`` (shared with ``voxhelm-remote-worker``): keep the source as an
unexposed artifact → decode (video: keep the extracted audio too) → transcribe → diarize
when asked → render every requested format → succeeded. Progress and phase
are written at each step; each write is also a checkpoint where a canceled or taken-over
attempt stops, before it writes anything more. Any failure becomes ``failed`` with a
client-safe message: a domain error's own message, or a generic one naming an error id
that is logged with the traceback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voxhelm import audio, capacity
from voxhelm.artifacts.models import JobArtifact
from voxhelm.batch.failures import classify
from voxhelm.batch.inputs import batch_fetch_policy
from voxhelm.batch.request import UploadSource, UrlSource
from voxhelm.batch.sink import Artifact, Sink
from voxhelm.batch.transcribe import transcribe_media
from voxhelm.config import Config
from voxhelm.errors import VoxhelmError
from voxhelm.fetch import FetchedFile, check_url, fetch_to_file
from voxhelm.jobs.deletion import discard_if_deleted
from voxhelm.jobs.heartbeat import Heartbeat
from voxhelm.jobs.joblog import log_outcome
from voxhelm.jobs.models import Job, JobType
from voxhelm.jobs.signals import transcript_changed
from voxhelm.jobs.staged import checkpoints_of, materialize_upload, settle_upload, state_of
from voxhelm.jobs.synthesis import synthesize_text
from voxhelm.workdirs import Workdir, sweep

logger = logging.getLogger("voxhelm.jobs")


class JobAbandoned(Exception):
    """The attempt no longer owns its job (canceled, re-queued, taken over): stop quietly."""


class Attempt(Sink):
    """One run of a job by this worker: checkpoints and artifact writes."""

    def __init__(self, job: Job, heartbeat: Heartbeat, config: Config) -> None:
        super().__init__(checkpoints_of(job, config))
        self.job = job
        self.heartbeat = heartbeat
        self.config = config

    def checkpoint(self, phase: str, percent: int, eta_seconds: float | None = None) -> None:
        """Report progress; raise :class:`JobAbandoned` if the job is no longer ours."""
        if self.heartbeat.lost or not self.job.set_progress(percent, phase, eta_seconds):
            raise JobAbandoned

    def keep(self, artifact: Artifact, data: bytes | Path) -> None:
        JobArtifact.objects.put(
            self.job,
            artifact.name,
            kind=artifact.kind,
            format=artifact.format,
            content_type=artifact.content_type,
            exposed=artifact.exposed,
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
    # A crashed earlier attempt (of this job or another) may have left its copy of the input.
    sweep(when=f"before job {job.pk} attempt {job.attempt_count}")
    with (
        Heartbeat(job, config.execution.job_heartbeat_seconds) as heartbeat,
        Workdir("job") as workdir,
    ):
        attempt = Attempt(job, heartbeat, config)
        if job.job_type == JobType.SYNTHESIZE:
            finish(job, lambda: synthesize_text(attempt))
        else:
            finish(job, lambda: transcribe_input(attempt, workdir))
    settle_upload(job, config)
    if discard_if_deleted(job, config):  # deleted while this canceled attempt still wrote
        return
    job.refresh_from_db()
    log_outcome(job)  # one structured line per attempt: ids, producer, state, timings


def finish(job: Job, steps: Callable[[], tuple[str, dict[str, Any]]]) -> bool:
    """Run the attempt's ``steps`` and record how it ended; True if it succeeded."""
    try:
        text, metadata = steps()
    except JobAbandoned:
        logger.info(
            "job %s: attempt %d stopped; the job is %s", job.pk, job.attempt_count, state_of(job)
        )
        return False
    except Exception as exc:
        failure = classify(exc, log=logger, job=str(job.pk))
        job.mark_failed(failure.code, failure.message)
        return False
    if job.mark_succeeded(text, metadata):
        logger.info("job %s: succeeded in %.1fs", job.pk, metadata["processing_seconds"])
        if job.job_type == JobType.TRANSCRIBE:
            transcript_changed.send(sender=Job, job=job)
        return True
    logger.info("job %s: finished, but the job is %s; result dropped", job.pk, state_of(job))
    return False


def transcribe_input(
    attempt: Attempt,
    workdir: Path,
    *,
    fetched: FetchedFile | None = None,
    decoded: audio.Audio | None = None,
    admission: capacity.Admission = capacity.BATCH,
) -> tuple[str, dict[str, Any]]:
    """Materialize the job's input (unless the caller hands over ``fetched``, and maybe its
    ``decoded`` audio), run the batch core with this attempt as its sink; returns text and
    metadata."""
    job, config = attempt.job, attempt.config
    started = time.monotonic()
    # A previous attempt (a worker that died) may have left artifacts: start clean.
    JobArtifact.objects.purge(job, config.artifacts)
    request = job.request
    source = request.source
    url = source.url if isinstance(source, UrlSource) else ""
    if fetched is None:
        if isinstance(source, UploadSource):
            fetched = materialize_upload(job, config, workdir)
        else:
            policy = batch_fetch_policy(config)
            check_url(url, policy)  # the allowlist may have changed since the job was submitted
            fetched = fetch_to_file(url, policy, workdir)
    outcome = transcribe_media(
        fetched, request, attempt, config, workdir, admission=admission, decoded=decoded
    )
    metadata = outcome.metadata(job.model, job.language, since=started)
    metadata.update(
        source_kind=source.kind,
        source_name=outcome.source_name,
        source_url=url,
        source_content_type=outcome.source_content_type,
    )
    diarization = request.outputs.diarization
    if diarization.enabled:
        metadata["diarization"] = diarization.public(outcome.known_speaker_summary)
    return outcome.text, metadata


def run_now(
    job: Job,
    fetched: FetchedFile,
    config: Config,
    workdir: Path,
    *,
    decoded: audio.Audio | None,
    admission: capacity.Admission,
) -> Job:
    """Run the caller's own ``SYNC`` job (``submit_request`` started it) here and now: the
    same attempt, steps and records as a batch job's. Raises the job's error as a
    :class:`VoxhelmError` if it did not succeed."""
    with Heartbeat(job, config.execution.job_heartbeat_seconds) as heartbeat:
        attempt = Attempt(job, heartbeat, config)
        succeeded = finish(
            job,
            lambda: transcribe_input(
                attempt, workdir, fetched=fetched, decoded=decoded, admission=admission
            ),
        )
    settle_upload(job, config)
    if discard_if_deleted(job, config):
        raise VoxhelmError("The transcription was canceled and deleted.", code="job_deleted")
    job.refresh_from_db()
    log_outcome(job)
    if not succeeded:
        message = job.error_detail or "The transcription was stopped."
        raise VoxhelmError(message, code=job.error_code or "job_abandoned")
    return job

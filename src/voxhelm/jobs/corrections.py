"""Correcting a finished transcript: renamed speakers and corrected segment texts, with
every transcript artifact rendered again and the machine's transcript kept.

The job's ``transcript.json`` is the transcript of record: a correction reads it, applies
the changes, and writes every transcript artifact the job has (``json`` last) from the
result, each atomically (:meth:`JobArtifact.objects.put`). Before the first correction the
machine's ``transcript.json`` is copied, byte for byte, to the unexposed
``transcript.original.json``, which later corrections never touch. One correction of a job
runs at a time (:class:`~voxhelm.studio.models.TranscriptRevision`'s lease); a correction
that stopped half-way leaves every artifact whole, and the next one renders them all again.
A job is not deleted while a correction holds its lease, and a correction of a job whose
deletion has begun writes nothing (:mod:`voxhelm.jobs.deletion`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError

from voxhelm import boundedjson
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from voxhelm.formats import ARTIFACT_FORMATS, render_artifact
from voxhelm.formats.openai_json import read_transcript_json
from voxhelm.jobs.deletion import being_deleted, discard_if_deleted
from voxhelm.jobs.models import Job, JobState, JobType
from voxhelm.jobs.signals import transcript_changed
from voxhelm.storage.base import StoreError
from voxhelm.studio.models import TranscriptRevision
from voxhelm.transcript import Transcript

logger = logging.getLogger("voxhelm.jobs")

ORIGINAL_ARTIFACT = "transcript.original.json"
ORIGINAL_KIND = "transcript_original"
NOT_EDITABLE = (
    "Only a succeeded transcription job's transcript can be corrected (the job is {state})."
)
NO_JSON = (
    "This job has no transcript.json to correct: corrections need the json format "
    "among the job's output formats."
)
BUSY = "Another correction of this transcript is being saved. Try again in a moment."
STORE_FAILED = "The artifact store could not be reached; the correction was not saved. Try again."


@dataclass(frozen=True)
class Correction:
    """What a person changed: speaker renames by current label, and per-segment texts and
    speakers by segment id."""

    names: dict[str, str] = field(default_factory=dict)
    texts: dict[int, str] = field(default_factory=dict)
    speakers: dict[int, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.names or self.texts or self.speakers)


@dataclass(frozen=True)
class Revision:
    """A job's transcript at one revision (0: the machine's)."""

    transcript: Transcript
    revision: int
    edited_at: Any  # datetime | None
    original: bool


def editable(job: Job) -> None:
    """Raise :class:`Conflict` unless ``job`` is a succeeded transcription."""
    if job.job_type != JobType.TRANSCRIBE or job.state != JobState.SUCCEEDED:
        raise Conflict(NOT_EDITABLE.format(state=job.state), code="transcript_not_editable")


def current(job: Job, config: Config) -> Revision:
    """The transcript as it stands, with its revision."""
    editable(job)
    transcript = _read(job, _json_artifact(job), config)
    row = TranscriptRevision.objects.filter(job=job).first()
    revision = row.revision if row else 0
    return Revision(transcript, revision, row.edited_at if row else None, revision == 0)


def original(job: Job, config: Config) -> Revision:
    """The machine's transcript, as the job made it (before any correction)."""
    editable(job)
    kept = job.artifacts.filter(name=ORIGINAL_ARTIFACT).first()
    transcript = _read(job, kept or _json_artifact(job), config)
    return Revision(transcript, 0, None, True)


def correct(job: Job, correction: Correction, config: Config) -> Revision:
    """Apply ``correction`` to ``job``'s transcript and render every artifact again.

    Raises :class:`InvalidInput` for a label or segment id the transcript does not have,
    :class:`Conflict` when the job cannot be corrected or another correction is under way,
    :class:`ServiceUnavailable` when the store failed (what was written is whole), and
    :class:`NotFound` when the job was deleted meanwhile.
    """
    editable(job)
    if correction.empty:
        raise InvalidInput("Nothing to correct: give speakers and/or segments.")
    _json_artifact(job)  # a job without one is refused before it is locked
    try:
        token = TranscriptRevision.take(job.pk)
    except IntegrityError:  # the job was deleted since it was looked up
        raise NotFound("Job not found.", code="job_not_found") from None
    if token is None:
        raise Conflict(BUSY, code="transcript_busy")
    saved = False
    try:
        if being_deleted(job.pk):  # checked under the lease: a deletion sees one or the other
            raise NotFound("Job not found.", code="job_not_found")
        source = _json_artifact(job)  # read under the lease: the last correction's row
        transcript = _read(job, source, config)
        _check(transcript, correction)
        corrected = transcript.corrected(
            names=correction.names, texts=correction.texts, speakers=correction.speakers
        )
        _write(job, source, corrected, config)
        Job.objects.filter(pk=job.pk, state=JobState.SUCCEEDED).update(result_text=corrected.text)
        saved = True
    except IntegrityError:
        # A row of the deleted job could not be saved; remove the objects written since.
        if discard_if_deleted(job, config):
            raise NotFound("Job not found.", code="job_not_found") from None
        raise
    except StoreError:
        logger.exception("job %s: a correction could not be stored", job.pk)
        raise ServiceUnavailable(STORE_FAILED, code="store_unavailable") from None
    finally:
        revision = TranscriptRevision.release(job.pk, token, saved=saved)
    if discard_if_deleted(job, config):
        raise NotFound("Job not found.", code="job_not_found")
    logger.info("job %s: transcript corrected (revision %d)", job.pk, revision)
    transcript_changed.send(sender=Job, job=job)  # the search index follows the correction
    row = TranscriptRevision.objects.filter(job=job).first()
    return Revision(corrected, revision, row.edited_at if row else None, False)


def _json_artifact(job: Job) -> JobArtifact:
    artifact = job.artifacts.exposed().filter(format="json").first()
    if artifact is None:
        raise Conflict(NO_JSON, code="transcript_not_editable")
    return artifact


def _read(job: Job, artifact: JobArtifact, config: Config) -> Transcript:
    try:
        # A remote worker may have written it: read it within bounds.
        with artifact.open(config.artifacts) as stream:
            payload = boundedjson.decode_object(stream.read(), subject="transcript.json")
    except StoreError:
        logger.exception("job %s: %s unreadable", job.pk, artifact.name)
        raise ServiceUnavailable(
            "The transcript could not be read from the artifact store. Try again.",
            code="store_unavailable",
        ) from None
    metadata = job.result_metadata or {}
    duration = metadata.get("duration_seconds")
    return read_transcript_json(
        payload,
        duration=float(duration) if isinstance(duration, int | float) else None,
        backend=str(metadata.get("backend") or ""),
        model=str(metadata.get("model") or ""),
    )


def unknown_speaker(transcript: Transcript, label: str, *, param: str) -> InvalidInput:
    shown = ", ".join(transcript.speakers) or "none"
    return InvalidInput(
        f"The transcript has no speaker {label!r} (its speakers: {shown}).",
        param=param,
        code="unknown_speaker",
    )


def _check(transcript: Transcript, correction: Correction) -> None:
    labels = set(transcript.speakers)
    for label in correction.names:
        if label not in labels:
            raise unknown_speaker(transcript, label, param=f"speakers.{label}")
    ids = {segment.id for segment in transcript.segments}
    for segment_id in (*correction.texts, *correction.speakers):
        if segment_id not in ids:
            raise InvalidInput(
                f"The transcript has no segment {segment_id}.",
                param="segments.id",
                code="unknown_segment",
            )


def _write(job: Job, source: JobArtifact, corrected: Transcript, config: Config) -> None:
    """The original first (once), then every transcript artifact, ``transcript.json`` last:
    until it is written the previous revision stays the transcript of record."""
    if not job.artifacts.filter(name=ORIGINAL_ARTIFACT).exists():
        with source.open(config.artifacts) as stream:
            machine = stream.read()
        JobArtifact.objects.put(
            job,
            ORIGINAL_ARTIFACT,
            kind=ORIGINAL_KIND,
            format="",
            content_type=source.content_type,
            exposed=False,
            data=machine,
            config=config.artifacts,
        )
    artifacts = [a for a in job.artifacts.exposed() if a.format in ARTIFACT_FORMATS]
    artifacts.sort(key=lambda artifact: artifact.format == "json")
    for artifact in artifacts:
        spec = ARTIFACT_FORMATS[artifact.format]
        JobArtifact.objects.put(
            job,
            artifact.name,
            kind=spec.kind,
            format=artifact.format,
            content_type=spec.content_type,
            exposed=True,
            data=render_artifact(corrected, artifact.format),
            config=config.artifacts,
        )

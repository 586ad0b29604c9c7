"""Keeping the segment index in step with the transcripts: one job's rows, replaced whole.

A job's rows are written when its transcript is new or changed (the ``transcript_changed``
signal: a local or remote success, a correction) and deleted with the job (the foreign key).
The segments come from the job's ``transcript.json`` artifact, the document the console
shows; a job without one (a producer who asked for text only) is indexed as one segment, its
whole text, at 0 s. The first migration fills the index for jobs that succeeded before it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState, JobType
from voxhelm.search.models import IndexedSegment
from voxhelm.storage.base import StoreError

logger = logging.getLogger("voxhelm.search")

HIT_START = "\ue000"
HIT_END = "\ue001"
"""Private-use characters the databases put around a match in a snippet; removed from the
indexed text, so that only the database can place them (they become ``<mark>`` later)."""
_MARKERS = str.maketrans("", "", HIT_START + HIT_END + "\x00")


@dataclass(frozen=True)
class SegmentText:
    """One segment as indexed (the fields of its ``IndexedSegment`` row)."""

    position: int
    start: float
    end: float
    speaker: str
    text: str


def segments_from_json(payload: Mapping[str, Any]) -> list[SegmentText]:
    """The segments of a ``transcript.json`` document (written by this server or a remote
    worker, decoded within bounds); segments without text are left out."""
    found = []
    items = payload.get("segments")
    for position, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        text = " ".join(str(item.get("text") or "").translate(_MARKERS).split())
        if not text:
            continue
        found.append(
            SegmentText(
                position=position,
                start=_seconds(item.get("start")),
                end=_seconds(item.get("end")),
                speaker=str(item.get("speaker") or "")[:255],
                text=text,
            )
        )
    return found


def segments_from_text(text: str) -> list[SegmentText]:
    """A transcript without segments: its whole text as one segment at 0 s."""
    clean = " ".join(text.translate(_MARKERS).split())
    return [SegmentText(0, 0.0, 0.0, "", clean)] if clean else []


def _seconds(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return seconds if 0.0 <= seconds < 1e9 else 0.0


def read_segments(job: Job, config: Config) -> list[SegmentText]:
    """The segments of a succeeded transcription job (its text alone if its
    ``transcript.json`` is missing or unreadable; the latter is logged)."""
    try:
        payload = JobArtifact.objects.transcript_json(job, config.artifacts)
    except (StoreError, OSError, ValueError):  # InvalidJson is a ValueError
        logger.warning("job %s: transcript.json unreadable; its text is indexed", job.pk)
        payload = None
    if payload is None:
        return segments_from_text(job.result_text)
    return segments_from_json(payload)


def index_job(job: Job, config: Config) -> int:
    """Replace ``job``'s rows with its current transcript (none unless it is a succeeded
    transcription); returns how many segments are indexed."""
    indexable = job.state == JobState.SUCCEEDED and job.job_type == JobType.TRANSCRIBE
    segments = read_segments(job, config) if indexable else []
    with transaction.atomic():
        IndexedSegment.objects.filter(job_id=job.pk).delete()
        IndexedSegment.objects.bulk_create(rows_for(job.pk, job.producer, segments))
    return len(segments)


def rows_for(job_id: Any, producer: str, segments: Iterable[SegmentText]) -> list[IndexedSegment]:
    return [IndexedSegment(job_id=job_id, producer=producer, **asdict(s)) for s in segments]


def reindex_on_change(sender: object, *, job: Job, **kwargs: object) -> None:
    """The ``transcript_changed`` receiver. The job's change is committed already, so a
    failure here must not undo it: it is logged, and the job is found again once it is
    indexed again (a correction, a re-run)."""
    try:
        count = index_job(job, settings.VOXHELM)
    except IntegrityError:
        logger.info("job %s: deleted while it was being indexed", job.pk)
    except Exception:  # the job stays succeeded whatever the index does
        logger.exception("job %s: the search index was not updated", job.pk)
    else:
        logger.debug("job %s: %d segments indexed", job.pk, count)

"""What the console shows of a job: its name, route, state, progress, and its segments."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voxhelm import boundedjson
from voxhelm.artifacts.base import StoreError
from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs.downloads import source_name as named_source
from voxhelm.jobs.models import TERMINAL_STATES, DispatchMode, Job, JobState, JobType

logger = logging.getLogger("voxhelm.console")

RECENT_JOBS = 15
DOWNLOAD_ORDER = ("text", "json", "vtt", "srt", "dote", "podlove")
DOWNLOAD_LABELS = {
    "text": "Text",
    "json": "JSON",
    "vtt": "VTT",
    "srt": "SRT",
    "dote": "DOTe",
    "podlove": "Podlove",
}
STATE_LABELS = {
    JobState.QUEUED: "Queued",
    JobState.RUNNING: "Running",
    JobState.SUCCEEDED: "Done",
    JobState.FAILED: "Failed",
    JobState.CANCELED: "Canceled",
}


@dataclass(frozen=True)
class JobView:
    job: Job
    name: str
    route: str  # "Sync" or "Batch"
    state: str
    state_label: str
    live: bool
    percent: int
    phase: str


@dataclass(frozen=True)
class SegmentView:
    start: float
    end: float
    at: str  # "1:02" / "1:02:03"
    text: str
    speaker: str


def source_name(job: Job) -> str:
    """The file name the operator knows the job by."""
    return named_source(job) or job.request.source.to_stored().get("url") or "audio"


def describe(job: Job) -> JobView:
    live = job.state not in TERMINAL_STATES
    return JobView(
        job=job,
        name=source_name(job),
        route="Sync" if job.dispatch_mode == DispatchMode.SYNC else "Batch",
        state=str(job.state),
        state_label=STATE_LABELS.get(JobState(job.state), str(job.state)),
        live=live,
        percent=int(job.progress),
        phase=str(job.phase or ("waiting" if job.state == JobState.QUEUED else "")),
    )


def recent_jobs(producer: str) -> list[JobView]:
    """The operator's latest transcription jobs, newest first."""
    jobs = Job.objects.for_producer(producer).filter(job_type=JobType.TRANSCRIBE)[:RECENT_JOBS]
    return [describe(job) for job in jobs]


def downloads(job: Job) -> list[tuple[str, str]]:
    """(format key, label) of every transcript the job has, in the console's order."""
    have = set(job.artifacts.exposed().values_list("format", flat=True))
    return [(key, DOWNLOAD_LABELS[key]) for key in DOWNLOAD_ORDER if key in have]


def clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration_text(seconds: int) -> str:
    """``600`` -> "10 minutes", ``90`` -> "90 seconds" (whole minutes only when exact)."""
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def segments(job: Job, config: Config) -> list[SegmentView]:
    """The segments of a succeeded job, read from its ``transcript.json`` artifact."""
    artifact = JobArtifact.objects.exposed().filter(job=job, format="json").first()
    if artifact is None:
        return []
    try:
        # A remote worker wrote this document: read it within bounds.
        with artifact.open(config.artifacts) as stream:
            payload = boundedjson.decode_object(stream.read(), subject="transcript.json")
    except (StoreError, OSError, ValueError):  # InvalidJson is a ValueError
        logger.exception("job %s: transcript.json unreadable", job.pk)
        return []
    views = []
    for item in payload.get("segments") or []:
        start, end = float(item.get("start", 0.0)), float(item.get("end", 0.0))
        views.append(
            SegmentView(
                start=start,
                end=end,
                at=clock(start),
                text=str(item.get("text", "")).strip(),
                speaker=str(item.get("speaker") or ""),
            )
        )
    return views

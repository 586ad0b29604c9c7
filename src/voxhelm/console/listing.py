"""What the console shows of a job: its name, route, state, progress, and its segments."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from voxhelm.artifacts.models import JobArtifact
from voxhelm.config import Config
from voxhelm.jobs.downloads import source_name as named_source
from voxhelm.jobs.listing import JobFilter, list_jobs
from voxhelm.jobs.models import TERMINAL_STATES, DispatchMode, Job, JobState, JobType
from voxhelm.storage.base import StoreError

logger = logging.getLogger("voxhelm.console")

RECENT_JOBS = 15
MAX_SEARCH_CHARS = 200
DOWNLOAD_LABELS = {  # in the console's order
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
    eta: str = ""  # "about 4 minutes left" while transcribing, when known

    @property
    def can_retry(self) -> bool:
        return self.state in (JobState.FAILED, JobState.CANCELED)


@dataclass(frozen=True)
class ListFilter:
    """The console's filter box: words in the source's name, and a state ("" for any)."""

    search: str = ""
    state: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ListFilter:
        state = query.get("state", "")
        search = " ".join(query.get("q", "").split())[:MAX_SEARCH_CHARS]
        return cls(search, state if state in JobState.values else "")

    @property
    def active(self) -> bool:
        return bool(self.search or self.state)

    def query_string(self) -> str:
        """``?q=…&state=…`` (only what is set), to carry the filter over to the list's poll."""
        given = {key: value for key, value in (("q", self.search), ("state", self.state)) if value}
        return f"?{urlencode(given)}" if given else ""


@dataclass(frozen=True)
class SegmentView:
    id: int
    start: float
    end: float
    at: str  # "1:02" / "1:02:03"
    text: str
    speaker: str


def source_name(job: Job) -> str:
    """The file name the operator knows the job by."""
    return named_source(job) or job.request.source.to_stored().get("url") or "audio"


def eta_text(seconds: float | None) -> str:
    """``250`` -> "about 4 minutes left"; "" when unknown."""
    if seconds is None or seconds < 0:
        return ""
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} minute{'s' if minutes != 1 else ''} left"
    return f"about {minutes / 60:.1f} hours left"


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
        eta=eta_text(job.eta_seconds) if job.state == JobState.RUNNING else "",
    )


def recent_jobs(producer: str, shown: ListFilter | None = None) -> list[JobView]:
    """The operator's latest transcription jobs that match ``shown``, newest first."""
    shown = shown or ListFilter()
    filters = JobFilter(
        states=(shown.state,) if shown.state else (),
        job_type=JobType.TRANSCRIBE,
        search=shown.search,
    )
    page = list_jobs(producer, filters, limit=RECENT_JOBS)
    return [describe(job) for job in page.jobs]


def has_jobs(producer: str) -> bool:
    """Whether the operator has any transcription job at all."""
    return Job.objects.for_producer(producer).filter(job_type=JobType.TRANSCRIBE).exists()


def downloads(job: Job) -> list[tuple[str, str]]:
    """(format key, label) of every transcript the job has, in the console's order."""
    have = set(job.artifacts.exposed().values_list("format", flat=True))
    return [(key, label) for key, label in DOWNLOAD_LABELS.items() if key in have]


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
    try:
        payload = JobArtifact.objects.transcript_json(job, config.artifacts) or {}
    except (StoreError, OSError, ValueError):  # InvalidJson is a ValueError
        logger.exception("job %s: transcript.json unreadable", job.pk)
        return []
    views: list[SegmentView] = []
    for item in payload.get("segments") or []:
        start, end = float(item.get("start", 0.0)), float(item.get("end", 0.0))
        views.append(
            SegmentView(
                id=int(item.get("id", len(views))),
                start=start,
                end=end,
                at=clock(start),
                text=str(item.get("text", "")).strip(),
                speaker=str(item.get("speaker") or ""),
            )
        )
    return views

"""A producer's jobs, newest first, a page at a time: filters, the cursor, one page.

The API's ``GET /v1/jobs`` pages the way OpenAI's lists do: ``limit`` jobs, ``has_more``,
and ``after=<the last job's id>`` for the next page. An id stops working as a cursor when
that job is deleted, so each page also carries ``next_cursor``, an opaque token of the last
job's position (creation time and id) that ``after`` accepts as well: deleting jobs while
paging through them skips none. Jobs are ordered by ``created_at`` then ``id``, both
descending, so the order is total and a page boundary never falls between equal times.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from django.db.models import Q

from voxhelm.errors import InvalidInput
from voxhelm.jobs.models import Job, JobQuerySet, JobState, JobType

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_PREFIX = "cur_"
PARAMETERS = (
    "after",
    "limit",
    "state",
    "task_ref",
    "job_type",
    "created_after",
    "created_before",
)
"""Every query parameter ``GET /v1/jobs`` takes; any other is a 400."""


@dataclass(frozen=True)
class Position:
    """Where a job sits in the list: its creation time and id."""

    created_at: datetime
    id: UUID

    def token(self) -> str:
        raw = f"{self.created_at.astimezone(UTC).isoformat()}|{self.id}".encode("ascii")
        return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class JobFilter:
    """Which of a producer's jobs to list (None: any)."""

    states: tuple[str, ...] = ()
    task_ref: str | None = None
    job_type: str | None = None
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    search: str = ""  # in the source's name (the console's filter box)

    def apply(self, jobs: JobQuerySet) -> JobQuerySet:
        if self.states:
            jobs = jobs.filter(state__in=self.states)
        if self.task_ref is not None:
            jobs = jobs.filter(task_ref=self.task_ref)
        if self.job_type is not None:
            jobs = jobs.filter(job_type=self.job_type)
        if self.created_after is not None:
            jobs = jobs.filter(created_at__gte=self.created_after)
        if self.created_before is not None:
            jobs = jobs.filter(created_at__lt=self.created_before)
        if self.search:
            jobs = jobs.filter(
                Q(context_data__source_name__icontains=self.search)
                | Q(input_data__filename__icontains=self.search)
                | Q(input_data__url__icontains=self.search)
            )
        return jobs


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        if not self.has_more:
            return None
        last = self.jobs[-1]
        return Position(last.created_at, last.pk).token()


def list_jobs(
    producer: str, filters: JobFilter, *, limit: int = DEFAULT_LIMIT, after: str | None = None
) -> Page:
    """One page of ``producer``'s jobs that match ``filters``, newest first, after the job or
    cursor ``after``; raises :class:`InvalidInput` (param ``after``) for an unknown cursor."""
    jobs = filters.apply(Job.objects.for_producer(producer))
    if after:
        position = _position(producer, after)
        jobs = jobs.filter(
            Q(created_at__lt=position.created_at)
            | Q(created_at=position.created_at, id__lt=position.id)
        )
    rows = list(jobs.order_by("-created_at", "-id").prefetch_related("artifacts")[: limit + 1])
    return Page(rows[:limit], has_more=len(rows) > limit)


def _position(producer: str, after: str) -> Position:
    if after.startswith(CURSOR_PREFIX):
        return _decode(after)
    try:
        job_id = UUID(after)
    except ValueError:
        raise _bad_cursor() from None
    row = Job.objects.for_producer(producer).filter(pk=job_id).values("created_at", "id").first()
    if row is None:
        raise InvalidInput(
            "No job with the id given in 'after' (deleted?). Page on with next_cursor instead.",
            param="after",
            code="invalid_cursor",
        )
    return Position(row["created_at"], row["id"])


def _decode(token: str) -> Position:
    body = token.removeprefix(CURSOR_PREFIX)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
        moment, _, job_id = raw.partition("|")
        created_at = datetime.fromisoformat(moment)
        if created_at.tzinfo is None:
            raise ValueError(moment)
        return Position(created_at, UUID(job_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor() from None


def _bad_cursor() -> InvalidInput:
    return InvalidInput(
        "'after' must be a job id or a next_cursor from an earlier page.",
        param="after",
        code="invalid_cursor",
    )


# -- the query string ------------------------------------------------------------------------


def parse_moment(value: str, param: str) -> datetime:
    """A time given as unix seconds (``1767225600``, ``1767225600.5``) or ISO-8601
    (``2026-01-01T00:00:00Z``; without an offset it is UTC)."""
    text = value.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(
            f"'{param}' must be unix seconds or an ISO-8601 time (2026-01-01T00:00:00Z).",
            param=param,
            code="invalid_time",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_states(value: str, param: str = "state") -> tuple[str, ...]:
    """``succeeded`` or ``failed,canceled``: each one a job state."""
    states = tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    unknown = [state for state in states if state not in JobState.values]
    if not states or unknown:
        raise InvalidInput(
            f"'{param}' must be one or more of {', '.join(JobState.values)} (comma-separated).",
            param=param,
        )
    return states


def parse_limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"'limit' must be an integer from 1 to {MAX_LIMIT}.", param="limit")
    return limit


def parse_job_type(value: str) -> str:
    if value not in JobType.values:
        raise InvalidInput(
            f"'job_type' must be one of {', '.join(JobType.values)}.", param="job_type"
        )
    return value

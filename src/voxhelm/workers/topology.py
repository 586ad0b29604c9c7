"""Whether every job type has a process to run it, judged from what the database shows.

Settings alone cannot tell: the local workers (``voxhelm worker``, ``voxhelm serve``) and
the remote workers may run on other hosts. So ``voxhelm check`` reads the evidence and warns
(voxhelm.W005) when a job type has nobody to run it:

* for a job type in ``remote_pull`` mode, when no enabled remote worker seen lately (a
  heartbeat within three poll intervals, at least a minute, or a live lease) advertises
  what a job of that type needs with the server's defaults (``synthesize`` and the default
  voice; the default STT backend and model);
* for the job types in ``django_tasks`` mode (the default), when no local worker
  (``voxhelm worker``, or the worker thread of ``voxhelm serve``) on the server's task queue
  beat within ``VOXHELM_JOB_STALE_SECONDS`` (:class:`~voxhelm.jobs.models.LocalWorker`):
  ``voxhelm web`` alone, before any job waits;
* in either mode, when jobs have been queued longer than :data:`STALLED` and nothing could
  take them: for local jobs no local worker started a task meanwhile (it beats but its loop
  is stuck), for remote jobs no worker seen lately can run them (another model,
  diarization, voice or format).

A database check (Django's ``database`` tag): ``voxhelm check`` runs it when the database is
there (:func:`database_ready`); the checks at the start of ``serve``, ``web`` and ``worker``
do not (there the process is about to start what it runs, and the database may not be
migrated yet).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone
from django_tasks import task_backends
from django_tasks_db import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from voxhelm import tts
from voxhelm.batch.request import DiarizationRequest
from voxhelm.config import REMOTE_EXECUTION, Config
from voxhelm.errors import VoxhelmError
from voxhelm.jobs.models import ExecutionMode, Job, JobState, JobType, LocalWorker
from voxhelm.worker_protocol.capabilities import (
    SYNTHESIZE,
    Requirements,
    job_requirements,
    matches,
    requirements,
)
from voxhelm.worker_protocol.messages import Capabilities
from voxhelm.workers.models import Worker

STALLED = timedelta(minutes=5)  # queued this long while nobody took work: stuck
MIN_SEEN = timedelta(minutes=1)
HINTS = {
    JobType.TRANSCRIBE: "Start voxhelm-remote-worker with the server's STT backend and model "
    "(docs/remote-workers.md).",
    JobType.SYNTHESIZE: "Start voxhelm-remote-worker with Piper and the server's voices "
    "(docs/remote-workers.md).",
}
LOCAL_HINT = (
    "Run `voxhelm worker` beside `voxhelm web` on the same database, or `voxhelm serve`; "
    "or set VOXHELM_TRANSCRIPTION_EXECUTION_MODE=remote_pull for remote workers "
    "(VOXHELM_SYNTHESIS_EXECUTION_MODE follows it)."
)


def topology_messages(config: Config, now: datetime) -> list[CheckMessage]:
    """The W005 warnings for ``config`` and the database's present state."""
    seen = seen_capabilities(config, now)
    messages: list[CheckMessage] = []
    unserved: set[str] = set()
    modes = {
        JobType.TRANSCRIBE: config.execution.transcription_mode,
        JobType.SYNTHESIZE: config.execution.synthesis_mode,
    }
    for job_type, mode in modes.items():
        if mode != REMOTE_EXECUTION:
            continue
        needs = default_needs(job_type, config)
        if needs is not None and any(matches(worker, needs) for worker in seen):
            continue
        unserved.add(job_type)
        messages.append(
            Warning(
                f"No remote worker that runs {job_type} jobs with the server's defaults "
                "has been seen lately: such jobs wait in the queue until one claims them.",
                hint=HINTS[job_type],
                id="voxhelm.W005",
            )
        )
    local = sorted(job_type for job_type, mode in modes.items() if mode != REMOTE_EXECUTION)
    if local and not local_worker_alive(config, now):
        unserved.update(local)
        messages.append(
            Warning(
                f"No local worker on task queue '{config.execution.task_queue}' has been seen "
                f"in the last {config.execution.job_stale_seconds:g} seconds: "
                f"{' and '.join(local)} jobs wait in the queue until one runs.",
                hint=LOCAL_HINT,
                id="voxhelm.W005",
            )
        )
    for stuck_type, count in sorted(stalled_jobs(config, now, seen).items()):
        if stuck_type in unserved:
            continue
        messages.append(
            Warning(
                f"{count} {stuck_type} job(s) have been queued for more than "
                f"{int(STALLED.total_seconds() // 60)} minutes and no running process can "
                "take them.",
                hint=f"{LOCAL_HINT} Remote jobs need a worker that advertises their model, "
                "diarization, voice and formats.",
                id="voxhelm.W005",
            )
        )
    return messages


def local_worker_alive(config: Config, now: datetime) -> bool:
    """Whether a local worker on the configured queue beat within the stale threshold. Unknown
    for a task backend that keeps no rows (it runs tasks itself): then it is assumed alive."""
    if not isinstance(task_backends["default"], DatabaseBackend):
        return True
    since = now - timedelta(seconds=config.execution.job_stale_seconds)
    return LocalWorker.objects.seen_since(since, config.execution.task_queue).exists()


def seen_capabilities(config: Config, now: datetime) -> list[Capabilities]:
    """What the enabled remote workers seen lately advertise. A worker beats while idle;
    one running a long job beats only its lease, so a live lease counts as seen too."""
    since = now - max(MIN_SEEN, timedelta(seconds=3 * config.execution.poll_seconds))
    leasing = Job.objects.remote().filter(state=JobState.RUNNING, lease_expires_at__gt=now)
    workers = Worker.objects.filter(enabled=True).filter(
        Q(last_seen_at__gte=since)
        | Q(worker_id__in=leasing.values_list("assigned_worker_id", flat=True))
    )
    return [_capabilities(worker.capabilities) for worker in workers]


def _capabilities(stored: Any) -> Capabilities:
    try:
        return Capabilities.model_validate(stored if isinstance(stored, dict) else {})
    except ValueError:
        return Capabilities()


def default_needs(job_type: str, config: Config) -> Requirements | None:
    """What a job of ``job_type`` submitted with no options needs from a worker."""
    if job_type == JobType.SYNTHESIZE:
        try:
            voice = tts.catalog(config.tts).resolve(None).name
        except VoxhelmError:
            return None  # no voice here at all: W003 says so
        return Requirements("piper", "piper", ("wav",), None, job_type=SYNTHESIZE, voice=voice)
    return requirements("auto", ("json",), DiarizationRequest(), config.stt)


def stalled_jobs(config: Config, now: datetime, seen: list[Capabilities]) -> Counter[str]:
    """Job types with jobs queued longer than STALLED that no running process can take."""
    stalled: Counter[str] = Counter()
    waiting = Job.objects.claimable().filter(created_at__lt=now - STALLED)
    if not _local_worker_active(now - STALLED):
        for job_type in waiting.local().values_list("job_type", flat=True):
            stalled[job_type] += 1
    rows = waiting.remote().values_list("job_type", "model", "input_data", "output_data")
    for job_type, model, input_data, output in rows.iterator():
        needs = job_requirements(job_type, model, input_data, output, config.stt)
        if needs is None or not any(matches(worker, needs) for worker in seen):
            stalled[job_type] += 1
    return stalled


def _local_worker_active(since: datetime) -> bool:
    """Whether a local worker started a task since ``since``, or runs a job now. Unknown for
    a task backend that keeps no rows: then it is assumed to run."""
    if not isinstance(task_backends["default"], DatabaseBackend):
        return True
    if DBTaskResult.objects.filter(started_at__gte=since).exists():
        return True
    return Job.objects.filter(
        state=JobState.RUNNING, execution_mode=ExecutionMode.LOCAL, heartbeat_at__gte=since
    ).exists()


def database_ready() -> bool:
    """Whether the database is there to be read: it answers, and (SQLite) its file exists, so
    that a check never creates one. Django's own database checks fail on a missing one."""
    config: Config = settings.VOXHELM
    if config.problems:
        return False
    if not config.paths.database_url and not config.paths.database_path.exists():
        return False  # nothing has run yet
    try:
        connection.ensure_connection()
    except DatabaseError:
        return False
    return True


@register("voxhelm", Tags.database)
def check_topology(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    # Only when asked to read the database (``voxhelm check`` passes --database=default):
    # the start-up checks of serve, web and worker run before migrations, and a server
    # starting after downtime would warn about jobs its own worker is about to take.
    if not databases or "default" not in databases:
        return []
    config: Config = settings.VOXHELM
    if not database_ready():
        return []
    try:
        return topology_messages(config, timezone.now())
    except DatabaseError:
        return []  # not migrated yet: no process has run, nothing to judge

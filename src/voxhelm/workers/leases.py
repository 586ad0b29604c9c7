"""Leases on remote jobs: claiming, beating, and expiry, each a conditional UPDATE.

A remote job (``execution_mode=remote_pull``) is claimable while it has attempts left and
is ``queued``, or ``running`` with an expired lease. A claim starts the next attempt: a
fresh lease token (only its SHA-256 is stored), a lease expiry in
``VOXHELM_REMOTE_WORKER_LEASE_SECONDS``, an attempt-scoped artifact prefix
``<prefix>/jobs/<id>/attempt-<n>/`` and a snapshot of the active store's identity.

Atomicity: the claim runs in one transaction. On SQLite that transaction begins
``IMMEDIATE`` (settings), so claims queue on the write lock instead of failing with
"database is locked" (and within one process on a lock of their own, which is fairer than
SQLite's busy handler); on PostgreSQL candidate rows are taken ``FOR UPDATE SKIP LOCKED``, so
concurrent claimers pass over each other's rows. Either way the UPDATE restates the state
and attempt it saw, so no job is ever leased twice.

Expired leases are reconciled by :func:`expire_leases`, which the web process runs
periodically (:func:`start_lease_sweeper`), not only when a request touches the job.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from voxhelm.batch.inputs import batch_fetch_policy
from voxhelm.batch.request import UrlSource
from voxhelm.config import Config
from voxhelm.errors import VoxhelmError
from voxhelm.fetch import check_url
from voxhelm.jobs.models import Job, JobState, JobType
from voxhelm.jobs.periodic import start_periodic
from voxhelm.jobs.staged import settle_upload
from voxhelm.storage.keys import job_prefix
from voxhelm.storage.stores import active_store
from voxhelm.worker_protocol.capabilities import Requirements, job_requirements, matches
from voxhelm.worker_protocol.messages import Capabilities, Progress
from voxhelm.workers.models import Worker

logger = logging.getLogger("voxhelm.workers")

SCAN_BATCH = 25  # candidate rows read per scan step
PRIORITIES = ("high", "normal", "low")  # claim order
ELIGIBLE_LIMIT = 10  # eligible candidates collected before trying to lease one
RESCANS = 50  # scans after losing every candidate to other claimers (PostgreSQL)
PRIORITY_ORDER = Case(
    When(priority="high", then=Value(0)),
    When(priority="normal", then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)
_SQLITE_CLAIMS = threading.Lock()
SCAN_FIELDS = ("pk", "priority", "created_at", "job_type", "model", "input_data", "output_data")


@dataclass(frozen=True)
class Claim:
    """A committed lease: the job as leased and the plaintext token (returned once)."""

    job: Job
    token: str
    needs: Requirements


@dataclass
class ClaimOutcome:
    claim: Claim | None = None
    failed: list[Job] = field(default_factory=list)  # failed by the URL re-check


def claim(
    worker: Worker, capabilities: Capabilities, max_jobs: int, config: Config
) -> ClaimOutcome:
    """Lease the first job ``worker`` can run, if it has capacity; see the module docstring.

    The scan runs inside the claim's transaction: on SQLite nothing can change between scan
    and lease; on PostgreSQL a concurrent claimer may lock or take every candidate first,
    and the claim then scans again (it never answers "no work" while work is left).
    """
    outcome = ClaimOutcome()
    # SQLite runs one write transaction at a time anyway. Claims of this process queue on a
    # lock instead of in SQLite's busy handler, which sleeps and retries in no order: under
    # 16 claimers the p99 fell from about 2 s to 0.45 s at the same throughput
    # (bench/remote_workers.py).
    serial = _SQLITE_CLAIMS if connection.vendor == "sqlite" else contextlib.nullcontext()
    with serial:
        for _ in range(RESCANS):
            with transaction.atomic():
                now = timezone.now()
                if not _has_capacity(worker, max_jobs, now):
                    break
                eligible = _scan(capabilities, config, now)
                if not eligible:
                    break
                outcome.claim = _lease_first(worker, eligible, config, outcome)
            if outcome.claim is not None:
                break
    return outcome


def _scan(capabilities: Capabilities, config: Config, now: datetime) -> dict[UUID, Requirements]:
    """Up to ELIGIBLE_LIMIT claimable jobs this worker can run, in claim order.

    Queued jobs are read priority by priority, oldest first, in small batches: each query
    is a range of the (execution_mode, state, priority, created_at) index, so a claim costs
    the same with ten or ten thousand jobs waiting. Running jobs whose lease expired (the
    sweep re-queues them soon anyway) are merged in by the same order.
    """
    expired: list[tuple[int, datetime, UUID, Requirements]] = []
    _collect(
        Job.objects.remote()
        .claimable(now)
        .filter(state=JobState.RUNNING)
        .order_by("lease_expires_at")
        .values_list(*SCAN_FIELDS)[:SCAN_BATCH],
        capabilities,
        config,
        expired,
    )
    queued: list[tuple[int, datetime, UUID, Requirements]] = []
    for priority in PRIORITIES:
        rows = (
            Job.objects.remote()
            .claimable()
            .filter(priority=priority)
            .order_by("created_at")
            .values_list(*SCAN_FIELDS)
        )
        offset = 0
        while len(queued) < ELIGIBLE_LIMIT:
            batch = list(rows[offset : offset + SCAN_BATCH])
            _collect(batch, capabilities, config, queued)
            if len(batch) < SCAN_BATCH:
                break
            offset += SCAN_BATCH
    found = sorted(expired + queued, key=lambda item: (item[0], item[1]))[:ELIGIBLE_LIMIT]
    return {pk: needs for _rank, _created, pk, needs in found}


def _collect(
    rows: Any,
    capabilities: Capabilities,
    config: Config,
    found: list[tuple[int, datetime, UUID, Requirements]],
) -> None:
    for pk, priority, created_at, job_type, model, input_data, output in rows:
        needs = job_requirements(job_type, model, input_data, output, config.stt)
        if needs is not None and matches(capabilities, needs):
            found.append((PRIORITIES.index(priority), created_at, pk, needs))
            if len(found) >= ELIGIBLE_LIMIT:
                return


def _has_capacity(worker: Worker, max_jobs: int, now: datetime) -> bool:
    """Whether the worker holds fewer live leases than min(max_jobs, its concurrency).

    Locks the worker's row first, so two claims of one worker cannot both pass the count.
    """
    locked = Worker.objects.select_for_update().filter(pk=worker.pk).first()
    concurrency = locked.concurrency if locked is not None else worker.concurrency
    held = Job.objects.leases_held(worker.pk, now)
    return held.count() < min(max_jobs, concurrency)


def _lease_first(
    worker: Worker, eligible: dict[UUID, Requirements], config: Config, outcome: ClaimOutcome
) -> Claim | None:
    now = timezone.now()
    candidates = (
        Job.objects.remote()
        .claimable(now)
        .filter(pk__in=list(eligible))
        .order_by(PRIORITY_ORDER, "created_at")
    )
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True)
    for job in candidates:
        problem = url_problem(job, config)
        if problem is not None:
            if job.fail_unclaimable(problem.code, problem.message, now):
                logger.info("job %s: failed at claim time: %s", job.pk, problem.code)
                outcome.failed.append(job)
            continue
        token = secrets.token_urlsafe(32)
        if _lease(job, worker.pk, token, config, now):
            return Claim(job, token, eligible[job.pk])
    return None


def url_problem(job: Job, config: Config) -> VoxhelmError | None:
    """Why the job's input URL or a reference URL is no longer allowed (the allowlist may
    have changed since submission), checked before a lease is committed."""
    if job.job_type != JobType.TRANSCRIBE:
        return None  # a synthesis job fetches nothing
    policy = batch_fetch_policy(config)
    request = job.request
    urls = request.outputs.diarization.reference_urls()
    if isinstance(request.source, UrlSource):
        urls.insert(0, request.source.url)
    for url in urls:
        try:
            check_url(url, policy)
        except VoxhelmError as exc:
            return exc
    return None


def _lease(job: Job, worker_id: str, token: str, config: Config, now: datetime) -> bool:
    attempt = job.attempt_count + 1
    changed = job.lease(
        worker_id,
        token,
        now,
        expires_at=now + timedelta(seconds=config.execution.lease_seconds),
        prefix=f"{job_prefix(config.artifacts.prefix, job.pk)}/attempt-{attempt}/",
        store=active_store(config.artifacts).identity(),
    )
    if changed:
        logger.info("job %s: attempt %d leased to worker %s", job.pk, attempt, worker_id)
    return changed


def beat(
    job_id: UUID, worker_id: str, token: str, progress: Progress, config: Config
) -> Job | None:
    """Extend an active lease and record progress; None when the lease is not (or no longer)
    the caller's (expired leases are never revived)."""
    now = timezone.now()
    report: dict[str, Any] = {
        "worker_progress": progress.model_dump(exclude_none=True),
        "eta_seconds": progress.eta_seconds,
    }
    if progress.phase is not None:  # one of the worker phases (the protocol maps aliases)
        report["phase"] = progress.phase
    if progress.percent is not None:
        report["progress"] = progress.percent
    expires_at = now + timedelta(seconds=config.execution.lease_seconds)
    if not Job.objects.renew_lease(
        job_id, worker_id, token, now, expires_at=expires_at, report=report
    ):
        return None
    return Job.objects.get(pk=job_id)


@dataclass
class ExpiryReport:
    requeued: list[UUID] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)


def expire_leases(now: datetime | None = None) -> ExpiryReport:
    """Re-queue (attempts left) or fail (attempts used up) every remote job whose lease has
    expired. Each UPDATE restates the expiry it saw, so a lease extended meanwhile is kept."""
    now = now or timezone.now()
    report = ExpiryReport()
    for job in Job.objects.lease_expired(now):
        attempt = job.attempt_count
        outcome = job.expire_lease(now)
        if outcome == JobState.QUEUED:
            logger.warning("job %s: lease of attempt %d expired; re-queued", job.pk, attempt)
            report.requeued.append(job.pk)
        elif outcome == JobState.FAILED:
            logger.error("job %s: lease expired on its last attempt; failed", job.pk)
            report.failed.append(job)
    return report


def sweep(config: Config) -> ExpiryReport:
    """Expire leases, then release the staged uploads of jobs that failed."""
    report = expire_leases()
    for job in report.failed:
        settle_upload(job, config)
    return report


def start_lease_sweeper(config: Config, stop: threading.Event | None = None) -> threading.Thread:
    """Sweep expired leases now and then every ``VOXHELM_JOB_SWEEP_SECONDS`` (daemon thread)."""

    def work() -> None:
        report = sweep(config)
        if report.requeued or report.failed:
            logger.info(
                "lease sweeper: re-queued %d, failed %d", len(report.requeued), len(report.failed)
            )

    return start_periodic("voxhelm-lease-sweeper", config.execution.job_sweep_seconds, work, stop)

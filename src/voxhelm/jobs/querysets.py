"""``JobQuerySet``: which jobs are claimable, stale, leased or expired, defined once each."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db import models
from django.db.models import Count, F, Q

from voxhelm.errors import NotFound
from voxhelm.jobs.choices import NOT_REUSABLE_STATES, ExecutionMode, JobState

if TYPE_CHECKING:
    from voxhelm.jobs.models import Job


def hash_token(token: str) -> str:
    """What a lease keeps of its token: the SHA-256, never the token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class JobQuerySet(models.QuerySet["Job"]):
    def for_producer(self, producer: str) -> JobQuerySet:
        return self.filter(producer=producer)

    def owned(self, producer: str, job_id: UUID) -> Job:
        """``producer``'s job ``job_id``; another producer's, or none, is not found (404)."""
        job = self.for_producer(producer).filter(pk=job_id).first()
        if job is None:
            raise NotFound("Job not found.", code="job_not_found")
        return job

    def local(self) -> JobQuerySet:
        """Jobs the local workers run."""
        return self.filter(execution_mode=ExecutionMode.LOCAL)

    def remote(self) -> JobQuerySet:
        """Jobs remote pull workers lease (transcriptions and syntheses)."""
        return self.filter(execution_mode=ExecutionMode.REMOTE)

    def claimable(self, now: datetime | None = None) -> JobQuerySet:
        """Jobs an attempt may start on: attempts left, and queued - or, given ``now``, a
        remote job whose lease expired before it (the lease sweeper re-queues it soon)."""
        waiting = Q(state=JobState.QUEUED)
        if now is not None:
            waiting |= Q(
                state=JobState.RUNNING,
                execution_mode=ExecutionMode.REMOTE,
                lease_expires_at__lt=now,
            )
        return self.filter(waiting, attempt_count__lt=F("max_attempts"))

    def leased(self, job_id: UUID | str, worker_id: str, token: str, now: datetime) -> JobQuerySet:
        """The job, if it is leased to ``worker_id`` with ``token`` and the lease holds."""
        return self.remote().filter(
            pk=job_id,
            state=JobState.RUNNING,
            assigned_worker_id=worker_id,
            lease_token_hash=hash_token(token),
            lease_expires_at__gt=now,
        )

    def leases_held(self, worker_id: str, now: datetime) -> JobQuerySet:
        """The live leases of a worker."""
        return self.remote().filter(
            state=JobState.RUNNING, assigned_worker_id=worker_id, lease_expires_at__gt=now
        )

    def lease_expired(self, now: datetime) -> JobQuerySet:
        """Remote attempts whose lease ran out before ``now``."""
        return self.remote().filter(state=JobState.RUNNING, lease_expires_at__lt=now)

    def renew_lease(
        self,
        job_id: UUID | str,
        worker_id: str,
        token: str,
        now: datetime,
        *,
        expires_at: datetime,
        report: dict[str, Any],
    ) -> bool:
        """Extend a live lease and record the beat's progress (``report``: phase, progress,
        eta_seconds, worker_progress); an expired lease is never revived."""
        fields = {**report, "lease_expires_at": expires_at, "heartbeat_at": now}
        return bool(self.leased(job_id, worker_id, token, now).update(updated_at=now, **fields))

    def reusable(self, producer: str, task_ref: str, fingerprint: str) -> JobQuerySet:
        """Jobs a resubmission with this task_ref and request fingerprint maps to, newest first."""
        return (
            self.filter(producer=producer, task_ref=task_ref, request_fingerprint=fingerprint)
            .exclude(task_ref="")
            .exclude(state__in=NOT_REUSABLE_STATES)
            .order_by("-created_at")
        )

    def stale(self, cutoff: datetime) -> JobQuerySet:
        """Running local jobs whose worker has not beaten since ``cutoff`` (it likely died).

        Remote pull jobs are left out: their leases expire instead (voxhelm.workers.leases).
        """
        return self.filter(
            state=JobState.RUNNING, heartbeat_at__lt=cutoff, execution_mode=ExecutionMode.LOCAL
        )

    def count_by_state(self) -> dict[tuple[str, str], int]:
        """How many jobs are in each ``(state, job_type)`` that has any (``/metrics``)."""
        rows = self.values("state", "job_type").annotate(n=Count("id"))
        return {(row["state"], row["job_type"]): row["n"] for row in rows}

    def waiting_since(self, cutoff: datetime) -> JobQuerySet:
        """Queued local jobs untouched since ``cutoff`` (the sweeper checks their task is
        alive; remote jobs wait for a claim, not a task)."""
        return self.local().claimable().filter(updated_at__lt=cutoff)

"""``Job``: a durable batch job, and every change of its state as a conditional UPDATE.

A job belongs to the producer (token label) that submitted it. Its states run
``queued → running → succeeded | failed | canceled``; a running job whose worker went
silent goes back to ``queued`` (attempts left) or to ``failed``. Each running attempt is
identified by ``attempt_count`` and ``worker_identity``: every write of the attempt restates
both (and ``state=running``), so a canceled, re-queued or taken-over job refuses writes from
an attempt that no longer owns it, and the attempt learns that it must stop. A remote
attempt is identified by its lease (worker, token, expiry) instead; see docs/architecture.md
for the whole state machine.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.db import IntegrityError, models, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from voxhelm.batch.request import JobOutputs, JobRequest, SynthesisRequest, source_from_stored
from voxhelm.jobs.choices import (
    LEASE_EXHAUSTED,
    LEASE_RESET,
    NOT_REUSABLE_STATES,
    TERMINAL_STATES,
    DispatchMode,
    ExecutionMode,
    JobPhase,
    JobPriority,
    JobState,
    JobType,
)
from voxhelm.jobs.querysets import JobQuerySet, hash_token

__all__ = [
    "LEASE_EXHAUSTED",
    "LEASE_RESET",
    "NOT_REUSABLE_STATES",
    "TERMINAL_STATES",
    "DispatchMode",
    "ExecutionMode",
    "Job",
    "JobPhase",
    "JobPriority",
    "JobQuerySet",
    "JobState",
    "JobType",
    "LocalWorker",
    "hash_token",
]


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A token label, or "operator:<username>" (usernames are up to 150 characters).
    producer = models.CharField(max_length=255)
    task_ref = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64)
    job_type = models.CharField(max_length=16, choices=JobType.choices, default=JobType.TRANSCRIBE)
    lane = models.CharField(max_length=16, default="batch")
    dispatch_mode = models.CharField(
        max_length=16, choices=DispatchMode.choices, default=DispatchMode.BATCH
    )
    execution_mode = models.CharField(
        max_length=16, choices=ExecutionMode.choices, default=ExecutionMode.LOCAL
    )
    priority = models.CharField(
        max_length=8, choices=JobPriority.choices, default=JobPriority.NORMAL
    )
    backend = models.CharField(max_length=32, default="auto")
    model = models.CharField(max_length=255, default="auto")
    language = models.CharField(max_length=32, blank=True)
    prompt = models.TextField(blank=True)
    input_data = models.JSONField(default=dict)
    output_data = models.JSONField(default=dict)
    context_data = models.JSONField(default=dict, blank=True)

    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)  # percent, 0-100
    phase = models.CharField(max_length=16, choices=JobPhase.choices, blank=True)
    eta_seconds = models.FloatField(null=True, blank=True)  # estimate while transcribing
    error_code = models.CharField(max_length=64, blank=True)
    error_detail = models.TextField(blank=True)  # client-safe: never a traceback or path
    result_text = models.TextField(blank=True)
    result_metadata = models.JSONField(default=dict, blank=True)

    attempt_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker_identity = models.CharField(max_length=128, blank=True)  # hostname:pid
    django_task_id = models.CharField(max_length=64, blank=True)
    # Remote pull workers (voxhelm.workers.leases): the lease of the running attempt, the
    # attempt's artifact prefix and the store it was told to write to; heartbeat_at is the
    # worker's last job heartbeat.
    assigned_worker_id = models.CharField(max_length=64, blank=True)
    lease_token_hash = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    leased_artifact_prefix = models.CharField(max_length=1024, blank=True)
    leased_artifact_store = models.JSONField(default=dict, blank=True)
    worker_progress = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set before a deletion removes the job's objects (voxhelm.jobs.deletion): from then on a
    # writer that ends treats the job as deleted and removes what it wrote.
    deleting_at = models.DateTimeField(null=True, blank=True)
    # Job callbacks (voxhelm.jobs.webhooks): where to POST the finished job, and how it went.
    callback_url = models.TextField(blank=True)
    webhook_state = models.CharField(max_length=16, blank=True)  # "", pending, delivered, failed
    webhook_next_at = models.DateTimeField(null=True, blank=True, db_index=True)
    webhook_attempts = models.JSONField(default=list, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["producer", "task_ref"], name="job_producer_task_ref"),
            models.Index(fields=["state", "heartbeat_at"], name="job_state_heartbeat"),
            models.Index(
                fields=["execution_mode", "state", "priority", "created_at"],
                name="job_remote_claimable",
            ),
            models.Index(fields=["assigned_worker_id", "state"], name="job_worker_state"),
            models.Index(fields=["lease_expires_at"], name="job_lease_expires"),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # Concurrent identical submissions race to this index; the losers return the winner.
            models.UniqueConstraint(
                fields=["producer", "task_ref", "request_fingerprint"],
                condition=~Q(state__in=NOT_REUSABLE_STATES) & ~Q(task_ref=""),
                name="job_unique_live_task_ref",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="job_progress_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.job_type} job {self.pk} ({self.state})"

    @property
    def request(self) -> JobRequest:
        """What this transcription job asks for (parsed from its stored request)."""
        return JobRequest(
            source=source_from_stored(self.input_data),
            outputs=JobOutputs.from_stored(self.output_data),
            model=self.model,
            language=self.language or None,
            prompt=self.prompt or None,
            callback_url=self.callback_url,
        )

    @property
    def synthesis_request(self) -> SynthesisRequest:
        return SynthesisRequest.from_stored(self.input_data, self.output_data)

    # -- conditional updates -------------------------------------------------------------
    def _update_if(self, condition: Q, **fields: Any) -> bool:
        """UPDATE this row to ``fields`` only where ``condition`` still holds.

        On success the instance takes the new values; returns whether the row changed.
        """
        fields["updated_at"] = timezone.now()
        changed = Job.objects.filter(pk=self.pk).filter(condition).update(**fields)
        if changed:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(changed)

    def _owned(self) -> Q:
        """This attempt still owns the job."""
        return Q(
            state=JobState.RUNNING,
            attempt_count=self.attempt_count,
            worker_identity=self.worker_identity,
        )

    def attach_task(self, task_id: str) -> None:
        """Record the Django Task that will run the job (inside the enqueueing transaction)."""
        self.django_task_id = task_id
        self.save(update_fields=["django_task_id", "updated_at"])

    def mark_running(self, worker: str, task_id: str | None = None) -> bool:
        """Start an attempt: ``queued → running``. False if the job is not (or no longer)
        queued, or ``task_id`` is not the task the job is waiting for."""
        condition = Q(
            state=JobState.QUEUED,
            attempt_count=self.attempt_count,
            max_attempts__gt=self.attempt_count,
        )
        if task_id is not None:
            condition &= Q(django_task_id=task_id)
        now = timezone.now()
        return self._update_if(
            condition,
            state=JobState.RUNNING,
            attempt_count=self.attempt_count + 1,
            worker_identity=worker,
            heartbeat_at=now,
            started_at=self.started_at or now,
            progress=0,
            phase=JobPhase.DOWNLOADING,
            error_code="",
            error_detail="",
        )

    def beat(self) -> bool:
        """Prove the attempt's worker is alive; False once the attempt no longer owns the job."""
        return self._update_if(self._owned(), heartbeat_at=timezone.now())

    def set_progress(self, percent: int, phase: str, eta_seconds: float | None = None) -> bool:
        """Report progress (a checkpoint): False means the attempt must stop at once."""
        return self._update_if(
            self._owned(),
            progress=max(0, min(int(percent), 100)),
            phase=phase,
            eta_seconds=eta_seconds,
            heartbeat_at=timezone.now(),
        )

    def mark_succeeded(self, text: str, metadata: dict[str, Any]) -> bool:
        return self._update_if(
            self._owned(),
            state=JobState.SUCCEEDED,
            progress=100,
            phase=JobPhase.NONE,
            result_text=text,
            result_metadata=metadata,
            finished_at=timezone.now(),
        )

    def mark_failed(self, code: str, message: str) -> bool:
        """Fail the running attempt with a client-safe ``message``."""
        return self._update_if(
            self._owned(),
            state=JobState.FAILED,
            phase=JobPhase.NONE,
            error_code=code,
            error_detail=message,
            finished_at=timezone.now(),
        )

    def cancel(self) -> bool:
        """``queued | running → canceled``. A running attempt notices at its next checkpoint.

        Returns False (and reloads the job) when it had already finished.
        """
        changed = self._update_if(
            Q(state__in=[JobState.QUEUED, JobState.RUNNING]),
            state=JobState.CANCELED,
            phase=JobPhase.NONE,
            finished_at=timezone.now(),
        )
        if not changed:
            self.refresh_from_db()
        return changed

    def _vanished(self, stale_before: datetime | None) -> Q:
        """The job is still as the sweeper saw it: running without a beat since
        ``stale_before``, or queued for the same lost task."""
        if self.state == JobState.RUNNING:
            return Q(
                state=JobState.RUNNING,
                attempt_count=self.attempt_count,
                heartbeat_at__lt=stale_before or timezone.now(),
            )
        return Q(state=JobState.QUEUED, django_task_id=self.django_task_id)

    def requeue(
        self, *, stale_before: datetime | None = None, consume_attempt: bool = False
    ) -> bool:
        """Put a job whose worker vanished back in the queue (see :meth:`_vanished`).

        A running attempt already counted itself; ``consume_attempt`` counts a lost task
        that never started one, so a task that keeps dying still runs out of attempts.
        """
        return self._update_if(
            self._vanished(stale_before),
            state=JobState.QUEUED,
            attempt_count=self.attempt_count + (1 if consume_attempt else 0),
            worker_identity="",
            heartbeat_at=None,
            progress=0,
            phase=JobPhase.NONE,
        )

    def abandon(self, code: str, message: str, *, stale_before: datetime | None = None) -> bool:
        """Fail a job whose worker vanished and whose attempts are used up."""
        return self._update_if(
            self._vanished(stale_before),
            state=JobState.FAILED,
            phase=JobPhase.NONE,
            worker_identity="",
            error_code=code,
            error_detail=message,
            finished_at=timezone.now(),
        )

    # -- remote attempts (voxhelm.workers.leases, voxhelm.workers.completion) ------------
    def lease(
        self,
        worker_id: str,
        token: str,
        now: datetime,
        *,
        expires_at: datetime,
        prefix: str,
        store: dict[str, Any],
    ) -> bool:
        """Start the next remote attempt under a fresh lease: ``queued → running``, or a
        running job whose lease expired to its next attempt. False if the job is no longer
        as seen (another claim took it). Only the token's hash is stored."""
        attempt = self.attempt_count + 1
        changed = (
            Job.objects.remote()
            .claimable(now)
            .filter(pk=self.pk, state=self.state, attempt_count=self.attempt_count)
            .update(
                state=JobState.RUNNING,
                assigned_worker_id=worker_id,
                worker_identity=f"remote:{worker_id}"[:128],
                lease_token_hash=hash_token(token),
                lease_expires_at=expires_at,
                attempt_count=attempt,
                leased_artifact_prefix=prefix,
                leased_artifact_store=store,
                started_at=Coalesce(F("started_at"), Value(now)),
                heartbeat_at=now,
                worker_progress={},
                progress=0,
                phase=JobPhase.DOWNLOADING,
                error_code="",
                error_detail="",
                updated_at=now,
            )
        )
        if changed:
            self.refresh_from_db()
        return bool(changed)

    def fail_unclaimable(self, code: str, message: str, now: datetime) -> bool:
        """Fail a job a claim may not start (its URL is no longer allowed): from the state
        and attempt the claim saw."""
        return self._update_if(
            Q(state=self.state, attempt_count=self.attempt_count),
            state=JobState.FAILED,
            error_code=code,
            error_detail=message,
            finished_at=now,
            **LEASE_RESET,
        )

    def expire_lease(self, now: datetime) -> JobState | None:
        """Re-queue (attempts left) or fail (none left) the attempt whose lease expired
        before ``now``; None if the lease was extended or the job moved on meanwhile."""
        seen = Q(state=JobState.RUNNING, attempt_count=self.attempt_count, lease_expires_at__lt=now)
        if self.attempt_count < self.max_attempts:
            requeued = self._update_if(seen, state=JobState.QUEUED, **LEASE_RESET)
            return JobState.QUEUED if requeued else None
        failed = self._update_if(
            seen,
            state=JobState.FAILED,
            error_code="lease_expired",
            error_detail=LEASE_EXHAUSTED,
            finished_at=now,
            worker_progress={},
            progress=0,
            phase=JobPhase.NONE,
        )
        return JobState.FAILED if failed else None

    def succeed_lease(
        self, worker_id: str, token: str, now: datetime, *, text: str, metadata: dict[str, Any]
    ) -> bool:
        """``running → succeeded`` under the caller's live lease (inside the transaction that
        writes the attempt's artifact rows, which a False rolls back)."""
        changed = Job.objects.leased(self.pk, worker_id, token, now).update(
            state=JobState.SUCCEEDED,
            result_text=text,
            result_metadata=metadata,
            finished_at=now,
            progress=100,
            phase=JobPhase.NONE,
            worker_progress={},
            updated_at=now,
        )
        return bool(changed)

    def fail_lease(
        self,
        worker_id: str,
        token: str,
        now: datetime,
        *,
        requeue: bool,
        code: str,
        detail: str,
    ) -> bool:
        """End the caller's leased attempt: back to the queue (``requeue``) or failed."""
        leased = Job.objects.leased(self.pk, worker_id, token, now)
        if requeue:
            fields: dict[str, Any] = {"state": JobState.QUEUED, **LEASE_RESET}
        else:
            fields = {
                "state": JobState.FAILED,
                "finished_at": now,
                "progress": 0,
                "phase": JobPhase.NONE,
                "worker_progress": {},
            }
        return bool(leased.update(error_code=code, error_detail=detail, updated_at=now, **fields))


class LeftoverTree(models.Model):
    """Objects a deleted job's remote attempt may still write: the attempt's folder in the
    store its lease named, removed by the sweeper once the lease has run out (the worker
    stops writing when it does)."""

    store_identity = models.JSONField(default=dict)
    prefix = models.CharField(max_length=1024)
    remove_after = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.prefix


class LocalWorkerQuerySet(models.QuerySet["LocalWorker"]):
    def beat(self, worker_id: str, queue_name: str, now: datetime) -> None:
        """Record that the worker lives: its row, created on the first beat, and again after
        a silence long enough for the row to be removed as a dead worker's."""
        if self.filter(pk=worker_id).update(queue_name=queue_name, last_seen_at=now):
            return
        try:
            with transaction.atomic():
                self.create(worker_id=worker_id, queue_name=queue_name, last_seen_at=now)
        except IntegrityError:  # the row appeared meanwhile: a beat of this worker or a twin
            self.filter(pk=worker_id).update(queue_name=queue_name, last_seen_at=now)

    def seen_since(self, since: datetime, queue_name: str) -> LocalWorkerQuerySet:
        """The workers of ``queue_name`` that beat at ``since`` or later."""
        return self.filter(queue_name=queue_name, last_seen_at__gte=since)

    def silent_since(self, since: datetime) -> LocalWorkerQuerySet:
        """The rows of workers that did not beat since ``since``: killed, or stopped hard."""
        return self.filter(last_seen_at__lt=since)


class LocalWorker(models.Model):
    """A running local batch worker (``voxhelm worker``, or the worker thread of ``voxhelm
    serve``): it beats every ``VOXHELM_JOB_HEARTBEAT_SECONDS``, idle or busy, and deletes its
    row when it stops cleanly. ``voxhelm check`` reads the rows (voxhelm.W005)."""

    worker_id = models.CharField(max_length=64, primary_key=True)  # hostname:pid, as on tasks
    queue_name = models.CharField(max_length=255)
    last_seen_at = models.DateTimeField(db_index=True)

    objects = LocalWorkerQuerySet.as_manager()

    def __str__(self) -> str:
        return f"local worker {self.worker_id} (queue {self.queue_name})"

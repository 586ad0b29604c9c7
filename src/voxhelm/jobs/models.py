"""``Job``: a durable batch job, and every change of its state as a conditional UPDATE.

A job belongs to the producer (token label) that submitted it. Its states run
``queued → running → succeeded | failed | canceled``; a running job whose worker went
silent goes back to ``queued`` (attempts left) or to ``failed``. Each running attempt is
identified by ``attempt_count`` and ``worker_identity``: every write of the attempt restates
both (and ``state=running``), so a canceled, re-queued or taken-over job refuses writes from
an attempt that no longer owns it, and the attempt learns that it must stop.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.utils import timezone


class JobState(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED)
NOT_REUSABLE_STATES = (JobState.FAILED, JobState.CANCELED)
"""States a task_ref resubmission never maps to: the producer asks for a fresh run."""


class JobPhase(models.TextChoices):
    NONE = ""
    DOWNLOADING = "downloading"
    DECODING = "decoding"
    TRANSCRIBING = "transcribing"
    DIARIZING = "diarizing"
    RENDERING = "rendering"
    SYNTHESIZING = "synthesizing"
    ENCODING = "encoding"


class JobPriority(models.TextChoices):
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class JobQuerySet(models.QuerySet["Job"]):
    def for_producer(self, producer: str) -> JobQuerySet:
        return self.filter(producer=producer)

    def claimable(self) -> JobQuerySet:
        """Queued jobs with attempts left."""
        return self.filter(state=JobState.QUEUED, attempt_count__lt=models.F("max_attempts"))

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
            state=JobState.RUNNING, heartbeat_at__lt=cutoff, execution_mode="django_tasks"
        )

    def waiting_since(self, cutoff: datetime) -> JobQuerySet:
        """Claimable jobs untouched since ``cutoff`` (the sweeper checks their task is alive)."""
        return self.claimable().filter(updated_at__lt=cutoff)


class Job(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # A token label, or "operator:<username>" (usernames are up to 150 characters).
    producer = models.CharField(max_length=255)
    task_ref = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64)
    job_type = models.CharField(max_length=16, default="transcribe")
    lane = models.CharField(max_length=16, default="batch")
    dispatch_mode = models.CharField(max_length=16, default="batch")
    execution_mode = models.CharField(max_length=16, default="django_tasks")
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
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

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

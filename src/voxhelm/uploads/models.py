"""``StagedUpload``: media staged by a producer for one batch job, and its lifecycle.

An upload is *staged* (unclaimed) until a job attaches it (*claimed*); it lives until the job
succeeds (then it is deleted: the job keeps its own copy as the ``source`` artifact) or until
it expires. A job that ends failed or canceled *releases* it, so the producer may submit it
again until it expires. The retention sweep deletes expired unclaimed uploads: it first marks
a row ``deleting_at`` with a conditional UPDATE, and a claim is a conditional UPDATE that
requires ``deleting_at IS NULL`` — so a claim and a deletion can never both win.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models
from django.utils import timezone

if TYPE_CHECKING:
    from voxhelm.jobs.models import Job


class StagedUploadQuerySet(models.QuerySet["StagedUpload"]):
    def for_producer(self, producer: str) -> StagedUploadQuerySet:
        return self.filter(producer=producer)

    def expired_unclaimed(self, now: datetime) -> StagedUploadQuerySet:
        """Uploads the retention sweep may delete (or is deleting: a failed delete retries)."""
        return self.filter(claimed_by_job__isnull=True, expires_at__lte=now)

    def claimed_by_finished_jobs(self) -> StagedUploadQuerySet:
        """Claims whose job has ended: to delete (succeeded) or release (failed, canceled)."""
        return self.filter(claimed_by_job__isnull=False, claimed_by_job__finished_at__isnull=False)


class StagedUpload(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    producer = models.CharField(max_length=255, db_index=True)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    storage_backend = models.CharField(max_length=32)
    storage_key = models.CharField(max_length=1024)
    storage_identity = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    claimed_by_job = models.OneToOneField(
        "voxhelm_jobs.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staged_upload",
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    deleting_at = models.DateTimeField(null=True, blank=True)

    objects = StagedUploadQuerySet.as_manager()

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at"]

    def __str__(self) -> str:
        return f"{self.pk} ({self.filename})"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())

    def _update_if(self, condition: models.Q, **fields: Any) -> bool:
        """Apply ``fields`` if the row still matches ``condition``; refresh this instance."""
        updated = StagedUpload.objects.filter(condition, pk=self.pk).update(**fields)
        if updated:
            for name, value in fields.items():
                setattr(self, name, value)
        return bool(updated)

    def claim(self, job: Job, now: datetime | None = None) -> bool:
        """Attach to ``job`` if still unclaimed, unexpired and not being deleted."""
        now = now or timezone.now()
        return self._update_if(
            models.Q(claimed_by_job__isnull=True, deleting_at__isnull=True, expires_at__gt=now),
            claimed_by_job=job,
            claimed_at=now,
        )

    def release(self, job: Job) -> bool:
        """Detach from ``job`` (which ended without using it up) so it can be submitted again."""
        return self._update_if(models.Q(claimed_by_job=job), claimed_by_job=None, claimed_at=None)

    def mark_deleting(self, condition: models.Q, now: datetime | None = None) -> bool:
        """Start deleting if ``condition`` holds (e.g. still unclaimed); claims fail from now."""
        return self._update_if(condition, deleting_at=now or timezone.now())

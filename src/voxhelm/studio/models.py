"""``TranscriptRevision`` (a corrected transcript's revision and edit lock) and
``LibrarySpeaker`` (a producer's saved voiceprint, used by name in later jobs)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

EDIT_LEASE = timedelta(minutes=2)
"""How long a correction may hold its transcript; one that crashed frees it after this."""


class TranscriptRevision(models.Model):
    """How often a job's transcript was corrected, and who is correcting it now.

    The row appears with the first correction. ``editing_until`` is a short lease: a
    correction rewrites several artifacts one by one (each atomically), and two at once
    would interleave them, so the second is refused while the first holds the lease.
    ``editing_token`` names the holder, so a correction that ran past its lease cannot give
    back the lease of the one that took it over.
    """

    job = models.OneToOneField(
        "voxhelm_jobs.Job", on_delete=models.CASCADE, primary_key=True, related_name="revision"
    )
    revision = models.PositiveIntegerField(default=0)  # 0: the machine's transcript
    edited_at = models.DateTimeField(null=True, blank=True)
    editing_until = models.DateTimeField(null=True, blank=True)
    editing_token = models.UUIDField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.job_id} r{self.revision}"

    @classmethod
    def take(cls, job_id: Any, now: datetime | None = None) -> uuid.UUID | None:
        """Take the edit lease of ``job_id``'s transcript: the holder's token, None while
        another holds it."""
        now = now or timezone.now()
        cls.objects.get_or_create(job_id=job_id)
        free = Q(editing_until__isnull=True) | Q(editing_until__lt=now)
        token = uuid.uuid4()
        taken = cls.objects.filter(free, job_id=job_id).update(
            editing_until=now + EDIT_LEASE, editing_token=token
        )
        return token if taken else None

    @classmethod
    def held(cls, job_id: Any, now: datetime | None = None) -> bool:
        """Whether a correction holds ``job_id``'s lease now."""
        until = now or timezone.now()
        return cls.objects.filter(job_id=job_id, editing_until__gte=until).exists()

    @classmethod
    def release(cls, job_id: Any, token: uuid.UUID, *, saved: bool) -> int:
        """Give the lease ``token`` holds back; ``saved``: a new revision was written. The
        revision now. A lease that ran out and was taken again is left to its new holder
        (the revision is still counted: the artifacts were rewritten)."""
        if saved:
            cls.objects.filter(job_id=job_id).update(
                revision=F("revision") + 1, edited_at=timezone.now()
            )
        cls.objects.filter(job_id=job_id, editing_token=token).update(
            editing_until=None, editing_token=None
        )
        current = cls.objects.filter(job_id=job_id).values_list("revision", flat=True).first()
        return int(current or 0)


class LibrarySpeakerQuerySet(models.QuerySet["LibrarySpeaker"]):
    def for_producer(self, producer: str) -> LibrarySpeakerQuerySet:
        return self.filter(producer=producer)


class LibrarySpeaker(models.Model):
    """A named voice of one producer: a CAM++ voiceprint from the turns of a past job.

    ``voiceprint`` is the unit-length 192-dim vector; ``embedding_version`` says which
    weights made it (a vector from other weights cannot be compared). The source job is
    kept by id only: deleting the job keeps the voice.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    producer = models.CharField(max_length=255)
    name = models.CharField(max_length=100)
    voiceprint = models.JSONField(default=list)
    embedding_version = models.CharField(max_length=64)
    speech_seconds = models.FloatField(default=0.0)
    source_job_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LibrarySpeakerQuerySet.as_manager()

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["producer", "name"], name="library_speaker_name"),
        ]

    def __str__(self) -> str:
        return f"{self.producer}/{self.name}"

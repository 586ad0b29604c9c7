"""``JobArtifact``: one stored output (or input copy) of a job, and where its bytes live."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from django.db import models

from voxhelm import boundedjson
from voxhelm.config import ArtifactsConfig
from voxhelm.storage.base import ArtifactStore
from voxhelm.storage.keys import job_artifact_key, job_prefix
from voxhelm.storage.stores import active_store, store_for_identity

if TYPE_CHECKING:
    from voxhelm.jobs.models import Job


class JobArtifactQuerySet(models.QuerySet["JobArtifact"]):
    def exposed(self) -> JobArtifactQuerySet:
        """Artifacts a producer may download (transcripts, not the source or extracted audio)."""
        return self.filter(exposed=True)

    def transcript_json(self, job: Job, config: ArtifactsConfig) -> dict[str, Any] | None:
        """``job``'s ``transcript.json`` document, or None if it has none. Decoded within
        bounds (a remote worker may have written it); StoreError, OSError or InvalidJson (a
        ValueError) when it cannot be read."""
        artifact = self.exposed().filter(job=job, format="json").first()
        if artifact is None:
            return None
        with artifact.open(config) as stream:
            return boundedjson.decode_object(stream.read(), subject="transcript.json")

    def put(
        self,
        job: Job,
        name: str,
        *,
        kind: str,
        format: str,
        content_type: str,
        exposed: bool,
        data: bytes | Path | BinaryIO,
        config: ArtifactsConfig,
    ) -> JobArtifact:
        """Write ``data`` (bytes, a file, or a stream) to the active store as ``name``.

        The object is written atomically before its row is saved, so a row never points at a
        partial object; writing a name again replaces both.
        """
        store = active_store(config)
        key = job_artifact_key(config.prefix, job.pk, name)
        if isinstance(data, Path):
            stored = store.put_file(key, data, content_type)
        elif isinstance(data, bytes):
            stored = store.put_bytes(key, data, content_type)
        else:
            stored = store.put_stream(key, data, content_type)
        artifact, _created = self.update_or_create(
            job=job,
            name=name,
            defaults={
                "kind": kind,
                "format": format,
                "storage_backend": store.backend,
                "storage_key": key,
                "storage_identity": store.identity(),
                "content_type": content_type,
                "size_bytes": stored.size,
                "sha256": stored.sha256,
                "exposed": exposed,
            },
        )
        return artifact

    def purge(self, job: Job, config: ArtifactsConfig) -> None:
        """Delete every artifact of ``job``: objects (in the stores they were written to),
        leftovers of interrupted writes in the active store, then the rows."""
        for artifact in self.filter(job=job):
            artifact.store(config).delete(artifact.storage_key)
        active_store(config).delete_tree(job_prefix(config.prefix, job.pk))
        self.filter(job=job).delete()


class JobArtifact(models.Model):
    """A job's artifact. ``format`` is the batch format key (``text``, ``vtt``...) or ``""``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    job = models.ForeignKey("voxhelm_jobs.Job", on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=255)
    kind = models.CharField(max_length=64)
    format = models.CharField(max_length=32, blank=True)
    storage_backend = models.CharField(max_length=32)
    storage_key = models.CharField(max_length=1024)
    storage_identity = models.JSONField(default=dict)
    content_type = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    exposed = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = JobArtifactQuerySet.as_manager()

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at", "name"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["job", "name"], name="job_artifact_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}/{self.name}"

    def store(self, config: ArtifactsConfig) -> ArtifactStore:
        """The store this artifact was written to (whatever the settings say today)."""
        return store_for_identity(self.storage_identity, config)

    def open(self, config: ArtifactsConfig) -> BinaryIO:
        """The artifact's bytes; reading to the end verifies them against the recorded
        size and SHA-256 (:class:`~voxhelm.storage.base.IntegrityError` on a mismatch)."""
        store = self.store(config)
        if not self.sha256:
            return store.open(self.storage_key)
        return store.open_verified(self.storage_key, self.sha256, self.size_bytes)

"""``Worker``: a remote pull worker known by its token label, and whether it may claim work.

A row appears at a worker's first heartbeat or claim. ``enabled=False`` (set by an operator
in the database or a Django shell) stops new claims and heartbeats; leases the worker
already holds can still be beaten, completed and failed.
"""

from __future__ import annotations

from typing import ClassVar

from django.db import IntegrityError, models


class WorkerQuerySet(models.QuerySet["Worker"]):
    def ensure(self, worker_id: str) -> Worker:
        """The worker's row, created (enabled) on first contact; safe against a concurrent
        first contact of the same worker."""
        worker = self.filter(pk=worker_id).first()
        if worker is not None:
            return worker
        try:
            return self.create(worker_id=worker_id)
        except IntegrityError:
            return self.get(pk=worker_id)


class Worker(models.Model):
    worker_id = models.CharField(max_length=64, primary_key=True)  # the token label
    hostname = models.CharField(max_length=255, blank=True)
    enabled = models.BooleanField(default=True)
    capabilities = models.JSONField(default=dict, blank=True)
    concurrency = models.PositiveIntegerField(default=1)
    running_job_ids = models.JSONField(default=list, blank=True)  # informational only
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        ordering: ClassVar[list[str]] = ["worker_id"]

    def __str__(self) -> str:
        return f"worker {self.worker_id} ({'enabled' if self.enabled else 'disabled'})"

"""``IndexedSegment``: one segment of a succeeded job's transcript, as the search index has it.

The text index itself is not a Django model: an FTS5 table kept in step by triggers on
SQLite, a generated ``tsv`` column with a GIN index on PostgreSQL (see the app's first
migration).
"""

from __future__ import annotations

from typing import ClassVar

from django.db import models

TABLE = "voxhelm_search_segment"


class IndexedSegment(models.Model):
    # Deleting a job deletes its rows (and, through the triggers, their index entries).
    job = models.ForeignKey("voxhelm_jobs.Job", on_delete=models.CASCADE, related_name="+")
    # The job's producer, copied so a search filters before it joins.
    producer = models.CharField(max_length=255)
    position = models.PositiveIntegerField()  # the segment's index in the transcript
    start = models.FloatField()  # seconds
    end = models.FloatField()
    speaker = models.CharField(max_length=255, blank=True)
    text = models.TextField()

    class Meta:
        db_table = TABLE
        ordering: ClassVar[list[str]] = ["job", "position"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["producer"], name="search_segment_producer"),
        ]

    def __str__(self) -> str:
        return f"{self.job_id}@{self.start:.1f}"

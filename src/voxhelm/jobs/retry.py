"""Retrying a failed or canceled job: a new batch job with the same request.

The new job goes through ``voxhelm.jobs.submit`` like any other (its checks run again: the
URL may no longer be allowed). A URL is fetched again. Uploaded media comes from the staged
upload while it is still there (a failed or canceled job released it), else from the copy
of the source the failed job kept, staged anew; when neither is left, the media has to be
submitted again.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

from django.utils import timezone

from voxhelm.artifacts.models import JobArtifact
from voxhelm.batch.request import UploadSource
from voxhelm.config import Config
from voxhelm.errors import Conflict, InvalidInput
from voxhelm.jobs.choices import NOT_REUSABLE_STATES
from voxhelm.jobs.models import Job
from voxhelm.jobs.submit import submit_request
from voxhelm.storage.base import CHUNK_BYTES, StoreError
from voxhelm.uploads.models import StagedUpload
from voxhelm.uploads.staging import stage_file
from voxhelm.workdirs import Workdir

MEDIA_GONE = "The media of this job is no longer kept; submit it again."


def retry_job(job: Job, config: Config) -> Job:
    """A new queued job for ``job``'s request (``job`` stays as it is)."""
    if job.state not in NOT_REUSABLE_STATES:
        raise Conflict(
            f"Only a failed or canceled job can be retried; this one is {job.state}.",
            code="job_not_retryable",
        )
    request = job.request
    if isinstance(request.source, UploadSource):
        request = replace(request, source=UploadSource(str(_upload_for(job, config).pk)))
    context = {**job.context_data, "retry_of": str(job.pk)}
    return submit_request(job.producer, request, config, priority=job.priority, context=context).job


def _upload_for(job: Job, config: Config) -> StagedUpload:
    """The staged upload a retry of ``job`` attaches: its own, or its source staged anew."""
    source = job.request.source
    assert isinstance(source, UploadSource)
    if source.upload_id:
        upload = (
            StagedUpload.objects.for_producer(job.producer)
            .filter(
                pk=source.upload_id,
                claimed_by_job__isnull=True,
                deleting_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            .first()
        )
        if upload is not None:
            return upload
    kept = JobArtifact.objects.filter(job=job, kind="source").first()
    if kept is None:
        raise InvalidInput(MEDIA_GONE, code="media_gone")
    filename = source.filename or kept.name
    with Workdir("console") as workdir:
        path = workdir / "source"
        try:
            with kept.open(config.artifacts) as stream, path.open("wb") as out:
                shutil.copyfileobj(stream, out, CHUNK_BYTES)
        except (StoreError, OSError):
            raise InvalidInput(MEDIA_GONE, code="media_gone") from None
        return stage_file(job.producer, path, filename, kept.content_type, config)

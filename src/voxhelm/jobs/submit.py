"""Submitting a job: validation against settings, task_ref idempotency, create and enqueue.

A resubmission with the same producer, ``task_ref`` and result-affecting fields (backend,
model, language, input, set of formats, diarization) returns the existing job unless it
failed or was canceled; anything else makes a new job. The fields are hashed into
``request_fingerprint``, and a partial unique index on (producer, task_ref, fingerprint)
over live jobs makes concurrent identical submissions safe: one insert wins, the others
get an IntegrityError and return the winner.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from voxhelm.config import Config
from voxhelm.fetch import check_url
from voxhelm.jobs.inputs import batch_fetch_policy
from voxhelm.jobs.models import Job
from voxhelm.jobs.schemas import JobSubmission
from voxhelm.jobs.tasks import enqueue
from voxhelm.stt.languages import normalize_language
from voxhelm.stt.registry import validate_model

logger = logging.getLogger("voxhelm.jobs")


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool  # False: an existing job answered to the same task_ref and request


def request_fingerprint(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the result-affecting fields."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def submit(producer: str, request: JobSubmission, config: Config) -> Submitted:
    """Create (or find) the job for ``request``; raises InvalidInput/UrlNotAllowed for 400s."""
    model = request.model if request.model == "auto" else validate_model(request.model, config.stt)
    language = normalize_language(request.language) or ""
    formats = list(request.output.formats)
    diarization = request.diarization.model_dump()
    url_input = request.input.model_dump()
    fingerprint = request_fingerprint(
        {
            "job_type": request.job_type,
            "backend": request.backend,
            "model": model,
            "language": language,
            "input": url_input,
            "formats": sorted(formats),
            "diarization": diarization,
        }
    )
    task_ref = request.task_ref or ""
    if task_ref:
        # Before the URL check: a retry still finds its job after the allowlist changed.
        existing = Job.objects.reusable(producer, task_ref, fingerprint).first()
        if existing is not None:
            return Submitted(existing, created=False)
    check_url(request.input.url, batch_fetch_policy(config))
    try:
        with transaction.atomic():
            job = Job.objects.create(
                producer=producer,
                task_ref=task_ref,
                request_fingerprint=fingerprint,
                job_type=request.job_type,
                lane=request.lane,
                priority=request.priority,
                backend=request.backend,
                model=model,
                language=language,
                prompt=request.prompt or "",
                input_data=url_input,
                output_data={"formats": formats, "diarization": diarization},
                context_data=request.context or {},
                max_attempts=config.execution.max_attempts,
            )
            enqueue(job)
    except IntegrityError:
        winner = Job.objects.reusable(producer, task_ref, fingerprint).first()
        if not task_ref or winner is None:
            raise
        logger.info(
            "job submission lost the race for task_ref %r; answering with %s", task_ref, winner.pk
        )
        return Submitted(winner, created=False)
    return Submitted(job, created=True)

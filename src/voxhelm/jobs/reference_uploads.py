"""Known-speaker reference clips from staged uploads: checked at submission, then named in
the stored request by their store object, so that the diarization step (in the server's
pipeline or in ``voxhelm-remote-worker``) reads them from the store without Django.

A reference upload is *not* claimed: a claim makes an upload one job's input, while one
reference clip may serve many jobs. Instead:

* submission checks it like an input upload (the producer's own, not being deleted, not
  expired, staged in the active store) and extends its ``expires_at`` to at least now +
  ``VOXHELM_STAGED_INPUT_RETENTION_SECONDS`` with a conditional UPDATE, which loses cleanly
  to the retention sweep's deletion mark (so a submission and a deletion never both win);
* the retention sweep skips expired uploads that an unfinished job still references
  (:func:`referenced_upload_ids`), however long the job waits in the queue.

The stored reference audio ``{"kind": "stored", "upload_id", "storage_key",
"storage_identity", "sha256", "size_bytes"}`` never leaves the server except to a worker:
job metadata shows known speakers without their references
(:meth:`voxhelm.batch.request.DiarizationRequest.public`), and the request fingerprint
is computed from the producer's form (``{"kind": "upload", "upload_id"}``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

from django.utils import timezone

from voxhelm.batch.request import DiarizationRequest, JobOutputs, ReferenceAudio
from voxhelm.config import Config
from voxhelm.diarization.base import KNOWN_STRATEGY
from voxhelm.errors import InvalidInput
from voxhelm.jobs.models import Job
from voxhelm.storage.stores import active_store, same_store
from voxhelm.uploads.models import StagedUpload

PARAM = "diarization.known_speakers[].references[].audio.upload_id"


def resolve_reference_uploads(
    producer: str, diarization: DiarizationRequest, config: Config
) -> DiarizationRequest:
    """``diarization`` with every upload reference of ``producer`` replaced by its store
    object; raises :class:`InvalidInput` (400) for an unusable upload. Call inside the
    transaction that creates the job."""
    if not diarization.known:
        return diarization
    resolved: dict[str, ReferenceAudio] = {}

    def stored(audio: ReferenceAudio) -> ReferenceAudio:
        if audio.kind != "upload":
            return audio
        if audio.upload_id not in resolved:
            resolved[audio.upload_id] = _stored_reference(producer, UUID(audio.upload_id), config)
        return resolved[audio.upload_id]

    speakers = tuple(
        replace(
            speaker, references=tuple(replace(r, audio=stored(r.audio)) for r in speaker.references)
        )
        for speaker in diarization.known_speakers
    )
    return replace(diarization, known_speakers=speakers)


def referenced_upload_ids() -> set[str]:
    """Ids of the staged uploads that unfinished known-speaker jobs still read."""
    requests = Job.objects.filter(
        finished_at__isnull=True, output_data__diarization__strategy=KNOWN_STRATEGY
    ).values_list("output_data", flat=True)
    return {
        reference.audio.upload_id
        for output in requests.iterator()
        for speaker in JobOutputs.from_stored(output).diarization.known_speakers
        for reference in speaker.references
        if reference.audio.kind == "stored"
    }


def _stored_reference(producer: str, upload_id: UUID, config: Config) -> ReferenceAudio:
    upload = StagedUpload.objects.for_producer(producer).filter(pk=upload_id).first()
    if upload is None or upload.deleting_at is not None:
        raise InvalidInput(f"Unknown {PARAM}.", param=PARAM, code="upload_not_found")
    now = timezone.now()
    if upload.is_expired(now):
        raise _expired()
    if not same_store(upload.storage_identity, active_store(config.artifacts).identity()):
        raise InvalidInput(
            f"{PARAM} was staged with a different artifact store. Stage the media again.",
            param=PARAM,
            code="upload_store_mismatch",
        )
    keep_until = max(
        upload.expires_at, now + timedelta(seconds=config.limits.staged_input_retention_seconds)
    )
    kept = StagedUpload.objects.filter(
        pk=upload.pk, deleting_at__isnull=True, expires_at__gt=now
    ).update(expires_at=keep_until)
    if not kept:  # lost to the retention sweep: it expired meanwhile
        raise _expired()
    return ReferenceAudio(
        "stored",
        upload_id=str(upload.pk),
        storage_key=upload.storage_key,
        storage_identity=upload.storage_identity,
        sha256=upload.sha256,
        size_bytes=upload.size_bytes,
    )


def _expired() -> InvalidInput:
    return InvalidInput(
        f"{PARAM} has expired. Stage the media again.", param=PARAM, code="upload_expired"
    )

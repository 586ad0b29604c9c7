"""Known-speaker reference clips from staged uploads, on each store: the submission checks and
their messages, the stored form (never shown to clients), retention while a job needs the
clip, and a clip that vanished failing the job without naming its key."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import OTHER_PRODUCER_TOKEN
from tests.uploads.conftest import UploadsApi
from tests.uploads.test_lifecycle import expire, run, stage, staged
from voxhelm.config import Config
from voxhelm.jobs.models import Job, JobState
from voxhelm.jobs.staged import sweep_uploads
from voxhelm.storage.stores import store_for_identity
from voxhelm.stt.registry import ENGINES
from voxhelm.transcript import Segment, Transcript
from voxhelm.uploads.models import StagedUpload

PARAM = "diarization.known_speakers[].references[].audio.upload_id"


def known(*upload_ids: str) -> dict[str, Any]:
    """A known-speaker request with one speaker per reference upload."""
    speakers = [
        {
            "id": f"s{n}",
            "name": f"Speaker {n}",
            "references": [
                {"kind": "clip_artifact", "audio": {"kind": "upload", "upload_id": upload_id}}
            ],
        }
        for n, upload_id in enumerate(upload_ids)
    ]
    return {"enabled": True, "strategy": "pyannote_known_speaker", "known_speakers": speakers}


def submit(api: UploadsApi, speech_wav: bytes, *refs: str, **fields: Any) -> Any:
    return api.submit(stage(api, speech_wav), diarization=known(*refs), **fields)


def test_a_reference_upload_is_stored_by_its_object_and_never_shown(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    ref = stage(api, speech_wav, filename="alice.wav")
    before = StagedUpload.objects.get(pk=ref)
    ranged = {"kind": "source_range", "audio": {"kind": "upload", "upload_id": ref}}
    body = known(ref)
    body["known_speakers"][0]["references"].append({**ranged, "start": 0, "end": 1.5})
    input_id = stage(api, speech_wav)
    response = api.submit(input_id, task_ref="ep-1", diarization=body)
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]

    stored = Job.objects.get(pk=job_id).output_data["diarization"]
    audios = [r["audio"] for r in stored["known_speakers"][0]["references"]]
    assert (
        audios[0]
        == audios[1]
        == {
            "kind": "stored",
            "upload_id": ref,
            "storage_key": before.storage_key,
            "storage_identity": before.storage_identity,
            "sha256": before.sha256,
            "size_bytes": len(speech_wav),
        }
    )
    after = StagedUpload.objects.get(pk=ref)
    assert after.claimed_by_job_id is None  # not claimed: other jobs may use it too
    assert after.expires_at >= before.expires_at
    retention = timedelta(seconds=config.limits.staged_input_retention_seconds)
    assert after.expires_at >= timezone.now() + retention - timedelta(minutes=1)

    shown = json.dumps(api.client.get(f"/v1/jobs/{job_id}", headers=api.auth("test-token")).json())
    assert "staged-inputs" not in shown and before.storage_key not in shown
    # The retry's fingerprint is the producer's form: the same task_ref finds the job.
    again = api.submit(input_id, task_ref="ep-1", diarization=body)
    assert (again.status_code, again.json()["id"]) == (200, job_id)
    # The same clip serves another job.
    assert submit(api, speech_wav, ref).status_code == 201


def test_reference_uploads_are_checked_at_submission(
    api: UploadsApi, configure: Callable[..., Config], speech_wav: bytes, tmp_path: Path
) -> None:
    def error(response: Any) -> tuple[int, str, str]:
        body = response.json()["error"]
        return response.status_code, body["message"], body["param"]

    unknown = "2b4e8f0a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    assert error(submit(api, speech_wav, unknown)) == (400, f"Unknown {PARAM}.", PARAM)
    foreign = stage(api, speech_wav, token=OTHER_PRODUCER_TOKEN)
    assert error(submit(api, speech_wav, foreign)) == (400, f"Unknown {PARAM}.", PARAM)
    expired = stage(api, speech_wav)
    expire(expired)
    assert error(submit(api, speech_wav, expired)) == (
        400, f"{PARAM} has expired. Stage the media again.", PARAM
    )  # fmt: skip
    deleting = stage(api, speech_wav)
    StagedUpload.objects.filter(pk=deleting).update(deleting_at=timezone.now())
    assert error(submit(api, speech_wav, deleting)) == (400, f"Unknown {PARAM}.", PARAM)
    moved = stage(api, speech_wav)
    configure(VOXHELM_ARTIFACT_ROOT=str(tmp_path / "moved"))  # a different store now
    assert error(submit(api, speech_wav, moved)) == (
        400,
        f"{PARAM} was staged with a different artifact store. Stage the media again.",
        PARAM,
    )
    assert not Job.objects.exists()
    assert not StagedUpload.objects.filter(claimed_by_job__isnull=False).exists()


def test_the_sweep_keeps_a_reference_until_its_jobs_ended(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    ref = stage(api, speech_wav)
    job_id = submit(api, speech_wav, ref).json()["id"]
    expire(ref)  # e.g. the job waited in the queue longer than the retention

    assert sweep_uploads(config).deleted == []
    assert StagedUpload.objects.filter(pk=ref).exists()

    Job.objects.filter(pk=job_id).update(state=JobState.CANCELED, finished_at=timezone.now())
    assert [str(u) for u in sweep_uploads(config).deleted] == [ref]
    assert len(staged(config)) == 1  # only the canceled job's released input is left


def test_a_succeeded_input_job_keeps_an_upload_another_job_references(
    api: UploadsApi, config: Config, speech_wav: bytes
) -> None:
    shared = stage(api, speech_wav)
    assert submit(api, speech_wav, shared).status_code == 201
    input_job = api.submit(shared).json()["id"]
    Job.objects.filter(pk=input_job).update(state=JobState.SUCCEEDED, finished_at=timezone.now())

    sweep_uploads(config)

    upload = StagedUpload.objects.get(pk=shared)  # released, not deleted
    assert upload.claimed_by_job_id is None and upload.deleting_at is None


@pytest.fixture
def fixed_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed transcript: the failure under test comes after transcription."""

    def transcribe(audio: Any, model: str, request: Any, config: Any) -> Transcript:
        segments = [Segment(id=0, start=0.0, end=1.0, text=" Fixed.")]
        return Transcript.from_segments(segments, "en", audio.duration, backend="x", model="y")

    monkeypatch.setattr(ENGINES, "transcribe", transcribe)


def test_a_vanished_reference_fails_the_job_without_naming_its_key(
    api: UploadsApi, config: Config, speech_wav: bytes, fixed_engine: None
) -> None:
    ref = stage(api, speech_wav)
    upload = StagedUpload.objects.get(pk=ref)
    job_id = submit(api, speech_wav, ref).json()["id"]
    store_for_identity(upload.storage_identity, config.artifacts).delete(upload.storage_key)

    job = run(job_id, config)

    assert job.state == JobState.FAILED
    body = api.client.get(f"/v1/jobs/{job_id}", headers=api.auth("test-token")).json()
    assert body["error"]["code"] == "reference_audio_failed"
    assert body["error"]["message"] == (
        f"Known-speaker reference audio could not be used: the uploaded clip {ref} is no "
        "longer available."
    )
    assert upload.storage_key not in json.dumps(body) and "staged-inputs" not in json.dumps(body)
